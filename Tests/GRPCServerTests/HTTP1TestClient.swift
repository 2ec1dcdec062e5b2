import NIOCore
import NIOHTTP1
import NIOPosix

/// An HTTP/1.1 response as a client saw it.
struct TestHTTPResponse: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
}

/// Collects whole responses; on the connection's event loop.
final class HTTP1ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    let responses = EventBuffer<TestHTTPResponse>()
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
        case .body(let buffer):
            body += Array(buffer.readableBytesView)
        case .end:
            if let head { responses.append(TestHTTPResponse(status: Int(head.status.code), headers: head.headers, body: body)) }
            head = nil
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        responses.finish()
        context.fireChannelInactive()
    }
}

/// A plain HTTP/1.1 client connection.
final class HTTP1TestConnection: Sendable {
    let channel: any Channel
    private let collector: NIOLoopBound<HTTP1ResponseCollector>

    private init(channel: any Channel, collector: NIOLoopBound<HTTP1ResponseCollector>) {
        self.channel = channel
        self.collector = collector
    }

    static func connect(to port: Int, group: any EventLoopGroup) async throws -> HTTP1TestConnection {
        try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                let collector = HTTP1ResponseCollector()
                try channel.pipeline.syncOperations.addHandler(collector)
                return HTTP1TestConnection(channel: channel, collector: NIOLoopBound(collector, eventLoop: channel.eventLoop))
            }
        }
    }

    /// Sends a request; a body goes with its `content-length`, or chunked in the given pieces.
    func send(
        _ method: HTTPMethod, _ uri: String, version: HTTPVersion = .http1_1, headers: [(String, String)] = [],
        body: [UInt8]? = nil, chunks: [[UInt8]]? = nil
    ) async throws {
        var head = HTTPRequestHead(version: version, method: method, uri: uri)
        head.headers.add(name: "host", value: "localhost")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body { head.headers.add(name: "content-length", value: String(body.count)) }
        if chunks != nil { head.headers.add(name: "transfer-encoding", value: "chunked") }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        for piece in (body.map { [$0] } ?? chunks ?? []) where !piece.isEmpty {
            channel.write(HTTPClientRequestPart.body(.byteBuffer(channel.allocator.buffer(bytes: piece))), promise: nil)
        }
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get(within: .seconds(2), "a request write")
    }

    /// Sends a request head and part of a body, leaving the request open.
    func sendOpen(_ method: HTTPMethod, _ uri: String, chunk: [UInt8]) async throws {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri)
        head.headers.add(name: "host", value: "localhost")
        head.headers.add(name: "transfer-encoding", value: "chunked")
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        try await channel.writeAndFlush(HTTPClientRequestPart.body(.byteBuffer(channel.allocator.buffer(bytes: chunk))))
            .get(within: .seconds(2), "a request write")
    }

    /// Whether the server has closed the connection (waits up to `timeout`).
    func isClosed(within timeout: Duration = .seconds(2)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !channel.isActive { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return !channel.isActive
    }

    /// The response at `index` (0 for the first on this connection).
    func response(at index: Int) async throws -> TestHTTPResponse {
        let collector = self.collector
        let eventLoop = channel.eventLoop
        return try await eventLoop.flatSubmit { collector.value.responses.event(at: index, on: eventLoop) }
            .get(within: .seconds(10), "HTTP response \(index)")
    }

    func close() async {
        try? await channel.close()
    }
}
