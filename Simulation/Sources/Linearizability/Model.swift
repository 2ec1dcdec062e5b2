/// A sequential specification of an object, used to decide whether a concurrent
/// history of operations on that object is linearizable.
///
/// The model is deterministic: given a state, an input and the output the client
/// observed, `step(_:_:_:)` either returns the single successor state or `nil` when
/// that output is impossible in that state.
///
/// A model may split histories into independent sub-histories with
/// `partitionKey(for:)` (P-compositionality): operations with different keys must
/// never affect each other (e.g. single-key operations on a key/value store).
/// Each partition starts from `initialState(for:)` and is checked on its own.
public protocol LinearizabilityModel: Sendable {
    /// The state of one partition. Equal states must behave identically, since
    /// the search memoizes on them.
    associatedtype State: Hashable & Sendable
    /// An operation as invoked by a client.
    associatedtype Input: Sendable
    /// The response a client observed.
    associatedtype Output: Sendable
    /// Identifies the independently checked partition an input belongs to.
    associatedtype PartitionKey: Hashable & Sendable = Int

    /// The state a partition is in before any operation took effect.
    func initialState(for partitionKey: PartitionKey) -> State

    /// Applies `input` to `state`, given that the client observed `output`.
    ///
    /// - Returns: The successor state, or `nil` if `output` is not a legal
    ///   response to `input` in `state`.
    func step(_ state: State, _ input: Input, _ output: Output) -> State?

    /// Applies `input` to `state` for an operation whose outcome is unknown
    /// (the client timed out): any output is acceptable.
    ///
    /// - Returns: The state after `input` took effect, or `nil` if `input` can
    ///   never take effect in `state`.
    func stepIgnoringOutput(_ state: State, _ input: Input) -> State?

    /// The partition `input` belongs to. Defaults to a single partition.
    func partitionKey(for input: Input) -> PartitionKey

    /// A readable rendering of an operation; `output` is `nil` when unknown.
    func describe(input: Input, output: Output?) -> String

    /// A readable rendering of a state.
    func describe(state: State) -> String

    /// A readable rendering of a partition key, used in reports.
    func describe(partitionKey: PartitionKey) -> String

    /// A key equal for two inputs exactly when the operations behave identically in every state
    /// (so two such operations with unknown outcomes are interchangeable), or nil to treat every
    /// operation as distinct. The checker uses it to break the symmetry between identical
    /// operations that never returned (see ``LinearizabilityChecker``).
    func interchangeabilityKey(for input: Input) -> AnyHashable?
}

extension LinearizabilityModel {
    /// Nil: the checker treats every operation as distinct. Models whose inputs are `Hashable`
    /// get the input itself (see the extension below).
    public func interchangeabilityKey(for input: Input) -> AnyHashable? { nil }

    /// Renders `input -> output` using `String(describing:)`.
    public func describe(input: Input, output: Output?) -> String {
        let rendered = output.map { String(describing: $0) } ?? "unknown"
        return "\(input) -> \(rendered)"
    }

    /// Renders the state using `String(describing:)`.
    public func describe(state: State) -> String {
        String(describing: state)
    }

    /// Renders the partition key using `String(describing:)`.
    public func describe(partitionKey: PartitionKey) -> String {
        String(describing: partitionKey)
    }
}

extension LinearizabilityModel where PartitionKey == Int {
    /// Places every operation in partition `0`.
    public func partitionKey(for input: Input) -> Int { 0 }
}

extension LinearizabilityModel where Input: Hashable {
    /// Operations with equal inputs are interchangeable.
    public func interchangeabilityKey(for input: Input) -> AnyHashable? { AnyHashable(input) }
}
