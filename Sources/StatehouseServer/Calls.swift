import GRPCServer
import GRPCStatus
import SwiftProtobuf
import Synchronization

/// Answers a unary call exactly once.
struct UnaryResponder: Sendable {
    let call: ServerCall
    let cancellation: CancellationHooks

    /// Runs `body` if the client cancels the call (at once if it already did).
    func onCancel(_ body: @escaping @Sendable () -> Void) { cancellation.add(body) }

    func succeed(_ response: some SwiftProtobuf.Message, trailers: [(String, String)] = []) {
        do {
            let bytes: [UInt8] = try response.serializedBytes()
            // One flush for the headers, the message and the trailers: one write to the socket.
            call.send(bytes, flush: false)
            call.finish(.ok, trailers: trailers)
        } catch {
            call.finish(.internal, message: "failed to encode the response: \(error)")
        }
    }

    func fail(_ error: ServiceError) {
        call.finish(error.code, message: error.message)
    }
}

/// A unary call: one request message, one response or an error. The handler runs on the call's
/// event loop when the request has arrived; it may answer from any thread.
final class UnaryCall<Request: SwiftProtobuf.Message>: ServerCallHandler {
    typealias Handler = (Request, UnaryResponder) -> Void

    private let call: ServerCall
    private let handler: Handler
    private var request: Request?
    private let cancellation = CancellationHooks()

    init(call: ServerCall, handler: @escaping Handler) {
        self.call = call
        self.handler = handler
    }

    func received(_ message: [UInt8]) {
        guard request == nil else {
            call.finish(.unimplemented, message: "grpc: a unary call got more than one request message")
            return
        }
        do {
            request = try Request(serializedBytes: message)
        } catch {
            call.finish(.internal, message: "grpc: error unmarshalling request: \(error)")
        }
    }

    func receivedEnd() {
        guard let request else {
            if !call.isFinished { call.finish(.internal, message: "grpc: the client sent no request message") }
            return
        }
        handler(request, UnaryResponder(call: call, cancellation: cancellation))
    }

    func cancelled() { cancellation.fire() }
}

/// Work to undo when a call is cancelled (tasks to cancel), callable from any thread.
final class CancellationHooks: Sendable {
    private let state = Mutex<(fired: Bool, hooks: [@Sendable () -> Void])>((false, []))

    /// Adds a hook; runs it at once if the call was already cancelled.
    func add(_ hook: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state in
            if state.fired { return true }
            state.hooks.append(hook)
            return false
        }
        if runNow { hook() }
    }

    /// Runs every hook once.
    func fire() {
        let hooks = state.withLock { state in
            state.fired = true
            defer { state.hooks = [] }
            return state.hooks
        }
        for hook in hooks { hook() }
    }
}

/// A streaming call: every request message goes to `onMessage`; `onEnd` runs when the client
/// half-closes and `onCancel` when the call ends early.
final class StreamingCall<Request: SwiftProtobuf.Message>: ServerCallHandler {
    private let call: ServerCall
    private let onMessage: (Request) -> Void
    private let onEnd: () -> Void
    private let onCancel: () -> Void

    init(
        call: ServerCall, onMessage: @escaping (Request) -> Void, onEnd: @escaping () -> Void = {},
        onCancel: @escaping () -> Void = {}
    ) {
        self.call = call
        self.onMessage = onMessage
        self.onEnd = onEnd
        self.onCancel = onCancel
    }

    func received(_ message: [UInt8]) {
        do {
            onMessage(try Request(serializedBytes: message))
        } catch {
            call.finish(.internal, message: "grpc: error unmarshalling request: \(error)")
            onCancel()
        }
    }

    func receivedEnd() { onEnd() }

    func cancelled() { onCancel() }
}

extension ServerCall {
    /// Sends one message, ignoring an encoding failure (our messages always encode).
    func send(_ message: some SwiftProtobuf.Message) {
        guard let bytes: [UInt8] = try? message.serializedBytes() else { return }
        send(bytes)
    }

    /// Ends the call with an error.
    func fail(_ error: ServiceError) { finish(error.code, message: error.message) }

    /// Whether the client asked for a call that needs a leader (etcd's `hasleader` metadata).
    var requiresLeader: Bool { metadata.contains { $0.name == "hasleader" && $0.value == "true" } }
}
