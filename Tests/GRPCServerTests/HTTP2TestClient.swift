import GRPCTestSupport
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix

/// A wait that took longer than a test allows.
struct TestTimeout: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}

extension EventLoopFuture where Value: Sendable {
    /// Waits for the future, failing with ``TestTimeout`` after `timeout`.
    func get(within timeout: TimeAmount = .seconds(2), _ what: String = "a future") async throws -> Value {
        let promise = eventLoop.makePromise(of: Value.self)
        let timer = eventLoop.scheduleTask(in: timeout) { promise.fail(TestTimeout(what: what)) }
        whenComplete { result in
            timer.cancel()
            promise.completeWith(result)
        }
        return try await promise.futureResult.get()
    }
}

/// Something a client stream received.
enum StreamEvent: Sendable {
    case headers(HPACKHeaders, endStream: Bool)
    case data(ByteBuffer, endStream: Bool)
    case reset(HTTP2ErrorCode)
    case closed
}

/// Events in arrival order, handed out by index; confined to one event loop.
final class EventBuffer<Event: Sendable> {
    private var events: [Event] = []
    private var waiters: [(index: Int, promise: EventLoopPromise<Event>)] = []
    private(set) var isFinished = false

    /// Adds an event, unless the buffer is finished.
    func append(_ event: Event) {
        guard !isFinished else { return }
        events.append(event)
        let index = events.count - 1
        let ready = waiters.filter { $0.index == index }
        waiters.removeAll { $0.index == index }
        for waiter in ready { waiter.promise.succeed(event) }
    }

    /// No more events: whoever waits for one fails.
    func finish() {
        isFinished = true
        let waiters = self.waiters
        self.waiters.removeAll()
        for waiter in waiters { waiter.promise.fail(TestTimeout(what: "event \(waiter.index), but the source has ended")) }
    }

    /// The event at `index`, once it arrives.
    func event(at index: Int, on eventLoop: any EventLoop) -> EventLoopFuture<Event> {
        if index < events.count { return eventLoop.makeSucceededFuture(events[index]) }
        if isFinished { return eventLoop.makeFailedFuture(TestTimeout(what: "event \(index), but the source has ended")) }
        let promise = eventLoop.makePromise(of: Event.self)
        waiters.append((index, promise))
        return promise.futureResult
    }
}

/// Keeps what a client stream receives, in order; on the stream's event loop.
final class StreamRecorder: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload

    let events = EventBuffer<StreamEvent>()
    private var wasReset = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            events.append(.headers(headers.headers, endStream: headers.endStream))
        case .data(let data):
            if case .byteBuffer(let buffer) = data.data {
                events.append(.data(buffer, endStream: data.endStream))
            }
        case .rstStream(let code):
            wasReset = true
            events.append(.reset(code))
        default:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let closed = error as? NIOHTTP2Errors.StreamClosed, !wasReset {
            wasReset = true
            events.append(.reset(closed.errorCode))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        events.append(.closed)
        events.finish()
        context.fireChannelInactive()
    }
}

/// A gRPC response as a client saw it.
struct TestResponse {
    /// The first HEADERS frame.
    var headers: HPACKHeaders
    /// The decoded response messages.
    var messages: [[UInt8]] = []
    /// The trailing HEADERS frame; nil for a trailers-only response.
    var trailers: HPACKHeaders?
    /// Bytes left over after the last whole message.
    var leftoverBytes = 0
    /// The RST_STREAM code, if the stream was reset.
    var resetCode: HTTP2ErrorCode?

    /// `:status`.
    var httpStatus: String? { headers.first(name: ":status") }
    /// `grpc-status`, from the trailers or, for a trailers-only response, the headers.
    var grpcStatus: Int? { (trailers ?? headers).first(name: "grpc-status").flatMap { Int($0) } }
    /// `grpc-message` as sent (still percent-encoded).
    var grpcMessage: String? { (trailers ?? headers).first(name: "grpc-message") }
    /// Whether the whole response was one HEADERS frame.
    var isTrailersOnly: Bool { trailers == nil }
}

/// Frames `message` as one gRPC length-prefixed message.
func grpcFrame(_ message: [UInt8], compressed: Bool = false) -> [UInt8] {
    GRPCTestWire.frame(message, compressed: compressed)
}

/// Splits gRPC length-prefixed messages; returns them and the count of bytes left over.
func grpcMessages(in bytes: [UInt8]) -> (messages: [[UInt8]], leftover: Int) {
    let (messages, consumed) = GRPCTestWire.messages(in: bytes)
    return (messages.map(\.bytes), bytes.count - consumed)
}

/// One client stream (one call).
final class TestStream {
    let channel: any Channel
    private let recorder: NIOLoopBound<StreamRecorder>
    private var cursor = 0

    init(channel: any Channel, recorder: NIOLoopBound<StreamRecorder>) {
        self.channel = channel
        self.recorder = recorder
    }

    /// Sends the request HEADERS for `path`.
    func sendHeaders(
        path: String, contentType: String = "application/grpc", metadata: [(String, String)] = [], endStream: Bool = false
    ) async throws {
        let headers = GRPCTestWire.requestHeaders(path: path, authority: "localhost", contentType: contentType, metadata: metadata)
        try await send(.headers(.init(headers: headers, endStream: endStream)))
    }

    /// Sends raw bytes in one DATA frame.
    func sendData(_ bytes: [UInt8], endStream: Bool = false) async throws {
        let buffer = channel.allocator.buffer(bytes: bytes)
        try await send(.data(.init(data: .byteBuffer(buffer), endStream: endStream)))
    }

    /// Sends one framed message in one DATA frame.
    func sendMessage(_ message: [UInt8], endStream: Bool = false) async throws {
        try await sendData(grpcFrame(message), endStream: endStream)
    }

    /// Half-closes the stream with an empty DATA frame.
    func sendEnd() async throws {
        try await sendData([], endStream: true)
    }

    /// Sends one frame.
    func send(_ payload: HTTP2Frame.FramePayload) async throws {
        try await channel.writeAndFlush(payload).get(within: .seconds(2), "a write")
    }

    /// Sends a unary request: headers, one message, end of stream.
    func sendUnary(path: String, message: [UInt8], metadata: [(String, String)] = []) async throws {
        try await sendHeaders(path: path, metadata: metadata)
        try await sendMessage(message, endStream: true)
    }

    /// The next event the stream received.
    func next(within timeout: TimeAmount = .seconds(2)) async throws -> StreamEvent {
        let recorder = self.recorder
        let index = cursor
        cursor += 1
        let eventLoop = channel.eventLoop
        return try await eventLoop.flatSubmit { recorder.value.events.event(at: index, on: eventLoop) }
            .get(within: timeout, "stream event \(index)")
    }

    /// The next response message (skipping the response headers); fails on trailers or a reset.
    func nextMessage() async throws -> [UInt8] {
        var pending: [UInt8] = []
        while true {
            switch try await next() {
            case .headers(let headers, _) where headers.first(name: "grpc-status") != nil:
                throw TestTimeout(what: "a message, got trailers \(headers)")
            case .headers:
                continue
            case .data(let buffer, _):
                pending += Array(buffer.readableBytesView)
                let (messages, leftover) = grpcMessages(in: pending)
                guard messages.isEmpty else {
                    precondition(messages.count == 1 && leftover == 0, "one message per read expected")
                    return messages[0]
                }
            case .reset(let code):
                throw TestTimeout(what: "a message, got RST_STREAM \(code)")
            case .closed:
                throw TestTimeout(what: "a message, got the stream closed")
            }
        }
    }

    /// Reads the rest of the response, up to the end of the stream.
    func response(within timeout: TimeAmount = .seconds(2)) async throws -> TestResponse {
        var headers: HPACKHeaders?
        var trailers: HPACKHeaders?
        var bytes: [UInt8] = []
        var resetCode: HTTP2ErrorCode?
        loop: while true {
            switch try await next(within: timeout) {
            case .headers(let frame, let endStream):
                if headers == nil { headers = frame } else { trailers = frame }
                if endStream { break loop }
            case .data(let buffer, let endStream):
                bytes += Array(buffer.readableBytesView)
                if endStream { break loop }
            case .reset(let code):
                resetCode = code
                break loop
            case .closed:
                break loop
            }
        }
        let (messages, leftover) = grpcMessages(in: bytes)
        return TestResponse(
            headers: headers ?? HPACKHeaders(), messages: messages, trailers: trailers, leftoverBytes: leftover, resetCode: resetCode)
    }

    /// Resets the stream (RST_STREAM CANCEL), as a client cancelling its call does.
    func reset() async throws {
        try await send(.rstStream(.cancel))
    }

    /// Waits until the stream channel is closed.
    func waitClosed() async throws {
        try await channel.closeFuture.get(within: .seconds(2), "the stream to close")
    }
}

/// Keeps the connection-level frames (stream 0) a client receives; on the connection's loop.
final class RootFrameRecorder: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame

    private(set) var goAways: [(lastStreamID: HTTP2StreamID, code: HTTP2ErrorCode)] = []
    /// The payloads of the PING acknowledgements received.
    private(set) var pingAcks: [HTTP2PingData] = []
    private let firstGoAway: EventLoopPromise<HTTP2StreamID>
    private let settingsAck: EventLoopPromise<Void>

    init(eventLoop: any EventLoop) {
        firstGoAway = eventLoop.makePromise()
        settingsAck = eventLoop.makePromise()
    }

    var goAwayReceived: EventLoopFuture<HTTP2StreamID> { firstGoAway.futureResult }

    /// Completed when the server has acknowledged the client's SETTINGS.
    var settingsAcknowledged: EventLoopFuture<Void> { settingsAck.futureResult }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .goAway(let lastStreamID, let code, _):
            goAways.append((lastStreamID, code))
            firstGoAway.succeed(lastStreamID)
        case .settings(.ack):
            settingsAck.succeed()
        case .ping(let data, ack: true):
            pingAcks.append(data)
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failWaiters(TestTimeout(what: "a frame before the connection closed"))
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failWaiters(TestTimeout(what: "a frame before the connection went away"))
    }

    private func failWaiters(_ error: TestTimeout) {
        firstGoAway.fail(error)
        settingsAck.fail(error)
    }
}

/// An HTTP/2 client connection (prior knowledge, cleartext) with a stream multiplexer.
final class TestConnection: Sendable {
    let channel: any Channel
    let multiplexer: NIOHTTP2Handler.StreamMultiplexer
    let root: NIOLoopBound<RootFrameRecorder>

    private init(channel: any Channel, multiplexer: NIOHTTP2Handler.StreamMultiplexer, root: NIOLoopBound<RootFrameRecorder>) {
        self.channel = channel
        self.multiplexer = multiplexer
        self.root = root
    }

    /// Connects to `port` on the loopback address.
    /// - Parameters:
    ///   - initialWindowSize: the client's SETTINGS_INITIAL_WINDOW_SIZE (how much a server may send
    ///     on a stream before the client grants more).
    ///
    /// Returns once the server has acknowledged the client's SETTINGS: NIOHTTP2 moves the window
    /// target of streams opened before the acknowledgement by the change of the initial window,
    /// which would leave a small-window stream with a negative target that never grants window.
    static func connect(to port: Int, group: any EventLoopGroup, initialWindowSize: Int = 65_535) async throws -> TestConnection {
        let connection = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    var connection = NIOHTTP2Handler.ConnectionConfiguration()
                    connection.initialSettings = [
                        HTTP2Setting(parameter: .maxConcurrentStreams, value: 100),
                        HTTP2Setting(parameter: .maxHeaderListSize, value: 16_384),
                        HTTP2Setting(parameter: .initialWindowSize, value: initialWindowSize),
                    ]
                    var stream = NIOHTTP2Handler.StreamConfiguration()
                    stream.targetWindowSize = initialWindowSize
                    let multiplexer = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                        mode: .client, connectionConfiguration: connection, streamConfiguration: stream
                    ) { inbound in
                        inbound.close()
                    }
                    let root = RootFrameRecorder(eventLoop: channel.eventLoop)
                    try channel.pipeline.syncOperations.addHandler(root)
                    return TestConnection(
                        channel: channel, multiplexer: multiplexer, root: NIOLoopBound(root, eventLoop: channel.eventLoop))
                }
            }
        let root = connection.root
        try await connection.channel.eventLoop.flatSubmit { root.value.settingsAcknowledged }
            .get(within: .seconds(2), "the SETTINGS acknowledgement")
        return connection
    }

    /// Opens a stream; with `autoRead` false it reads only when asked (and so grants no window).
    func makeStream(autoRead: Bool = true) async throws -> TestStream {
        let channel = try await multiplexer.createStreamChannel { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(StreamRecorder())
            }.flatMap {
                autoRead ? channel.eventLoop.makeSucceededVoidFuture() : channel.setOption(.autoRead, value: false)
            }
        }.get(within: .seconds(2), "a stream")
        let recorder = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: StreamRecorder.self), eventLoop: channel.eventLoop)
        }.get()
        return TestStream(channel: channel, recorder: recorder)
    }

    /// The last stream ID of the first GOAWAY the server sends.
    func goAway(within timeout: TimeAmount = .seconds(2)) async throws -> HTTP2StreamID {
        let root = self.root
        return try await channel.eventLoop.flatSubmit { root.value.goAwayReceived }.get(within: timeout, "GOAWAY")
    }

    /// Every GOAWAY received so far.
    func goAways() async throws -> [(lastStreamID: HTTP2StreamID, code: HTTP2ErrorCode)] {
        let root = self.root
        return try await channel.eventLoop.submit { root.value.goAways.map { ($0.lastStreamID, $0.code) } }.get()
    }

    /// Sends a PING and waits for the server to acknowledge it.
    func ping(_ data: UInt64, within timeout: Duration = .seconds(5)) async throws {
        try await channel.writeAndFlush(HTTP2Frame(streamID: .rootStream, payload: .ping(HTTP2PingData(withInteger: data), ack: false)))
        let root = self.root
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let acked = try await channel.eventLoop.submit { root.value.pingAcks.contains(HTTP2PingData(withInteger: data)) }.get()
            if acked { return }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw TestTimeout(what: "the acknowledgement of PING \(data)")
    }

    /// Runs a whole unary call on a new stream.
    func unary(path: String, message: [UInt8], metadata: [(String, String)] = []) async throws -> TestResponse {
        let stream = try await makeStream()
        try await stream.sendUnary(path: path, message: message, metadata: metadata)
        return try await stream.response()
    }

    /// Closes the connection.
    func close() async {
        try? await channel.close()
    }
}
