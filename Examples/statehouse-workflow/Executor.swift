import ArgumentParser
import Foundation
import Logging
import StatehouseClient

/// `executor`: one of several processes that share the runs.
///
/// Each executor holds one session. It campaigns to be the scheduler (only the elected one
/// admits queued runs), and it executes runs: it owns a run through the run's mutex and records
/// each step with a write fenced by the mutex's token and guarded by the run key's mod revision.
struct Executor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Executes runs (one at a time, each owned through its mutex) and campaigns to be the scheduler.")

    @OptionGroup var cluster: ClusterOptions

    @Option(help: "The executor's name, recorded with every step it executes.")
    var name: String

    @Option(help: "The session's lease TTL in seconds: how long a dead executor keeps its runs.")
    var sessionTTL: Int64 = 2

    @Option(help: "How long each step's work takes, in milliseconds.")
    var stepDelayMs: Int = 100

    @Option(help: "How often to look for work and to send the scheduler heartbeat, in milliseconds.")
    var pollMs: Int = 200

    @Option(help: "How long to wait for a run's mutex before moving on, in milliseconds.")
    var lockTimeoutMs: Int = 500

    func validate() throws {
        guard !name.isEmpty else { throw ValidationError("an executor needs a name") }
        guard sessionTTL > 0, stepDelayMs >= 0, pollMs > 0, lockTimeoutMs > 0 else {
            throw ValidationError("the TTL, delays and timeouts must be positive")
        }
    }

    func run() async throws {
        let logger = cluster.logger("workflow.executor")
        let settings = ExecutorSettings(
            name: name, stepDelay: .milliseconds(stepDelayMs), poll: .milliseconds(pollMs),
            lockTimeout: .milliseconds(lockTimeoutMs))
        let ttl = sessionTTL
        try await withStatehouseClient(configuration: cluster.clientConfiguration(), logger: logger) { client in
            let session = try await client.makeSession(ttl: ttl)
            report("executor \(settings.name) session lease=\(session.lease) ttl=\(session.ttl)")
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await Scheduler(session: session, settings: settings, logger: logger).run() }
                group.addTask { try await RunExecutor(session: session, settings: settings, logger: logger).run() }
                group.addTask {
                    // Whatever this executor owns is no longer its own: stop everything.
                    guard let loss = await session.waitUntilLost() else { return }
                    report("session lost (\(loss))")
                    throw StatehouseError(.sessionLost, "the executor's session was lost (\(loss))")
                }
                try await group.next()
                group.cancelAll()
            }
        }
    }
}

/// An executor's settings.
struct ExecutorSettings: Sendable {
    /// The executor's name.
    var name: String
    /// How long each step's work takes.
    var stepDelay: Duration
    /// How often to look for work and to send the scheduler heartbeat.
    var poll: Duration
    /// How long to wait for a run's mutex before moving on.
    var lockTimeout: Duration
}

/// Whether `error` means the task was cancelled (so it must stop, not retry).
func isCancellation(_ error: any Error) -> Bool {
    if error is CancellationError || Task.isCancelled { return true }
    return (error as? StatehouseError)?.code == .cancelled
}

/// The scheduler side of an executor: campaigns in the `workflows/scheduler` election and,
/// while elected, admits queued runs and proclaims a heartbeat.
struct Scheduler: Sendable {
    /// The executor's session.
    let session: Session
    /// The executor's settings.
    let settings: ExecutorSettings
    /// Where failures are logged.
    let logger: Logger

    /// Campaigns, schedules while elected, and campaigns again when the leadership is lost.
    func run() async throws {
        let election = Election(session: session, name: WorkflowKeys.scheduler)
        while true {
            let leader = try await election.campaign(heartbeat(0))
            report("scheduler elected token=\(leader.revision)")
            var beat = 0
            leading: while true {
                do {
                    try await admitQueuedRuns(leader: leader)
                    beat += 1
                    try await election.proclaim(heartbeat(beat))
                } catch let error as StatehouseError where error.code == .notHeld {
                    report("scheduler lost token=\(leader.revision)")
                    break leading
                } catch  where !isCancellation(error) {
                    logger.warning("scheduling failed; trying again", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: settings.poll)
            }
        }
    }

    /// The scheduler key's value: who schedules, and a counter that moves with every heartbeat.
    private func heartbeat(_ beat: Int) -> String {
        #"{"beat":\#(beat),"scheduler":"\#(settings.name)"}"#
    }

    /// Moves every queued run into the runs, in one transaction each that holds only while
    /// `leader` still leads the election.
    ///
    /// - Throws: `notHeld` once the leadership is lost.
    private func admitQueuedRuns(leader: LeaderKey) async throws {
        let client = session.client
        let queued = try await client.get(.prefix(WorkflowKeys.queue))
        for entry in queued.kvs {
            let id = String(entry.keyString.dropFirst(WorkflowKeys.queue.count))
            guard WorkflowKeys.isValidID(id), let request = try? WorkflowJSON.decode(QueuedRun.self, from: entry.value) else {
                logger.warning("ignoring a malformed queue entry", metadata: ["key": "\(entry.keyString)"])
                continue
            }
            let run = try WorkflowJSON.encode(Run(id: id, steps: request.steps))
            let result = try await client.txn()
                .when(.createRevision(leader.key) == leader.revision, .modRevision(entry.key) == entry.modRevision)
                .then(
                    .txn(Txn().when(.version(WorkflowKeys.run(id)) == 0).then(.put(WorkflowKeys.run(id), run))),
                    .delete(entry.key)
                )
                .commit()
            guard result.succeeded else {
                // Either the entry changed under us, or we no longer lead: find out which.
                guard let current = try await client.get(leader.key), current.createRevision == leader.revision else {
                    throw StatehouseError(.notHeld, "the scheduler leadership was lost")
                }
                continue
            }
            if case .txn(let admitted)? = result.results.first, admitted.succeeded {
                report("admitted \(id) steps=\(request.steps)")
            } else {
                report("dropped duplicate \(id)")
            }
        }
    }
}

/// The execution side of an executor: finds runs that are not done, owns one at a time through
/// its mutex, and executes its steps.
struct RunExecutor: Sendable {
    /// The executor's session.
    let session: Session
    /// The executor's settings.
    let settings: ExecutorSettings
    /// Where failures are logged.
    let logger: Logger

    /// Looks for work until cancelled.
    func run() async throws {
        while true {
            var executed = false
            do {
                let runs = try await session.client.get(.prefix(WorkflowKeys.runs)).kvs.compactMap {
                    try? WorkflowJSON.decode(Run.self, from: $0.value)
                }
                // In random order, so that executors starting together spread over the runs.
                for run in runs.shuffled() where run.state != .done {
                    if try await own(run.id) { executed = true }
                }
            } catch  where !isCancellation(error) {
                logger.warning("looking for work failed; trying again", metadata: ["error": "\(error)"])
            }
            if !executed { try await Task.sleep(for: settings.poll) }
        }
    }

    /// Tries to own run `id` without waiting behind another owner; if it gets the mutex,
    /// executes the run's remaining steps and releases it. Returns whether it owned the run.
    private func own(_ id: String) async throws -> Bool {
        let name = WorkflowKeys.lock(id)
        // Someone holds or waits for the mutex: leave the run to them.
        let contenders = try await session.client.get(.prefix(name + "/"), options: GetOptions(countOnly: true))
        guard contenders.count == 0 else { return false }
        let mutex = Mutex(session: session, name: name)
        guard let token = try await lock(mutex) else { return false }
        do {
            try await execute(id, mutex: mutex, token: token)
        } catch let error as StatehouseError where error.code == .notHeld {
            report("lost \(id) token=\(token.revision)")
            return true
        } catch {
            try? await mutex.unlock()
            throw error
        }
        try await mutex.unlock()
        return true
    }

    /// Locks `mutex`, giving up after the lock timeout; the token, or nil if it gave up.
    private func lock(_ mutex: Mutex) async throws -> LockToken? {
        let timeout = settings.lockTimeout
        let first = try await withThrowingTaskGroup(of: LockToken?.self) { group in
            group.addTask { try await mutex.lock() }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        // The lock may have been granted just as the timeout fired (the group has waited for
        // both tasks by now): then it is held, and ours.
        return first ?? mutex.token
    }

    /// Executes run `id`'s remaining steps while `mutex` holds `token`.
    ///
    /// Each write is one transaction nested in ``Mutex/guardedTxn(_:)`` (it applies only while
    /// the token is the lock's) and compares the run key's mod revision with the one read
    /// before the step (it applies only if nobody wrote the run since).
    ///
    /// - Throws: `notHeld` once the mutex is lost.
    private func execute(_ id: String, mutex: Mutex, token: LockToken) async throws {
        let client = session.client
        let runKey = WorkflowKeys.run(id)
        while true {
            let current: KeyValue
            do {
                guard let read = try await client.get(runKey) else {
                    report("vanished \(id)")
                    return
                }
                current = read
            } catch  where !isCancellation(error) {
                logger.warning("reading the run failed; trying again", metadata: ["run": "\(id)", "error": "\(error)"])
                try await Task.sleep(for: settings.poll)
                continue
            }
            let run = try WorkflowJSON.decode(Run.self, from: current.value)
            if run.state == .done { return }
            let unchanged = Compare.Target.modRevision(runKey) == current.modRevision
            do {
                if run.owner != settings.name || run.token != token.revision {
                    // Take the run over: record the new owner and token before the first step.
                    var owned = run
                    owned.owner = settings.name
                    owned.token = token.revision
                    owned.state = .running
                    let result = try await mutex.guardedTxn(Txn().when(unchanged).then(.put(runKey, WorkflowJSON.encode(owned))))
                    guard result.succeeded else {
                        report("conflict \(id) taking over")
                        return
                    }
                    let previous = run.owner.isEmpty ? "-" : run.owner
                    report("owns \(id) token=\(token.revision) next=\(run.next) previous=\(previous) previous-token=\(run.token)")
                    continue
                }
                let number = run.next
                try await Task.sleep(for: settings.stepDelay)  // The step's work.
                var advanced = run
                advanced.next += 1
                advanced.state = advanced.next == advanced.steps ? .done : .running
                let stepKey = WorkflowKeys.step(id, number)
                let record = StepRecord(executor: settings.name, token: token.revision)
                let event = ProgressEvent(run: id, step: number, executor: settings.name, token: token.revision)
                let result = try await mutex.guardedTxn(
                    Txn()
                        .when(unchanged, .version(stepKey) == 0)
                        .then(
                            .put(runKey, WorkflowJSON.encode(advanced)),
                            .put(stepKey, WorkflowJSON.encode(record)),
                            .put(WorkflowKeys.event(id, number), WorkflowJSON.encode(event))
                        ))
                guard result.succeeded else {
                    // The run changed although we hold its mutex, or the step already has a
                    // record: someone else writes it. Leave it alone.
                    report("conflict \(id) step=\(number)")
                    return
                }
                report("step \(id) \(number) token=\(token.revision)")
                if advanced.state == .done {
                    report("finished \(id) token=\(token.revision)")
                    return
                }
            } catch let error as StatehouseError where error.code != .notHeld && !isCancellation(error) {
                // The write's outcome may be unknown: read the run again, which tells.
                logger.warning("writing the run failed; reading it again", metadata: ["run": "\(id)", "error": "\(error)"])
                try await Task.sleep(for: settings.poll)
            }
        }
    }
}
