import StatehouseClient

import struct Foundation.Data
import struct Foundation.Date

/// Where a workflow platform's state lives in Statehouse, and how it is read, submitted to and
/// trimmed.
///
/// Keys, under the store's prefix `P` (`workflows/` by default):
///
/// | key | value | written by |
/// | --- | --- | --- |
/// | `P/queue/…` | the runs to execute (a ``WorkQueue``; item ID = run ID) | ``submit(_:steps:input:)`` |
/// | `P/runs/<id>` | the ``WorkflowRun`` | its executors, under the run's fence |
/// | `P/steps/<id>/<n>` | the ``StepRecord`` of step `n`, created once | the executor that did it |
/// | `P/events/<id>/<n>` | the ``StepEvent`` of step `n` (the ``EventLog``) | the same transaction |
/// | `P/consumers/<name>` | an event consumer's position | ``EventLog/consume(as:from:onGap:_:)`` |
/// | `P/locks/<id>/<lease>` | the run's `DistributedMutex` | its owner |
/// | `P/scheduler/<lease>` | the scheduler election's candidacies | ``ElectedScheduler`` |
public struct WorkflowStore: Sendable {
    /// The client the store lives on.
    public let client: StatehouseClient
    /// The prefix of every key (ends with `/`).
    public let prefix: String
    /// The queue of runs to execute.
    public let queue: WorkQueue
    /// The step events.
    public let events: EventLog

    /// The store under `prefix` (a `/` is appended if missing); `queue` sets the visibility
    /// timeout and attempts of the run queue.
    public init(client: StatehouseClient, prefix: String = "workflows/", queue: WorkQueue.Configuration = WorkQueue.Configuration()) {
        let root = prefix.hasSuffix("/") ? prefix : prefix + "/"
        self.client = client
        self.prefix = root
        self.queue = WorkQueue(client: client, prefix: root + "queue/", configuration: queue)
        self.events = EventLog(client: client, prefix: root + "events/", positionsPrefix: root + "consumers/")
    }

    // MARK: - Keys

    /// The key of run `id`.
    public func runKey(_ id: String) -> String { prefix + "runs/" + id }
    /// The prefix of run `id`'s step records.
    public func stepsPrefix(_ id: String) -> String { prefix + "steps/" + id + "/" }
    /// The key of step `number` of run `id`.
    public func stepKey(_ id: String, _ number: Int) -> String { stepsPrefix(id) + String(number) }
    /// The name of the mutex that owns run `id`.
    public func lockName(_ id: String) -> String { prefix + "locks/" + id }
    /// The name of the scheduler election.
    public var schedulerElection: String { prefix + "scheduler" }

    // MARK: - Submitting and reading

    /// Submits run `id` of `steps` steps with `input`: enqueues it, unless a run with that ID
    /// exists or is queued, done or dead. Returns whether it was submitted.
    @discardableResult
    public func submit(_ id: String, steps: Int, input: Data = Data()) async throws -> Bool {
        try WorkflowError.checkID(id)
        precondition(steps > 0, "a run has at least one step")
        let spec = try StatehouseJSON.makeEncoder().encode(RunSpec(steps: steps, input: input))
        return try await queue.enqueue(id, payload: spec, unless: [.version(runKey(id)) == 0])
    }

    /// Run `id`; nil if there is none (not yet started, or deleted by retention).
    public func run(_ id: String) async throws -> WorkflowRun? {
        try await client.get(runKey(id), as: WorkflowRun.self)
    }

    /// Every run, by ID order.
    public func runs() async throws -> [WorkflowRun] {
        try await client.get(.prefix(prefix + "runs/")).kvs.map { try $0.decode(WorkflowRun.self) }
    }

    /// Run `id`'s step records, by step number.
    public func steps(of id: String) async throws -> [Int: StepRecord] {
        let stored = try await client.get(.prefix(stepsPrefix(id))).kvs
        var records: [Int: StepRecord] = [:]
        for kv in stored {
            guard let number = Int(kv.keyString.dropFirst(stepsPrefix(id).count)) else { continue }
            records[number] = try kv.decode(StepRecord.self)
        }
        return records
    }

    // MARK: - Retention

    /// Deletes what `policy` says is old enough: finished runs with their step records and
    /// events, done records of the queue; and compacts the history if asked to. Returns what it
    /// removed.
    ///
    /// An ``ElectedScheduler`` runs it, so one process does it at a time.
    public func applyRetention(_ policy: RetentionPolicy, now: Date = Date()) async throws -> RetentionReport {
        var report = RetentionReport()
        let cutoff = now.timeIntervalSince1970
        for run in try await runs() where run.state == .done {
            guard let finished = run.finishedAt, finished + policy.finishedRuns.seconds <= cutoff else { continue }
            let result = try await client.txn()
                .when(.version(runKey(run.id)) > 0)
                .then(.delete(runKey(run.id)), .delete(.prefix(stepsPrefix(run.id))), .delete(.prefix(events.prefix + run.id + "/")))
                .commit()
            if result.succeeded { report.deletedRuns.append(run.id) }
        }
        let done = try await client.get(.prefix(queue.prefix + "done/")).kvs
        for kv in done {
            guard let acked = try? kv.decode(Double.self), acked + policy.doneRecords.seconds <= cutoff else { continue }
            let result = try await client.txn().when(.modRevision(kv.key) == kv.modRevision).then(.delete(kv.key)).commit()
            if result.succeeded { report.deletedDoneRecords += 1 }
        }
        if policy.compactHistory {
            // Keep every revision a consumer has not consumed yet.
            let current = try await client.get(.key(prefix), options: GetOptions(countOnly: true)).header.revision
            let oldestNeeded = try await events.positions().values.map { $0 + 1 }.min() ?? current
            let target = min(current, oldestNeeded)
            if target > 1 {
                do {
                    try await client.compact(revision: target)
                    report.compactedTo = target
                } catch let error as StatehouseError where error.code == .compacted {
                    // Already compacted at least that far.
                }
            }
        }
        return report
    }
}

/// What a run executes, as submitted.
struct RunSpec: Codable, Sendable {
    var steps: Int
    var input: Data
}

/// The state of a workflow run.
public enum RunState: String, Codable, Sendable {
    /// Started, no step recorded yet.
    case pending
    /// Some steps are recorded.
    case running
    /// Every step is recorded.
    case done
}

/// A workflow run as stored under ``WorkflowStore/runKey(_:)``.
public struct WorkflowRun: Codable, Sendable, Hashable {
    /// The run's ID.
    public var id: String
    /// How many steps it has.
    public var steps: Int
    /// The input it was submitted with.
    public var input: Data
    /// The next step to execute (`steps` once done).
    public var next: Int
    /// Where it stands.
    public var state: RunState
    /// The executor that made the last write.
    public var owner: String
    /// The fencing token of the last write.
    public var token: Int64
    /// When it finished (seconds since 1970); nil before.
    public var finishedAt: Double?
}

/// The record of one step, created once under ``WorkflowStore/stepKey(_:_:)``.
public struct StepRecord: Codable, Sendable, Hashable {
    /// The executor that executed the step.
    public var executor: String
    /// The fencing token it held.
    public var token: Int64
    /// What the step returned.
    public var output: Data?

    /// A record with the given values.
    public init(executor: String, token: Int64, output: Data? = nil) {
        self.executor = executor
        self.token = token
        self.output = output
    }
}

/// The event written with each step record.
public struct StepEvent: Codable, Sendable, Hashable {
    /// The run.
    public var run: String
    /// The step.
    public var step: Int
    /// The executor that executed it.
    public var executor: String
    /// The fencing token it held.
    public var token: Int64

    /// An event with the given values.
    public init(run: String, step: Int, executor: String, token: Int64) {
        self.run = run
        self.step = step
        self.executor = executor
        self.token = token
    }
}

/// How long finished work is kept.
public struct RetentionPolicy: Sendable, Hashable {
    /// How long a finished run (with its step records and events) is kept after it finished.
    public var finishedRuns: Duration
    /// How long the queue remembers an acknowledged ID (and refuses to enqueue it again).
    public var doneRecords: Duration
    /// Whether to compact the store's history up to the oldest position an event consumer
    /// still needs. Compaction is cluster-wide: only turn it on if nothing else needs older
    /// revisions.
    public var compactHistory: Bool

    /// A policy with the given values (defaults: a day, a week, no compaction).
    public init(finishedRuns: Duration = .seconds(86_400), doneRecords: Duration = .seconds(604_800), compactHistory: Bool = false) {
        self.finishedRuns = finishedRuns
        self.doneRecords = doneRecords
        self.compactHistory = compactHistory
    }
}

/// What ``WorkflowStore/applyRetention(_:now:)`` removed.
public struct RetentionReport: Sendable, Hashable {
    /// The runs deleted.
    public var deletedRuns: [String] = []
    /// How many done records of the queue were deleted.
    public var deletedDoneRecords = 0
    /// The revision the history was compacted to, if it was.
    public var compactedTo: Int64?
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
