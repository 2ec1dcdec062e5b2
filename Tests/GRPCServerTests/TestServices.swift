import GRPCServer
import GRPCStatus
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Something that happens once, awaited by a test.
final class Signal: Sendable {
    private let promise: EventLoopPromise<Void>

    init(eventLoop: any EventLoop) {
        promise = eventLoop.makePromise()
    }

    deinit {
        promise.fail(TestTimeout(what: "a signal that never fired"))
    }

    func fire() { promise.succeed() }

    func wait(within timeout: TimeAmount = .seconds(2), _ what: String) async throws {
        try await promise.futureResult.get(within: timeout, what)
    }
}

/// What the server's handlers saw, for the tests to check.
final class ServerProbe: Sendable {
    struct State {
        var calls: [(service: String, method: String, metadata: [(name: String, value: String)], deadline: NIODeadline?)] = []
        var received: [[UInt8]] = []
        var cancelledCount = 0
        var writability: [Bool] = []
        var sentBeforeBlocked: Int?
        var serverCalls: [ServerCall] = []
        var weakCalls: [WeakCall] = []
    }

    let state = NIOLockedValueBox(State())
    let cancelled: Signal
    let blocked: Signal
    let writableAgain: Signal
    let started: Signal

    init(eventLoop: any EventLoop) {
        cancelled = Signal(eventLoop: eventLoop)
        blocked = Signal(eventLoop: eventLoop)
        writableAgain = Signal(eventLoop: eventLoop)
        started = Signal(eventLoop: eventLoop)
    }

    var cancelledCount: Int { state.withLockedValue { $0.cancelledCount } }

    func recordCancelled() {
        state.withLockedValue { $0.cancelledCount += 1 }
        cancelled.fire()
    }

    /// The last call the router saw.
    var lastCall: ServerCall? { state.withLockedValue { $0.serverCalls.last } }
}

/// The paths of the test service.
enum TestPath {
    /// One message in, the same message out, then OK.
    static let unary = "/test.Echo/Unary"
    /// Every message echoed as it arrives; OK when the client half-closes.
    static let bidi = "/test.Echo/Bidi"
    /// The request is a count N (one byte); N messages of 0, 1, … N-1 bytes, then OK.
    static let serverStreaming = "/test.Echo/Count"
    /// Never answers.
    static let hang = "/test.Echo/Hang"
    /// Answers with the request metadata as "name: value" lines, and echoes `hasleader` in trailers.
    static let metadata = "/test.Echo/Metadata"
    /// Fails with FAILED_PRECONDITION and the request message (UTF-8) as grpc-message.
    static let fail = "/test.Echo/Fail"
    /// Ended with UNAVAILABLE by the router, before any message.
    static let refuse = "/test.Echo/Refuse"
    /// Sends 1 KiB messages until the stream is not writable; finishes once writable again.
    static let flood = "/test.Echo/Flood"
    /// A unary echo whose writability handler holds the handler, which holds the call (as a
    /// sender that resumes on writability does).
    static let cycle = "/test.Echo/Cycle"
}

/// A call the test does not keep alive.
struct WeakCall: Sendable {
    weak var call: ServerCall?
}

/// Routes the test service's methods to their handlers.
func makeTestRouter(probe: ServerProbe) -> CallRouter {
    { call in
        probe.state.withLockedValue {
            $0.calls.append((call.service, call.method, call.metadata, call.deadline))
            // Calls to `Cycle` are kept weakly: the test checks that they are freed.
            if call.method == "Cycle" {
                $0.weakCalls.append(WeakCall(call: call))
            } else {
                $0.serverCalls.append(call)
            }
        }
        guard call.service == "test.Echo" else { return nil }
        switch call.method {
        case "Unary": return UnaryEchoHandler(call: call, probe: probe)
        case "Bidi": return BidiEchoHandler(call: call, probe: probe)
        case "Count": return CountHandler(call: call, probe: probe)
        case "Hang": return HangHandler(probe: probe)
        case "Metadata": return MetadataHandler(call: call, probe: probe)
        case "Fail": return FailHandler(call: call, probe: probe)
        case "Flood": return FloodHandler(call: call, probe: probe)
        case "Cycle": return CycleHandler(call: call, probe: probe)
        case "Refuse":
            // Ends the call while the router sets it up, as a service refusing without a leader does.
            call.finish(.unavailable, message: "refused")
            return FailHandler(call: call, probe: probe)
        default: return nil
        }
    }
}

/// The common parts: record messages and cancellation.
class RecordingHandler: ServerCallHandler {
    let probe: ServerProbe
    var messages: [[UInt8]] = []

    init(probe: ServerProbe) {
        self.probe = probe
        probe.started.fire()
    }

    func received(_ message: [UInt8]) {
        messages.append(message)
        probe.state.withLockedValue { $0.received.append(message) }
    }

    func receivedEnd() {}

    func cancelled() {
        probe.recordCancelled()
    }
}

final class UnaryEchoHandler: RecordingHandler {
    let call: ServerCall

    init(call: ServerCall, probe: ServerProbe) {
        self.call = call
        super.init(probe: probe)
    }

    override func receivedEnd() {
        guard messages.count == 1 else {
            call.finish(.internal, message: "expected one message, got \(messages.count)")
            return
        }
        call.send(messages[0])
        call.finish(.ok)
    }
}

final class BidiEchoHandler: RecordingHandler {
    let call: ServerCall

    init(call: ServerCall, probe: ServerProbe) {
        self.call = call
        super.init(probe: probe)
    }

    override func received(_ message: [UInt8]) {
        super.received(message)
        call.send(message)
    }

    override func receivedEnd() {
        call.finish(.ok)
    }
}

final class CountHandler: RecordingHandler {
    let call: ServerCall

    init(call: ServerCall, probe: ServerProbe) {
        self.call = call
        super.init(probe: probe)
    }

    override func received(_ message: [UInt8]) {
        super.received(message)
        let count = Int(message.first ?? 0)
        for index in 0..<count { call.send([UInt8](repeating: UInt8(index), count: index), flush: index == count - 1) }
        call.finish(.ok)
    }
}

final class HangHandler: RecordingHandler {}

final class MetadataHandler: RecordingHandler {
    let call: ServerCall

    init(call: ServerCall, probe: ServerProbe) {
        self.call = call
        super.init(probe: probe)
    }

    override func receivedEnd() {
        let lines = call.metadata.map { "\($0.name): \($0.value)\n" }.joined()
        call.send(Array(lines.utf8))
        let leader = call.metadata.first { $0.name == "hasleader" }?.value ?? "missing"
        call.finish(.ok, trailers: [("hasleader", leader)])
    }
}

final class FailHandler: RecordingHandler {
    let call: ServerCall

    init(call: ServerCall, probe: ServerProbe) {
        self.call = call
        super.init(probe: probe)
    }

    override func receivedEnd() {
        call.finish(.failedPrecondition, message: String(decoding: messages.first ?? [], as: UTF8.self))
    }
}

final class FloodHandler: RecordingHandler {
    let call: ServerCall
    static let limit = 2_000

    init(call: ServerCall, probe: ServerProbe) {
        self.call = call
        super.init(probe: probe)
    }

    override func receivedEnd() {
        let call = self.call
        let probe = self.probe
        call.onWritabilityChanged { [weak call] writable in
            probe.state.withLockedValue { $0.writability.append(writable) }
            if writable {
                probe.writableAgain.fire()
                call?.finish(.ok)
            }
        }
        var sent = 0
        while call.isWritable && sent < Self.limit {
            call.send([UInt8](repeating: 7, count: 1024))
            sent += 1
        }
        probe.state.withLockedValue { $0.sentBeforeBlocked = sent }
        if call.isWritable {
            call.finish(.ok)
        } else {
            probe.blocked.fire()
        }
    }
}

/// A running server for one test.
struct RunningServer {
    let server: GRPCServer
    let port: Int
    let probe: ServerProbe
    let group: any EventLoopGroup

    static func start(
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        configure: (inout GRPCServerConfiguration) -> Void = { _ in },
        http: HTTPRouter? = nil
    ) async throws -> RunningServer {
        var configuration = GRPCServerConfiguration(host: "127.0.0.1", port: 0)
        configure(&configuration)
        let probe = ServerProbe(eventLoop: group.any())
        let server = GRPCServer(configuration: configuration, group: group, router: makeTestRouter(probe: probe), http: http)
        let port = try await server.start()
        return RunningServer(server: server, port: port, probe: probe, group: group)
    }

    func connect(initialWindowSize: Int = 65_535) async throws -> TestConnection {
        try await TestConnection.connect(to: port, group: group, initialWindowSize: initialWindowSize)
    }
}

final class CycleHandler: RecordingHandler {
    let call: ServerCall
    var resumed = 0

    init(call: ServerCall, probe: ServerProbe) {
        self.call = call
        super.init(probe: probe)
        let bound = NIOLoopBound(self, eventLoop: call.eventLoop)
        call.onWritabilityChanged { _ in bound.value.resumed += 1 }
    }

    override func receivedEnd() {
        call.send(messages.first ?? [])
        call.finish(.ok)
        // Registered after the end: must not keep the call alive either.
        let bound = NIOLoopBound(self, eventLoop: call.eventLoop)
        call.onWritabilityChanged { _ in bound.value.resumed += 1 }
    }
}
