/// A record of the operations clients performed against a system, with the
/// (simulated) times at which each was invoked and completed.
///
/// Times are opaque `Int64` ticks. Two operations are ordered in real time only
/// if one returned strictly before the other was called; an operation returning
/// at the same tick another is called is treated as concurrent with it.
///
/// Record either whole operations with `append(client:_:call:return:output:)`,
/// or invocations and completions separately with `invoke(client:_:at:)` and
/// `complete(_:returning:at:)`. An operation that is never completed has an
/// unknown outcome: it may have taken effect at any point after its call, or
/// never, and any output is acceptable.
public struct History<Model: LinearizabilityModel>: Sendable {
    /// How an operation ended.
    public enum Outcome: Sendable {
        /// The client observed `output` at the given time.
        case returned(Model.Output, at: Int64)
        /// The client never learned the outcome (e.g. it timed out); the
        /// operation is treated as returning at +infinity with any output.
        case unknown
    }

    /// One client operation.
    public struct Operation: Sendable {
        /// The client that issued the operation (used in reports only).
        public var client: Int
        /// What the client asked for.
        public var input: Model.Input
        /// When the client issued the operation.
        public var callTime: Int64
        /// How the operation ended.
        public var outcome: Outcome

        /// Creates an operation.
        public init(client: Int, input: Model.Input, callTime: Int64, outcome: Outcome) {
            if case .returned(_, let returnTime) = outcome {
                precondition(returnTime >= callTime, "operation returns before it is called")
            }
            self.client = client
            self.input = input
            self.callTime = callTime
            self.outcome = outcome
        }

        /// The time the operation returned, or `nil` if its outcome is unknown.
        public var returnTime: Int64? {
            if case .returned(_, let time) = outcome { return time }
            return nil
        }

        /// The observed output, or `nil` if the outcome is unknown.
        public var output: Model.Output? {
            if case .returned(let output, _) = outcome { return output }
            return nil
        }
    }

    /// The recorded operations; an operation's identifier is its index here.
    public private(set) var operations: [Operation]

    /// Creates a history from the given operations.
    public init(_ operations: [Operation] = []) {
        self.operations = operations
    }

    /// The number of recorded operations.
    public var count: Int { operations.count }

    /// Appends `operation` and returns its identifier.
    @discardableResult
    public mutating func append(_ operation: Operation) -> Int {
        operations.append(operation)
        return operations.count - 1
    }

    /// Appends a completed operation and returns its identifier.
    @discardableResult
    public mutating func append(
        client: Int, _ input: Model.Input, call callTime: Int64,
        return returnTime: Int64, output: Model.Output
    ) -> Int {
        append(
            Operation(
                client: client, input: input, callTime: callTime,
                outcome: .returned(output, at: returnTime)))
    }

    /// Appends an operation whose outcome is unknown and returns its identifier.
    @discardableResult
    public mutating func appendUnknown(client: Int, _ input: Model.Input, call callTime: Int64) -> Int {
        append(Operation(client: client, input: input, callTime: callTime, outcome: .unknown))
    }

    /// Records that `client` invoked `input` at `time`; returns the identifier
    /// to pass to `complete(_:returning:at:)`. Until completed, the operation's
    /// outcome is unknown.
    @discardableResult
    public mutating func invoke(client: Int, _ input: Model.Input, at time: Int64) -> Int {
        appendUnknown(client: client, input, call: time)
    }

    /// Records that the operation `id` returned `output` at `time`.
    public mutating func complete(_ id: Int, returning output: Model.Output, at time: Int64) {
        guard case .unknown = operations[id].outcome else {
            preconditionFailure("operation \(id) completed twice")
        }
        precondition(time >= operations[id].callTime, "operation returns before it is called")
        operations[id].outcome = .returned(output, at: time)
    }
}
