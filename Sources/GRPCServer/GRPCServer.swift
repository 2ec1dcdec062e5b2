import GRPCStatus
import NIOConcurrencyHelpers
public import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL
public import TransportSecurity

/// A plain HTTP/1.1 request on the gRPC port (for example `GET /health`).
public struct HTTPRequest: Sendable {
    /// The method, e.g. `GET`.
    public var method: String
    /// The request target, e.g. `/health?x=1`.
    public var path: String
    /// The request headers.
    public var headers: [(String, String)]
}

/// The answer to an ``HTTPRequest``.
public struct HTTPResponse: Sendable {
    /// The status code.
    public var status: Int
    /// The `content-type`.
    public var contentType: String
    /// The body.
    public var body: [UInt8]

    /// Creates a response.
    public init(status: Int, contentType: String, body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }
}

/// Answers plain HTTP/1.1 requests; `respond` may be called from any thread, exactly once.
public typealias HTTPRouter = @Sendable (HTTPRequest, _ respond: @escaping @Sendable (HTTPResponse) -> Void) -> Void

/// How a ``GRPCServer`` listens.
public struct GRPCServerConfiguration: Sendable {
    /// The address to bind.
    public var host: String
    /// The port to bind (0 picks a free one).
    public var port: Int
    /// The largest request message accepted; larger ones end the call with RESOURCE_EXHAUSTED.
    public var maxReceiveMessageBytes: Int = 1_572_864 + 512 * 1024
    /// The most concurrent streams a client may open on one connection, announced as HTTP/2's
    /// SETTINGS_MAX_CONCURRENT_STREAMS (etcd's `--max-concurrent-streams`; its default, 2³² − 1,
    /// means no limit).
    public var maxConcurrentStreams: Int = Int(UInt32.max)
    /// The most client connections open at once; a connection over the cap is closed as soon as
    /// it is accepted, without disturbing the others.
    public var maxConnections: Int = 10_000
    /// How long a connection may stay without an open call before it is closed (HTTP/2: GOAWAY,
    /// then close), and how long a new connection may take to send its first request; nil
    /// keeps idle connections open.
    public var idleTimeout: TimeAmount? = .hours(1)
    /// The shortest interval between a client's pings: a client pinging more often (with no
    /// response sent in between) gets GOAWAY ENHANCE_YOUR_CALM "too_many_pings" after two
    /// strikes (etcd's `--grpc-keepalive-min-time`).
    public var keepaliveMinTime: TimeAmount = .seconds(5)
    /// How long a connection may stay silent before the server pings it (etcd's
    /// `--grpc-keepalive-interval`).
    public var keepaliveInterval: TimeAmount = .hours(2)
    /// How long the server waits for the answer to its ping before closing the connection
    /// (etcd's `--grpc-keepalive-timeout`).
    public var keepaliveTimeout: TimeAmount = .seconds(20)
    /// The most bytes of partly received request messages one connection may hold, summed over
    /// its streams; a stream whose bytes would pass it ends with RESOURCE_EXHAUSTED. Must be at
    /// least ``maxReceiveMessageBytes`` for a largest message to fit.
    public var maxConnectionBufferedBytes: Int = 16 * (1_572_864 + 512 * 1024)
    /// How long ``GRPCServer/shutdown()`` lets in-flight calls run before closing connections.
    public var gracefulShutdownTimeout: TimeAmount = .seconds(5)
    /// Told when each routed call starts and how it ends (for metrics).
    public var observer: (any CallObserver)?
    /// The JSON gateway served on the HTTP/1.1 side through the same router, if any.
    public var gateway: Gateway?
    /// TLS for every connection (an `https://` listener), nil for plain TCP. Each accepted
    /// connection takes the source's current context, so rotated certificate files apply to new
    /// connections; ALPN offers what the source's settings list (`h2` and `http/1.1`).
    public var tls: TLSContextSource?

    /// Creates a configuration.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

/// A small gRPC server on swift-nio-http2: unary, server-streaming and bidirectional calls,
/// handled on the connection's event loop without a task per call. The same port answers
/// plain HTTP/1.1 requests (health, metrics), told apart by the HTTP/2 connection preface,
/// over TCP or, with ``GRPCServerConfiguration/tls``, over TLS.
public final class GRPCServer: Sendable {
    let configuration: GRPCServerConfiguration
    let group: any EventLoopGroup
    let router: CallRouter
    let http: HTTPRouter?
    private let state = NIOLockedValueBox(ServerState())

    /// Creates a server; ``start()`` binds it.
    public init(configuration: GRPCServerConfiguration, group: any EventLoopGroup, router: @escaping CallRouter, http: HTTPRouter?) {
        self.configuration = configuration
        self.group = group
        self.router = router
        self.http = http
    }

    /// Binds the listener and returns the bound port.
    public func start() async throws -> Int {
        let router = self.router
        let http = self.http
        let configuration = self.configuration
        let state = self.state
        let listener = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let id = ObjectIdentifier(channel)
                let accepted = state.withLockedValue { state in
                    // Accepted just before the listener closed: too late to be told to quiesce.
                    guard !state.isShuttingDown else { return false }
                    // Over the cap: refused at once, before any byte is read.
                    guard state.connections.count < configuration.maxConnections else { return false }
                    state.connections[id] = channel
                    return true
                }
                guard accepted else { return channel.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
                channel.closeFuture.whenComplete { _ in _ = state.withLockedValue { $0.connections.removeValue(forKey: id) } }
                return channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    // TLS first: the sniffer below sees the decrypted bytes, so HTTP/2 and
                    // HTTP/1.1 are told apart as on a plain port.
                    if let tls = configuration.tls { try pipeline.addHandler(NIOSSLServerHandler(context: tls.context)) }
                    try pipeline.addHandler(ProtocolSniffer(configuration: configuration, router: router, http: http))
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        state.withLockedValue { $0.listener = listener }
        return listener.localAddress?.port ?? configuration.port
    }

    /// Stops accepting connections, sends GOAWAY on every HTTP/2 connection and lets in-flight
    /// calls finish until the graceful-shutdown timeout; then closes what is left.
    public func shutdown() async {
        let (listener, connections) = state.withLockedValue {
            $0.isShuttingDown = true
            return ($0.listener, Array($0.connections.values))
        }
        try? await listener?.close()
        for connection in connections {
            connection.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        let deadline = NIODeadline.now() + configuration.gracefulShutdownTimeout
        while NIODeadline.now() < deadline {
            if state.withLockedValue({ $0.connections.isEmpty }) { return }
            try? await Task.sleep(for: .milliseconds(20))
        }
        for connection in state.withLockedValue({ Array($0.connections.values) }) {
            try? await connection.close()
        }
    }
}

/// The listener and the open connections of a ``GRPCServer``.
struct ServerState {
    var listener: (any Channel)?
    var connections: [ObjectIdentifier: any Channel] = [:]
    /// Set by ``GRPCServer/shutdown()``: connections accepted from then on are closed at once.
    var isShuttingDown = false
}

/// Looks at the first bytes of a connection: the HTTP/2 preface means gRPC, anything else is
/// served as HTTP/1.1.
final class ProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    private let configuration: GRPCServerConfiguration
    private let router: CallRouter
    private let http: HTTPRouter?
    private var buffered: ByteBuffer?

    private var idleTimer: Scheduled<Void>?

    init(configuration: GRPCServerConfiguration, router: @escaping CallRouter, http: HTTPRouter?) {
        self.configuration = configuration
        self.router = router
        self.http = http
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // A connection that says nothing is closed after the idle timeout.
        if let timeout = configuration.idleTimeout {
            idleTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { context.close(promise: nil) }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffered == nil {
            buffered = incoming
        } else {
            buffered!.writeBuffer(&incoming)
        }
        let bytes = buffered!.readableBytesView
        let count = min(bytes.count, Self.preface.count)
        let isHTTP2 = bytes.prefix(count).elementsEqual(Self.preface.prefix(count))
        if isHTTP2 && count < Self.preface.count { return }  // wait for the whole preface
        do {
            let pipeline = context.pipeline.syncOperations
            if isHTTP2 {
                let router = self.router
                let maxBytes = configuration.maxReceiveMessageBytes
                let observer = configuration.observer
                let (connection, stream) = configuration.http2Configuration
                let limits = ConnectionLimits(
                    maxBufferedBytes: configuration.maxConnectionBufferedBytes, minimumPingInterval: configuration.keepaliveMinTime)
                // Closes idle connections (GOAWAY, then close). Graceful shutdown is
                // GracefulDrainHandler's, which keeps ChannelShouldQuiesceEvent from reaching
                // this handler (see there why). (Keepalive pings are KeepaliveHandler's:
                // this handler's keepalive timeout only starts a graceful GOAWAY, which a dead
                // client never completes.)
                let management = NIOHTTP2ServerConnectionManagementHandler(
                    eventLoop: context.eventLoop,
                    configuration: .init(
                        maxIdleTime: configuration.idleTimeout, maxAge: nil, maxGraceTime: configuration.gracefulShutdownTimeout,
                        keepalive: nil))
                let drain = GracefulDrainHandler()
                try pipeline.addHandler(DrainFrameWriter())
                _ = try pipeline.configureHTTP2Pipeline(
                    mode: .server, connectionConfiguration: connection, streamConfiguration: stream,
                    streamDelegate: drain.streamDelegate(passingTo: management.http2StreamDelegate, on: context.eventLoop)
                ) { streamChannel in
                    streamChannel.eventLoop.makeCompletedFuture {
                        try streamChannel.pipeline.syncOperations.addHandler(
                            GRPCStreamHandler(router: router, maxReceiveMessageBytes: maxBytes, observer: observer, limits: limits))
                    }
                }
                try pipeline.addHandler(drain)
                try pipeline.addHandler(
                    KeepaliveHandler(limits: limits, interval: configuration.keepaliveInterval, timeout: configuration.keepaliveTimeout))
                try pipeline.addHandler(management)
                // The channel became active before this handler was added: start its idle timer
                // now.
                management.channelActive(context: try pipeline.context(handler: management))
            } else {
                try pipeline.configureHTTPServerPipeline(withErrorHandling: true)
                try pipeline.addHandler(HTTP1Handler(router: http, callRouter: router, configuration: configuration))
            }
        } catch {
            context.close(promise: nil)
            return
        }
        let pending = buffered!
        buffered = nil
        context.fireChannelRead(wrapInboundOut(pending))
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Still here: the client has not said which protocol it speaks, so no request is in
        // flight and the connection can go at once.
        if event is ChannelShouldQuiesceEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Serves plain HTTP/1.1 requests through the ``HTTPRouter``, and the ``Gateway``'s JSON
/// requests as gRPC calls through the ``CallRouter``.
final class HTTP1Handler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// The request being read or answered.
    private enum Request {
        /// For the ``HTTPRouter``, once its body has been read (and ignored).
        case plain(HTTPRequestHead)
        /// Answered with a fixed response once its body has been read.
        case fixed(HTTPRequestHead, HTTPResponse)
        /// A gateway call.
        case gateway(GatewayExchange)
    }

    private let router: HTTPRouter?
    private let callRouter: CallRouter
    private let configuration: GRPCServerConfiguration
    private var request: Request? {
        didSet { armIdleTimer() }
    }
    private var channel: (any Channel)?
    /// Closes the connection once it has been without a request for the idle timeout.
    private var idleTimer: Scheduled<Void>?

    init(router: HTTPRouter?, callRouter: @escaping CallRouter, configuration: GRPCServerConfiguration) {
        self.router = router
        self.callRouter = callRouter
        self.configuration = configuration
    }

    func handlerAdded(context: ChannelHandlerContext) {
        channel = context.channel
        armIdleTimer()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        channel = nil
    }

    /// Starts the idle timer while no request is in flight, and stops it while one is.
    private func armIdleTimer() {
        idleTimer?.cancel()
        idleTimer = nil
        guard request == nil, let timeout = configuration.idleTimeout, let channel else { return }
        idleTimer = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = route(head, context: context)
        case .body(let buffer):
            if case .gateway(let exchange) = request { exchange.received(buffer.readableBytesView) }
        case .end:
            guard let request else { return }
            switch request {
            case .gateway(let exchange):
                exchange.receivedEnd()
                if exchange.isComplete { self.request = nil }
            case .fixed(let head, let response):
                self.request = nil
                writeResponse(response, answering: head, on: context.channel)
            case .plain(let head):
                self.request = nil
                let channel = context.channel
                let plainRequest = HTTPRequest(
                    method: head.method.rawValue, path: head.uri, headers: head.headers.map { ($0.name, $0.value) })
                let respond: @Sendable (HTTPResponse) -> Void = { response in
                    channel.eventLoop.execute { writeResponse(response, answering: head, on: channel) }
                }
                if let router {
                    router(plainRequest, respond)
                } else {
                    respond(HTTPResponse(status: 404, contentType: "text/plain", body: Array("404 page not found\n".utf8)))
                }
            }
        }
    }

    private func route(_ head: HTTPRequestHead, context: ChannelHandlerContext) -> Request {
        guard let gateway = configuration.gateway else { return .plain(head) }
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? head.uri
        switch gateway.target(path: path) {
        case .elsewhere:
            return .plain(head)
        case .notFound:
            return .fixed(head, plainText(404, "Not Found"))
        case .route where head.method != .POST:
            return .fixed(head, plainText(405, "Method Not Allowed"))
        case .route(let route):
            let exchange = GatewayExchange(
                route: route, head: head, channel: context.channel, maxRequestBytes: gateway.maxRequestBytes,
                maxReceiveMessageBytes: configuration.maxReceiveMessageBytes
            ) { [weak self] in
                guard let self, case .gateway(let current) = self.request, current.isComplete else { return }
                self.request = nil
            }
            exchange.start(head: head, router: callRouter, observer: configuration.observer)
            return .gateway(exchange)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .gateway(let exchange) = request { exchange.writabilityChanged(context.channel.isWritable) }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .gateway(let exchange) = request { exchange.connectionClosed() }
        request = nil
        context.fireChannelInactive()
    }

}

/// Go's `http.Error`: the status text and a newline, as plain text.
private func plainText(_ status: Int, _ text: String) -> HTTPResponse {
    HTTPResponse(status: status, contentType: "text/plain; charset=utf-8", body: Array((text + "\n").utf8))
}

/// Writes a whole response to `head`; closes the connection after it unless the client keeps it
/// alive.
private func writeResponse(_ response: HTTPResponse, answering head: HTTPRequestHead, on channel: any Channel) {
    let keepAlive = head.isKeepAlive
    var headers = HTTPHeaders()
    headers.add(name: "content-type", value: response.contentType)
    headers.add(name: "content-length", value: String(response.body.count))
    if !keepAlive { headers.add(name: "connection", value: "close") }
    let responseHead = HTTPResponseHead(version: head.version, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
    channel.write(HTTPServerResponsePart.head(responseHead), promise: nil)
    channel.write(HTTPServerResponsePart.body(.byteBuffer(channel.allocator.buffer(bytes: response.body))), promise: nil)
    channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in
        if !keepAlive { channel.close(promise: nil) }
    }
}
