import Synchronization

/// Work the client runs in the background (watch streams, lease keep-alives, clean-ups) as
/// child tasks of ``StatehouseClient/run()``, so that no task outlives the client.
///
/// Work handed over before `run()` starts waits for it; work handed over after shutdown is
/// refused.
final class BackgroundTasks: Sendable {
    private struct Job: Sendable {
        let handle: BackgroundTask
        let body: @Sendable () async -> Void
    }

    private let jobs: AsyncStream<Job>
    private let continuation: AsyncStream<Job>.Continuation
    private let live = Synchronization.Mutex<(nextID: Int, handles: [Int: BackgroundTask], closed: Bool)>(
        (0, [:], false))

    init() {
        (jobs, continuation) = AsyncStream.makeStream(of: Job.self)
    }

    /// Runs `body` in the background; nil once the client has shut down.
    @discardableResult
    func spawn(_ body: @escaping @Sendable () async -> Void) -> BackgroundTask? {
        let handle: BackgroundTask? = live.withLock { state in
            guard !state.closed else { return nil }
            state.nextID += 1
            let handle = BackgroundTask(id: state.nextID)
            state.handles[handle.id] = handle
            return handle
        }
        guard let handle else { return nil }
        if case .terminated = continuation.yield(Job(handle: handle, body: body)) {
            _ = live.withLock { $0.handles.removeValue(forKey: handle.id) }
            return nil
        }
        return handle
    }

    /// Runs the jobs until ``close()`` and until every job has finished.
    func run() async {
        await withDiscardingTaskGroup { group in
            for await job in jobs {
                group.addTask {
                    await withTaskGroup(of: Void.self) { inner in
                        inner.addTask { await job.body() }
                        inner.addTask { await job.handle.waitUntilCancelled() }
                        _ = await inner.next()
                        inner.cancelAll()
                    }
                    _ = self.live.withLock { $0.handles.removeValue(forKey: job.handle.id) }
                }
            }
        }
    }

    /// Refuses new work and cancels every job still running.
    func close() {
        let handles = live.withLock { state in
            state.closed = true
            return Array(state.handles.values)
        }
        continuation.finish()
        for handle in handles { handle.cancel() }
    }
}

/// A handle on one background job: cancel it, or learn that it was cancelled.
final class BackgroundTask: Sendable {
    let id: Int
    private let state = Synchronization.Mutex<(cancelled: Bool, waiters: [CheckedContinuation<Void, Never>])>(
        (false, []))

    init(id: Int) {
        self.id = id
    }

    /// Stops the job (its task is cancelled).
    func cancel() {
        let waiters = state.withLock { state in
            state.cancelled = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once ``cancel()`` is called or the calling task is cancelled.
    func waitUntilCancelled() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state in
                    if state.cancelled || Task.isCancelled { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            cancel()
        }
    }
}

/// A one-shot signal many tasks can wait for.
final class Signal<Value: Sendable>: Sendable {
    private struct State {
        var value: Value?
        var nextID = 0
        var waiters: [Int: CheckedContinuation<Value?, Never>] = [:]
    }

    private let state = Synchronization.Mutex<State>(State())

    init() {}

    /// The value, once fired.
    var value: Value? { state.withLock { $0.value } }

    /// Fires the signal with `value`; later calls are ignored. Returns whether this call fired it.
    @discardableResult
    func fire(_ value: Value) -> Bool {
        let waiters: [CheckedContinuation<Value?, Never>]? = state.withLock { state in
            guard state.value == nil else { return nil }
            state.value = value
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        guard let waiters else { return false }
        for waiter in waiters { waiter.resume(returning: value) }
        return true
    }

    /// Waits until the signal fires; nil if the calling task is cancelled first.
    func wait() async -> Value? {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Value?, Never>) in
                let now: Value?? = state.withLock { state in
                    if let value = state.value { return .some(value) }
                    if Task.isCancelled { return .some(nil) }
                    state.waiters[id] = continuation
                    return .none
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume(returning: nil)
        }
    }
}
