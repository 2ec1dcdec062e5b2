import Logging
import ServiceLifecycle
import StatehouseClient

import struct Foundation.Data
import struct Foundation.Date

/// One executor of a workflow platform: claims runs from the store's queue, owns each through
/// the run's `DistributedMutex`, executes its steps, records each step exactly
/// once under the mutex's fencing token, and acknowledges the queue item when the run is done.
///
/// Several executors (in several processes) share the runs. When one dies, its session's lease
/// and its claim's lease expire; the run's queue item becomes visible again, another executor
/// claims it, takes the mutex with a larger token, records itself as the run's owner and goes on
/// from the first step without a record. Steps already recorded are not executed again.
///
/// **What "exactly once" means.** Each step is *recorded* exactly once, in a transaction that
/// applies only while the recorder holds the run's mutex (the fence), the run is as it read it
/// (its mod revision), and the step has no record (its version is 0). The *work* of a step
/// that was in progress when its executor died is done again by the next owner, so work with
/// effects outside Statehouse must be idempotent, or pass ``StepContext/token`` on to a system
/// that refuses tokens older than the last it saw.
public struct WorkflowExecutor: Service {
    /// An executor's settings.
    public struct Configuration: Sendable, Hashable {
        /// The executor's name, recorded with every step it executes.
        public var name: String
        /// How long to wait when there is nothing to do, or after a failed call.
        public var poll: Duration

        /// Settings for the executor `name`.
        public init(name: String, poll: Duration = .milliseconds(200)) {
            self.name = name
            self.poll = poll
        }
    }

    /// Where the runs live.
    public let store: WorkflowStore
    /// The session the executor's mutexes are held under.
    public let session: Session
    /// The executor's settings.
    public let configuration: Configuration
    private let observer: @Sendable (ExecutorEvent) -> Void
    private let step: @Sendable (StepContext) async throws -> Data?
    private let logger: Logger

    /// An executor of `store`'s runs under `session`.
    ///
    /// - Parameters:
    ///   - store: Where the runs live.
    ///   - session: The session the run mutexes are held under; the executor stops when it is lost.
    ///   - configuration: The executor's name and poll interval.
    ///   - logger: Where failures are logged.
    ///   - observer: Told what the executor does (owning, recording, finishing, losing runs).
    ///   - step: Does the work of one step; what it returns is stored in the step's record. If
    ///     it throws, the step is tried again after ``Configuration/poll``.
    public init(
        store: WorkflowStore, session: Session, configuration: Configuration, logger: Logger = Logger(label: "statehouse.workflow"),
        observer: @escaping @Sendable (ExecutorEvent) -> Void = { _ in },
        step: @escaping @Sendable (StepContext) async throws -> Data?
    ) {
        self.store = store
        self.session = session
        self.configuration = configuration
        self.logger = logger
        self.observer = observer
        self.step = step
    }

    /// Executes runs until cancelled or shut down gracefully.
    ///
    /// - Throws: `StatehouseError` with code `sessionLost` when the session is lost: from
    ///   then on the executor owns nothing, and it must not finish anything it was doing.
    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await executeRuns() }
                group.addTask {
                    guard let loss = await session.waitUntilLost() else { return }
                    throw StatehouseError(.sessionLost, "the executor's session was lost (\(loss))")
                }
                try await group.next()
                group.cancelAll()
            }
        }
    }

    /// Claims and executes runs until cancelled.
    private func executeRuns() async throws {
        while true {
            var worked = false
            do {
                if let claim = try await store.queue.claim(owner: configuration.name) {
                    worked = true
                    try await execute(claim)
                }
            } catch  where !isCancellation(error) {
                logger.warning("executing runs failed; trying again", metadata: ["error": "\(error)"])
            }
            if !worked { try await Task.sleep(for: configuration.poll) }
        }
    }

    /// Executes the run `claim` names, keeping the claim alive meanwhile, and gives the claim
    /// back if the run is not finished.
    private func execute(_ claim: WorkClaim) async throws {
        let id = claim.item.id
        let client = store.client
        let keepAlive = client.keepAlive(claim.lease, ttl: store.queue.configuration.visibilityTimeout)
        defer { keepAlive.cancel() }
        guard let spec = try? StatehouseJSON.makeDecoder().decode(RunSpec.self, from: claim.item.payload), spec.steps > 0 else {
            logger.warning("dead-lettering a malformed run", metadata: ["run": "\(id)"])
            try await store.queue.deadLetter(claim)
            return
        }
        let mutex = DistributedMutex(session: session, name: store.lockName(id))
        // The claim makes this executor the only one trying; a previous owner whose session has
        // not expired yet may still hold the mutex, so wait for it (as long as the claim holds).
        let token = try await withThrowingTaskGroup(of: LockToken?.self) { group in
            group.addTask { try await mutex.lock() }
            group.addTask {
                _ = await keepAlive.waitUntilLost()
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        guard let token = token ?? mutex.token else { return }
        var finished = false
        do {
            finished = try await executeSteps(id, spec: spec, claim: claim, mutex: mutex, token: token)
        } catch let error as StatehouseError where error.code == .notHeld {
            observer(.lost(run: id, token: token.revision))
            return
        } catch {
            try? await mutex.unlock()
            throw error
        }
        try await mutex.unlock()
        if !finished { try await store.queue.release(claim) }
    }

    /// Executes run `id`'s remaining steps while `mutex` holds `token`; returns whether the run
    /// is done.
    ///
    /// - Throws: `notHeld` once the mutex is lost.
    private func executeSteps(
        _ id: String, spec: RunSpec, claim: WorkClaim, mutex: DistributedMutex, token: LockToken
    ) async throws -> Bool {
        let client = store.client
        let runKey = store.runKey(id)
        let name = configuration.name
        while true {
            do {
                guard let current = try await client.get(runKey) else {
                    // The first owner creates the run.
                    let run = WorkflowRun(
                        id: id, steps: spec.steps, input: spec.input, next: 0, state: .pending, owner: name, token: token.revision)
                    let created = try await mutex.guardedTxn(
                        Txn().when(.version(runKey) == 0).then(try .put(runKey, encoding: run)))
                    if created.succeeded {
                        observer(.owned(run: id, token: token.revision, next: 0, previousOwner: nil, previousToken: 0))
                    }
                    continue
                }
                let run = try current.decode(WorkflowRun.self)
                let unchanged = Compare.Target.modRevision(runKey) == current.modRevision
                if run.state == .done {
                    // Finished by an owner whose claim had lapsed: acknowledge it now.
                    try? await store.queue.ack(claim)
                    observer(.acknowledged(run: id))
                    return true
                }
                if run.owner != name || run.token != token.revision {
                    // Take the run over: record the new owner and token before the first step.
                    var owned = run
                    owned.owner = name
                    owned.token = token.revision
                    owned.state = .running
                    let result = try await mutex.guardedTxn(Txn().when(unchanged).then(try .put(runKey, encoding: owned)))
                    guard result.succeeded else {
                        observer(.conflict(run: id, step: nil))
                        return false
                    }
                    observer(
                        .owned(
                            run: id, token: token.revision, next: run.next, previousOwner: run.owner.isEmpty ? nil : run.owner,
                            previousToken: run.token))
                    continue
                }
                let number = run.next
                let output: Data?
                do {
                    output = try await step(
                        StepContext(run: id, step: number, steps: run.steps, input: run.input, executor: name, token: token.revision))
                } catch  where !isCancellation(error) {
                    logger.warning("a step failed; trying again", metadata: ["run": "\(id)", "step": "\(number)", "error": "\(error)"])
                    try await Task.sleep(for: configuration.poll)
                    continue
                }
                var advanced = run
                advanced.next += 1
                advanced.state = advanced.next == advanced.steps ? .done : .running
                if advanced.state == .done { advanced.finishedAt = Date().timeIntervalSince1970 }
                let stepKey = store.stepKey(id, number)
                var writes: [Operation] = [
                    try .put(runKey, encoding: advanced),
                    try .put(stepKey, encoding: StepRecord(executor: name, token: token.revision, output: output)),
                    try store.events.append(
                        "\(id)/\(number)", encoding: StepEvent(run: id, step: number, executor: name, token: token.revision)),
                ]
                if advanced.state == .done {
                    // The queue item is acknowledged with the last step, if the claim still holds.
                    writes.append(.txn(Txn().when(store.queue.isHeld(claim)).then(try store.queue.ackOperations(claim))))
                }
                let result = try await mutex.guardedTxn(Txn().when(unchanged, .version(stepKey) == 0).then(writes))
                guard result.succeeded else {
                    // The run changed although we hold its mutex, or the step already has a
                    // record: someone else writes it. Leave it alone.
                    observer(.conflict(run: id, step: number))
                    return false
                }
                observer(.stepRecorded(run: id, step: number, token: token.revision))
                if advanced.state == .done {
                    observer(.finished(run: id, token: token.revision))
                    return true
                }
            } catch let error as StatehouseError where error.code != .notHeld && !isCancellation(error) {
                // The write's outcome may be unknown: read the run again, which tells.
                logger.warning("writing the run failed; reading it again", metadata: ["run": "\(id)", "error": "\(error)"])
                try await Task.sleep(for: configuration.poll)
            }
        }
    }
}

/// What a step is executing.
public struct StepContext: Sendable, Hashable {
    /// The run's ID.
    public var run: String
    /// The step's number, from 0.
    public var step: Int
    /// How many steps the run has.
    public var steps: Int
    /// The run's input.
    public var input: Data
    /// The executor's name.
    public var executor: String
    /// The fencing token the executor holds the run with; pass it to systems outside
    /// Statehouse so they can refuse writes from an earlier owner.
    public var token: Int64
}

/// What a ``WorkflowExecutor`` did.
public enum ExecutorEvent: Sendable, Hashable {
    /// It owns `run` with `token` and goes on at step `next`; `previousOwner` wrote the run
    /// last, with `previousToken` (nil and 0 for a new run).
    case owned(run: String, token: Int64, next: Int, previousOwner: String?, previousToken: Int64)
    /// It recorded `step` of `run`.
    case stepRecorded(run: String, step: Int, token: Int64)
    /// It recorded the last step of `run` (and acknowledged its queue item if its claim held).
    case finished(run: String, token: Int64)
    /// It claimed `run` and found it finished by an earlier owner; it acknowledged the item.
    case acknowledged(run: String)
    /// It lost the mutex of `run` (a write was refused by the fence).
    case lost(run: String, token: Int64)
    /// Somebody else wrote `run` (at `step`, if recording one) although this executor holds it.
    case conflict(run: String, step: Int?)
}

/// Whether `error` means the task was cancelled (so it must stop, not retry).
func isCancellation(_ error: any Error) -> Bool {
    if error is CancellationError || Task.isCancelled { return true }
    return (error as? StatehouseError)?.code == .cancelled
}
