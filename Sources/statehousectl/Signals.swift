import Dispatch
import Foundation
import Synchronization

/// SIGINT and SIGTERM, the signals that end the commands that run until stopped (`watch`,
/// `lock`, `elect`, `lease keep-alive`).
///
/// The signals are caught once for the whole process (from the first use on) and handed to
/// whoever listens at the time; a signal nobody listens for is ignored. (Creating and
/// cancelling dispatch signal sources over and over loses signals on Linux.)
final class TerminationSignals: Sendable {
    /// The process's one instance.
    static let shared = TerminationSignals()

    private struct State {
        var nextID = 0
        var listeners: [Int: AsyncStream<Int32>.Continuation] = [:]
        var sources: [any DispatchSourceSignal] = []
    }

    private let state = Mutex(State())

    private init() {}

    /// Runs `body` until it returns or SIGINT or SIGTERM arrives, whichever is first; on a
    /// signal, `body` is cancelled and nil is returned.
    static func run<Result: Sendable>(_ body: @escaping @Sendable () async throws -> Result) async throws -> Result? {
        let signals = shared.stream()
        return try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                for await _ in signals { return nil }
                // Cancelled: the body ended first, and its result is taken.
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }

    /// The signal numbers that arrive while the stream is iterated.
    func stream() -> AsyncStream<Int32> {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        let id = state.withLock { state in
            if state.sources.isEmpty { state.sources = [SIGINT, SIGTERM].map(install) }
            state.nextID += 1
            state.listeners[state.nextID] = continuation
            return state.nextID
        }
        continuation.onTermination = { [self] _ in
            _ = state.withLock { $0.listeners.removeValue(forKey: id) }
        }
        return stream
    }

    private func install(_ number: Int32) -> any DispatchSourceSignal {
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { [self] in
            for listener in state.withLock({ Array($0.listeners.values) }) { listener.yield(number) }
        }
        source.resume()
        return source
    }
}
