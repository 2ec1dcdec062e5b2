import Foundation
import StatehouseClient

/// The state of a workflow run.
enum RunState: String, Codable, Sendable {
    /// Admitted by the scheduler, no step executed yet.
    case pending
    /// An executor owns it (or owned it before it died) and has executed some steps.
    case running
    /// Every step has been executed.
    case done
}

/// A workflow run as stored under ``WorkflowKeys/run(_:)``.
struct Run: Codable, Sendable, Hashable {
    /// The run's ID.
    var id: String
    /// How many steps it has in all.
    var steps: Int
    /// The next step to execute (`steps` once done).
    var next: Int
    /// Where it stands.
    var state: RunState
    /// The executor that made the last write ("" before the first).
    var owner: String
    /// The fencing token (lock revision) of the last write (0 before the first).
    var token: Int64

    /// A run just admitted: nothing executed, nobody owns it.
    init(id: String, steps: Int) {
        self.id = id
        self.steps = steps
        next = 0
        state = .pending
        owner = ""
        token = 0
    }
}

/// The record of one executed step, created once under ``WorkflowKeys/step(_:_:)``.
struct StepRecord: Codable, Sendable, Hashable {
    /// The executor that executed the step.
    var executor: String
    /// The fencing token it held.
    var token: Int64
}

/// A progress event, written under ``WorkflowKeys/event(_:_:)`` with each step.
struct ProgressEvent: Codable, Sendable, Hashable {
    /// The run.
    var run: String
    /// The step just executed.
    var step: Int
    /// The executor that executed it.
    var executor: String
    /// The fencing token it held.
    var token: Int64
}

/// A run submitted but not admitted yet, under ``WorkflowKeys/queued(_:)``.
struct QueuedRun: Codable, Sendable, Hashable {
    /// How many steps the run will have.
    var steps: Int
}

/// Where the workflow recipe keeps things. Every kind of key has a prefix of its own, so that a
/// prefix read returns one kind only.
enum WorkflowKeys {
    /// Submitted runs waiting for the scheduler.
    static let queue = "workflows/queue/"
    /// Admitted runs.
    static let runs = "workflows/runs/"
    /// Step records.
    static let steps = "workflows/steps/"
    /// Progress events.
    static let events = "workflows/events/"
    /// Monitors' checkpoints.
    static let monitors = "workflows/monitors/"
    /// The scheduler election.
    static let scheduler = "workflows/scheduler"

    /// A queued run.
    static func queued(_ id: String) -> String { queue + id }
    /// A run.
    static func run(_ id: String) -> String { runs + id }
    /// The step records of a run.
    static func steps(of id: String) -> String { steps + id + "/" }
    /// Step `number`'s record.
    static func step(_ id: String, _ number: Int) -> String { steps(of: id) + String(number) }
    /// The event of step `number`.
    static func event(_ id: String, _ number: Int) -> String { events + id + "/" + String(number) }
    /// The name of the mutex that owns a run (its candidates queue under `<name>/`).
    static func lock(_ id: String) -> String { "workflows/locks/" + id }
    /// A monitor's checkpoint: the revision of the last event it processed.
    static func monitor(_ name: String) -> String { monitors + name }

    /// Whether `id` can name a run: not empty, no `/`.
    static func isValidID(_ id: String) -> Bool { !id.isEmpty && !id.contains("/") }
}

/// JSON in and out of the store's values.
enum WorkflowJSON {
    /// Encodes `value` with sorted keys.
    static func encode(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(value))
    }

    /// Decodes a `Value` from `bytes`.
    static func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8]) throws -> Value {
        try JSONDecoder().decode(type, from: Data(bytes))
    }
}

/// Writes one line to standard output at once (unbuffered), so that a reader of a redirected
/// output sees each line as soon as it is written.
func report(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
