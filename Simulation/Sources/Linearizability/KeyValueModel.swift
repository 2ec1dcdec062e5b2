/// A model of etcd's single-key operations, partitioned per key.
///
/// Each key's state is its value (absent or a string) and its etcd version:
/// the number of writes since the key was created, `0` while it is absent.
public struct KeyValueModel: LinearizabilityModel {
    /// A single-key request.
    public enum Input: Hashable, Sendable {
        /// Reads the key; answered with `Output.value(_:version:)`.
        case get(key: String)
        /// Writes the key; answered with `Output.ok`.
        case put(key: String, value: String)
        /// Deletes the key; answered with `Output.deleted(_:)`.
        case delete(key: String)
        /// Writes `new` if the current value equals `expected` (`nil` means the
        /// key is absent); answered with `Output.swapped(_:)`.
        case compareAndSwap(key: String, expected: String?, new: String)
        /// Writes `new` if the key's version equals `expectedVersion` (`0`
        /// means the key is absent); answered with `Output.swapped(_:)`.
        case compareVersionAndSwap(key: String, expectedVersion: Int64, new: String)

        /// The key the request addresses.
        public var key: String {
            switch self {
            case .get(let key), .put(let key, _), .delete(let key),
                .compareAndSwap(let key, _, _), .compareVersionAndSwap(let key, _, _):
                return key
            }
        }
    }

    /// A response. Its description is written out by hand (the simulator's trace hashes it for
    /// every answer, and reflection-based printing is slow).
    public enum Output: Hashable, Sendable, CustomStringConvertible {
        /// The value read (`nil` if absent) and, optionally, the key's version;
        /// a `nil` version is not checked.
        case value(String?, version: Int64? = nil)
        /// A put completed.
        case ok
        /// The number of keys a delete removed (0 or 1).
        case deleted(Int)
        /// Whether a compare-and-swap succeeded.
        case swapped(Bool)

        public var description: String {
            switch self {
            case .value(let value, let version):
                "value(\(value.map { "\"\($0)\"" } ?? "nil"), version: \(version.map(String.init) ?? "nil"))"
            case .ok: "ok"
            case .deleted(let count): "deleted(\(count))"
            case .swapped(let swapped): "swapped(\(swapped))"
            }
        }
    }

    /// The state of one key.
    public struct State: Hashable, Sendable {
        /// The current value, or `nil` if the key is absent.
        public var value: String?
        /// The etcd version: writes since creation, `0` when absent.
        public var version: Int64

        /// Creates a key state.
        public init(value: String? = nil, version: Int64 = 0) {
            self.value = value
            self.version = version
        }
    }

    /// Creates the model; every key starts absent.
    public init() {}

    /// An absent key.
    public func initialState(for partitionKey: String) -> State { State() }

    /// The key of `input`.
    public func partitionKey(for input: Input) -> String { input.key }

    /// The state after `input` takes effect in `state`, with the output it produces.
    func apply(_ input: Input, to state: State) -> (State, Output) {
        func write(_ value: String) -> State { State(value: value, version: state.version + 1) }
        switch input {
        case .get:
            return (state, .value(state.value, version: state.version))
        case .put(_, let value):
            return (write(value), .ok)
        case .delete:
            return (State(), .deleted(state.value == nil ? 0 : 1))
        case .compareAndSwap(_, let expected, let new):
            return state.value == expected ? (write(new), .swapped(true)) : (state, .swapped(false))
        case .compareVersionAndSwap(_, let expectedVersion, let new):
            return state.version == expectedVersion ? (write(new), .swapped(true)) : (state, .swapped(false))
        }
    }

    /// Succeeds if `output` is exactly what `input` returns in `state`
    /// (a `get` answered without a version matches on the value alone).
    public func step(_ state: State, _ input: Input, _ output: Output) -> State? {
        let (newState, expected) = apply(input, to: state)
        if case .value(let value, nil) = output, case .get = input {
            return value == state.value ? newState : nil
        }
        return output == expected ? newState : nil
    }

    /// The state after `input` takes effect, whatever it returned.
    public func stepIgnoringOutput(_ state: State, _ input: Input) -> State? {
        apply(input, to: state).0
    }

    /// For example `put(x, a) -> ok`.
    public func describe(input: Input, output: Output?) -> String {
        let request: String
        switch input {
        case .get(let key): request = "get(\(key))"
        case .put(let key, let value): request = "put(\(key), \(value))"
        case .delete(let key): request = "delete(\(key))"
        case .compareAndSwap(let key, let expected, let new):
            request = "compareAndSwap(\(key), expected: \(expected ?? "<absent>"), new: \(new))"
        case .compareVersionAndSwap(let key, let expectedVersion, let new):
            request = "compareVersionAndSwap(\(key), expectedVersion: \(expectedVersion), new: \(new))"
        }
        let response: String
        switch output {
        case nil: response = "unknown"
        case .value(let value, let version)?:
            response = (value ?? "<absent>") + (version.map { " (version \($0))" } ?? "")
        case .ok?: response = "ok"
        case .deleted(let count)?: response = "deleted \(count)"
        case .swapped(let succeeded)?: response = succeeded ? "swapped" : "not swapped"
        }
        return "\(request) -> \(response)"
    }

    /// For example `a (version 2)` or `<absent>`.
    public func describe(state: State) -> String {
        state.value.map { "\($0) (version \(state.version))" } ?? "<absent>"
    }

    /// The key itself.
    public func describe(partitionKey: String) -> String { partitionKey }
}

extension History where Model == KeyValueModel {
    /// The value every unobserved unanswered write is given by ``forgettingUnobservedValues()``.
    /// It holds a control character, which no recorded history's values contain.
    public static var unobservedValue: String { "\u{1}unobserved" }

    /// The same history, with the value written by each write whose outcome is unknown replaced
    /// by ``unobservedValue`` when no operation observes that value (no read returned it, no
    /// compare-and-swap expected it).
    ///
    /// The model compares a key's value only with values that reads returned or that
    /// compare-and-swaps expected, so such a value behaves exactly as the placeholder does, and
    /// the verdict cannot change. What changes is that these writes become interchangeable
    /// (equal inputs), so the checker need not try every subset of them: after a crash, dozens
    /// of writes are left unanswered, and a client that retries a write without a session
    /// leaves two unknown writes of the same value.
    public func forgettingUnobservedValues() -> History {
        var observed: Set<String> = []
        for operation in operations {
            if case .compareAndSwap(_, let expected?, _) = operation.input { observed.insert(expected) }
            if case .value(let value?, _)? = operation.output { observed.insert(value) }
        }
        func forgotten(_ value: String) -> String { observed.contains(value) ? value : Self.unobservedValue }
        return History(
            operations.map { operation in
                guard operation.returnTime == nil else { return operation }
                var operation = operation
                switch operation.input {
                case .get, .delete: break
                case .put(let key, let value): operation.input = .put(key: key, value: forgotten(value))
                case .compareAndSwap(let key, let expected, let new):
                    operation.input = .compareAndSwap(key: key, expected: expected, new: forgotten(new))
                case .compareVersionAndSwap(let key, let version, let new):
                    operation.input = .compareVersionAndSwap(key: key, expectedVersion: version, new: forgotten(new))
                }
                return operation
            })
    }
}
