import GRPCFraming
public import GRPCStatus
public import NIOCore
import NIOHPACK
import NIOHTTP2
import Synchronization
import TransportSecurity

/// One gRPC call: on an HTTP/2 stream, or a JSON gateway request on HTTP/1.1 (the same
/// handlers serve both).
///
/// Thread-safe: ``send(_:)`` and ``finish(_:message:trailers:)`` may be called from any thread;
/// they run on the call's event loop, in the order they were called.
public final class ServerCall: @unchecked Sendable {
    /// The service, e.g. `etcdserverpb.KV`.
    public let service: String
    /// The method, e.g. `Range`.
    public let method: String
    /// The request's metadata: its headers without pseudo-headers, names lower-cased.
    public let metadata: [(name: String, value: String)]
    /// When the call must be finished, from `grpc-timeout`.
    public let deadline: NIODeadline?
    /// The event loop of the call's stream.
    public let eventLoop: any EventLoop
    /// The common name (CN) of the client certificate the caller presented on this connection,
    /// if the listener asked for one and TLS verified it against the trusted authorities
    /// (`--client-cert-auth`); nil on plain connections and TLS connections without a client
    /// certificate. It is the caller's verified identity, as etcd's authentication reads it.
    public let clientCertificateCommonName: String?

    let channel: any Channel
    // Confined to `eventLoop`.
    private let writer: any CallWriter
    private var observer: (any CallObserver)?
    /// How the call ended, once it has.
    private var endStatus: StatusCode?
    private var writabilityHandlers: [@Sendable (Bool) -> Void] = []
    private let finished = Atomic<Bool>(false)

    init(
        service: String, method: String, metadata: [(name: String, value: String)], deadline: NIODeadline?, channel: any Channel,
        writer: any CallWriter
    ) {
        self.service = service
        self.method = method
        self.metadata = metadata
        self.deadline = deadline
        self.channel = channel
        self.writer = writer
        self.eventLoop = channel.eventLoop
        // Calls are created on their connection's event loop, where the TLS handler can be read.
        self.clientCertificateCommonName = PeerIdentity.verifiedCommonName(of: channel)
    }

    /// Whether the call has finished (answered, cancelled or failed).
    public var isFinished: Bool { finished.load(ordering: .acquiring) }

    /// Whether the stream can take more data now (false while the client's HTTP/2 flow-control
    /// window is exhausted: a slow reader).
    public var isWritable: Bool { channel.isWritable }

    /// Registers a handler for changes of ``isWritable``; it runs on the call's event loop. The
    /// handlers are dropped when the call finishes, so they may hold the call.
    public func onWritabilityChanged(_ handler: @escaping @Sendable (Bool) -> Void) {
        onLoop {
            guard !self.isFinished else { return }
            self.writabilityHandlers.append(handler)
        }
    }

    /// Sends one response message (response headers first, if not yet sent).
    public func send(_ message: [UInt8]) {
        send(message, flush: true)
    }

    /// Sends one response message, optionally without flushing (the next flush or
    /// ``finish(_:message:trailers:)`` sends it).
    public func send(_ message: [UInt8], flush: Bool) {
        onLoop {
            guard !self.isFinished else { return }
            self.writer.writeMessage(message, flush: flush)
        }
    }

    /// Ends the call with a status; trailers carry `grpc-status` and the percent-encoded
    /// `grpc-message`. A call that sent nothing gets a trailers-only response. Later calls
    /// are ignored.
    public func finish(_ status: StatusCode, message: String = "", trailers: [(String, String)] = []) {
        onLoop { self.finishOnLoop(status, message: message, trailers: trailers) }
    }

    /// Reports this call's start to `observer`, and its end (at once if the handler already
    /// ended it while it was being set up).
    func observe(by observer: (any CallObserver)?) {
        guard let observer else { return }
        self.observer = observer
        observer.callStarted(service: service, method: method)
        if let endStatus { observer.callFinished(service: service, method: method, status: endStatus) }
    }

    func finishOnLoop(_ status: StatusCode, message: String, trailers extra: [(String, String)] = []) {
        guard finished.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            return
        }
        endStatus = status
        observer?.callFinished(service: service, method: method, status: status)
        writabilityHandlers.removeAll()
        writer.writeEnd(status, message: message, trailers: extra)
    }

    /// Marks the call finished without writing (the stream is gone). Returns whether it was open.
    func markCancelled() -> Bool {
        writabilityHandlers.removeAll()
        let wasOpen = finished.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        if wasOpen {
            endStatus = .cancelled
            observer?.callFinished(service: service, method: method, status: .cancelled)
        }
        return wasOpen
    }

    func writabilityChanged(_ writable: Bool) {
        for handler in writabilityHandlers { handler(writable) }
    }

    private func onLoop(_ body: @escaping () -> Void) {
        if eventLoop.inEventLoop {
            body()
        } else {
            let unchecked = UncheckedBox(body)
            eventLoop.execute { unchecked.value() }
        }
    }
}

/// Writes a call's answers to its transport; used on the call's event loop only.
protocol CallWriter: AnyObject {
    /// Writes one response message.
    func writeMessage(_ message: [UInt8], flush: Bool)
    /// Ends the call with `status` (called once).
    func writeEnd(_ status: StatusCode, message: String, trailers: [(String, String)])
}

/// Writes a gRPC call's answers as HTTP/2 frames: response headers, length-prefixed messages,
/// then trailers with `grpc-status` and the percent-encoded `grpc-message`.
final class HTTP2CallWriter: CallWriter {
    private let channel: any Channel
    private let limits: ConnectionLimits?
    private var headersSent = false

    init(channel: any Channel, limits: ConnectionLimits? = nil) {
        self.channel = channel
        self.limits = limits
    }

    func writeMessage(_ message: [UInt8], flush: Bool) {
        limits?.responded()
        writeHeadersIfNeeded()
        var buffer = channel.allocator.buffer(capacity: message.count + 5)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(message.count))
        buffer.writeBytes(message)
        let frame = HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(buffer), endStream: false))
        if flush {
            channel.writeAndFlush(frame, promise: nil)
        } else {
            channel.write(frame, promise: nil)
        }
    }

    func writeEnd(_ status: StatusCode, message: String, trailers: [(String, String)]) {
        limits?.responded()
        var headers = HPACKHeaders()
        if !headersSent {
            // Nothing sent yet: a trailers-only response.
            headers.add(name: ":status", value: "200")
            headers.add(name: "content-type", value: "application/grpc")
        }
        headers.add(name: "grpc-status", value: String(status.rawValue))
        if !message.isEmpty { headers.add(name: "grpc-message", value: GRPCWire.encodeMessage(message)) }
        for (name, value) in trailers { headers.add(name: name, value: value) }
        headersSent = true
        channel.writeAndFlush(HTTP2Frame.FramePayload.headers(.init(headers: headers, endStream: true)), promise: nil)
    }

    private func writeHeadersIfNeeded() {
        guard !headersSent else { return }
        headersSent = true
        var headers = HPACKHeaders()
        headers.add(name: ":status", value: "200")
        headers.add(name: "content-type", value: "application/grpc")
        channel.write(HTTP2Frame.FramePayload.headers(.init(headers: headers)), promise: nil)
    }
}

/// Carries a closure confined to one event loop across the hop to it.
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// Receives a call's inbound events, on the call's event loop.
public protocol ServerCallHandler: AnyObject {
    /// One complete request message (it may have spanned several DATA frames).
    func received(_ message: [UInt8])
    /// The client half-closed the stream: no more messages will come.
    func receivedEnd()
    /// The call ended early: the client reset the stream, the connection closed, the deadline
    /// passed, or the server shut down. Never called after the call finished normally.
    func cancelled()
}

/// Chooses a handler for a new call; nil means the method is unknown (the layer answers
/// UNIMPLEMENTED).
public typealias CallRouter = @Sendable (ServerCall) -> (any ServerCallHandler)?

/// Told when each call a router accepted starts, and with which status it ends (a call the
/// client cancels ends with `cancelled`); for metrics. Calls to unknown methods are not reported,
/// so clients cannot create metric series at will. Called on the call's event loop.
public protocol CallObserver: Sendable {
    /// A call to `service`/`method` started.
    func callStarted(service: String, method: String)
    /// A call to `service`/`method` ended with `status`.
    func callFinished(service: String, method: String, status: StatusCode)
}
