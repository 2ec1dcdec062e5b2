/// The verdict of a linearizability check.
public enum LinearizabilityResult: Sendable, Equatable {
    /// Every partition has a linearization.
    case ok
    /// Some partition has no linearization; the report describes the first
    /// such partition (in order of first appearance in the history).
    case illegal(LinearizabilityViolation)
    /// The step budget ran out in the listed partitions (described with
    /// `describe(partitionKey:)`) and no partition was found illegal.
    case unknown(partitions: [String])

    /// Whether the history was proven linearizable.
    public var isOK: Bool { self == .ok }

    /// The violation report, if the history was proven not linearizable.
    public var violation: LinearizabilityViolation? {
        if case .illegal(let violation) = self { return violation }
        return nil
    }

    /// Whether the check was inconclusive.
    public var isUnknown: Bool {
        if case .unknown = self { return true }
        return false
    }
}

/// Describes a partition of a history that has no linearization.
///
/// Operation identifiers are indices into `History.operations`.
public struct LinearizabilityViolation: Sendable, Equatable, CustomStringConvertible {
    /// The partition, as rendered by the model's `describe(partitionKey:)`.
    public var partition: String
    /// All operations in the partition, in order of call time.
    public var operationIDs: [Int]
    /// The longest sequence of operations the search managed to linearize.
    public var longestLinearizablePrefix: [Int]
    /// The model state after `longestLinearizablePrefix`.
    public var stateAfterPrefix: String
    /// Operations that could have been linearized next after the prefix (the
    /// ones called before the earliest pending return), none of which leads
    /// to a complete linearization.
    public var blockedOperationIDs: [Int]
    /// A human-readable, multi-line report.
    public var description: String
}

/// Checks histories for linearizability against a model with the
/// Wing–Gong/Lowe depth-first search, memoizing visited
/// (linearized-operations, state) pairs, one partition at a time.
///
/// Operations whose outcome is unknown stay callable to the end of the history, so a crash
/// that leaves many writes unanswered would make the search try every subset of them. Two
/// such operations with the same ``LinearizabilityModel/interchangeabilityKey(for:)`` lead to
/// the same states, and the one called earlier can stand wherever the later one could; the
/// search therefore linearizes a later one only once every earlier twin is linearized. This
/// prunes only orders that have an equivalent the search still tries.
///
/// Results are deterministic: they depend only on the history, the model and
/// the budget.
public struct LinearizabilityChecker<Model: LinearizabilityModel>: Sendable {
    /// The sequential specification.
    public var model: Model
    /// The maximum number of search steps spent on each partition before the
    /// partition is reported as unknown.
    public var stepBudget: Int

    /// Creates a checker for `model` with a per-partition step budget.
    public init(model: Model, stepBudget: Int = 5_000_000) {
        self.model = model
        self.stepBudget = stepBudget
    }

    /// Checks whether `history` is linearizable.
    public func check(_ history: History<Model>) -> LinearizabilityResult {
        var keys: [Model.PartitionKey] = []
        var members: [[Int]] = []
        var index: [Model.PartitionKey: Int] = [:]
        for (id, operation) in history.operations.enumerated() {
            let key = model.partitionKey(for: operation.input)
            if let slot = index[key] {
                members[slot].append(id)
            } else {
                index[key] = keys.count
                keys.append(key)
                members.append([id])
            }
        }
        var exhausted: [String] = []
        for (key, ids) in zip(keys, members) {
            let search = PartitionSearch(
                model: model, operations: ids.map { history.operations[$0] },
                initialState: model.initialState(for: key))
            switch search.run(budget: stepBudget) {
            case .ok:
                continue
            case .unknown:
                exhausted.append(model.describe(partitionKey: key))
            case .illegal(let prefix):
                return .illegal(
                    search.report(
                        partition: model.describe(partitionKey: key),
                        ids: ids, prefix: prefix))
            }
        }
        return exhausted.isEmpty ? .ok : .unknown(partitions: exhausted)
    }
}

/// A visited configuration: which operations are linearized, and the state they lead to.
///
/// The set of linearized operations is kept as a 128-bit fingerprint (Zobrist hashing: the XOR
/// of a fixed pseudo-random pair per operation, updated in constant time per step) rather than
/// as the set itself, so that the memo stays small and fast on histories of hundreds of
/// thousands of operations. Two different sets share a fingerprint with probability about
/// 2^-128; such a collision could only prune a search path (a false "not linearizable"), never
/// accept a history.
private struct CacheKey<State: Hashable>: Hashable {
    var low: UInt64
    var high: UInt64
    var state: State
}

/// The fingerprint pair of operation `index` (SplitMix64 of `2 * index` and `2 * index + 1`).
private func fingerprint(of index: Int) -> (low: UInt64, high: UInt64) {
    func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    return (mix(UInt64(2 * index)), mix(UInt64(2 * index + 1)))
}

private enum SearchOutcome {
    case ok
    case unknown
    /// Carries the longest linearizable prefix (local operation indices).
    case illegal([Int])
}

/// The search over one partition. Operations are addressed by local index.
private struct PartitionSearch<Model: LinearizabilityModel> {
    let model: Model
    let operations: [History<Model>.Operation]
    let initialState: Model.State
    /// Call and return events sorted by time; calls before returns on ties.
    let events: [(time: Int64, isReturn: Bool, operation: Int)]

    init(model: Model, operations: [History<Model>.Operation], initialState: Model.State) {
        self.model = model
        self.operations = operations
        self.initialState = initialState
        var events: [(time: Int64, isReturn: Bool, operation: Int)] = []
        for (index, operation) in operations.enumerated() {
            events.append((operation.callTime, false, index))
            if let returnTime = operation.returnTime {
                events.append((returnTime, true, index))
            }
        }
        events.sort { ($0.time, $0.isReturn ? 1 : 0, $0.operation) < ($1.time, $1.isReturn ? 1 : 0, $1.operation) }
        self.events = events
        // In call order (the order of the event list): each unanswered operation's latest earlier
        // interchangeable twin.
        var twins = [Int?](repeating: nil, count: operations.count)
        var latest: [AnyHashable: Int] = [:]
        for event in events where !event.isReturn && operations[event.operation].returnTime == nil {
            guard let key = model.interchangeabilityKey(for: operations[event.operation].input) else { continue }
            twins[event.operation] = latest[key]
            latest[key] = event.operation
        }
        self.earlierTwin = twins
    }

    /// For an operation with an unknown outcome, the interchangeable one called just before it.
    let earlierTwin: [Int?]

    func apply(_ operation: Int, to state: Model.State) -> Model.State? {
        let op = operations[operation]
        switch op.outcome {
        case .returned(let output, _): return model.step(state, op.input, output)
        case .unknown: return model.stepIgnoringOutput(state, op.input)
        }
    }

    func run(budget: Int) -> SearchOutcome {
        // Doubly linked list over events: node 0 is the head sentinel, node
        // `events.count + 1` the tail sentinel, node `i + 1` is `events[i]`.
        let tail = events.count + 1
        var next = Array(1...tail) + [tail]
        var previous = [0] + Array(0..<tail)
        var callNode = [Int](repeating: 0, count: operations.count)
        var returnNode = [Int](repeating: -1, count: operations.count)
        for (index, event) in events.enumerated() {
            if event.isReturn { returnNode[event.operation] = index + 1 } else { callNode[event.operation] = index + 1 }
        }
        func unlink(_ node: Int) {
            next[previous[node]] = next[node]
            previous[next[node]] = previous[node]
        }
        func relink(_ node: Int) {
            next[previous[node]] = node
            previous[next[node]] = node
        }

        var state = initialState
        let fingerprints = operations.indices.map(fingerprint(of:))
        var linearized = (low: UInt64(0), high: UInt64(0))
        var isLinearized = [Bool](repeating: false, count: operations.count)
        var visited = Set<CacheKey<Model.State>>()
        var stack: [(operation: Int, previousState: Model.State)] = []
        var longestPrefix: [Int] = []
        var pendingKnown = operations.count(where: { $0.returnTime != nil })
        var steps = 0
        var node = next[0]
        while pendingKnown > 0 {
            steps += 1
            if steps > budget { return .unknown }
            if node != tail && !events[node - 1].isReturn {
                let operation = events[node - 1].operation
                if let twin = earlierTwin[operation], !isLinearized[twin] {
                    // The earlier twin stands for this one here (see the type's discussion).
                    node = next[node]
                    continue
                }
                if let newState = apply(operation, to: state) {
                    let (low, high) = (
                        linearized.low ^ fingerprints[operation].low, linearized.high ^ fingerprints[operation].high
                    )
                    if visited.insert(CacheKey(low: low, high: high, state: newState)).inserted {
                        linearized = (low, high)
                        isLinearized[operation] = true
                        stack.append((operation, state))
                        state = newState
                        unlink(callNode[operation])
                        if returnNode[operation] >= 0 {
                            unlink(returnNode[operation])
                            pendingKnown -= 1
                        }
                        node = next[0]
                        continue
                    }
                }
                node = next[node]
            } else {
                // A pending operation returned (or, defensively, the list ended)
                // before it could be linearized: undo the latest choice.
                // The stack grows one step at a time, so its longest moments come just before a
                // backtrack: recording the prefix here, not at every step, keeps this linear.
                if stack.count > longestPrefix.count { longestPrefix = stack.map(\.operation) }
                guard let (operation, previousState) = stack.popLast() else { return .illegal(longestPrefix) }
                linearized = (linearized.low ^ fingerprints[operation].low, linearized.high ^ fingerprints[operation].high)
                isLinearized[operation] = false
                state = previousState
                if returnNode[operation] >= 0 {
                    relink(returnNode[operation])
                    pendingKnown += 1
                }
                relink(callNode[operation])
                node = next[callNode[operation]]
            }
        }
        return .ok
    }

    func describe(_ operation: Int, ids: [Int]) -> String {
        let op = operations[operation]
        let end = op.returnTime.map(String.init) ?? "unknown"
        return "#\(ids[operation]) client \(op.client) [\(op.callTime), \(end)] "
            + model.describe(input: op.input, output: op.output)
    }

    func report(partition: String, ids: [Int], prefix: [Int]) -> LinearizabilityViolation {
        var lines = ["linearizability violation in partition \(partition) (\(operations.count) operations)"]
        var state = initialState
        var prefixLines: [String] = []
        for operation in prefix {
            state = apply(operation, to: state) ?? state  // Every prefix step was legal.
            prefixLines.append("  \(describe(operation, ids: ids))  => \(model.describe(state: state))")
        }
        lines.append("longest linearizable prefix (\(prefix.count) operations):")
        let shown = 40
        if prefixLines.count > shown { lines.append("  ... \(prefixLines.count - shown) earlier operations") }
        lines += prefixLines.suffix(shown)
        lines.append("state after prefix: \(model.describe(state: state))")

        // Candidates for the next linearization point: operations outside the
        // prefix called before the earliest return of an operation outside it.
        var inPrefix = [Bool](repeating: false, count: operations.count)
        for operation in prefix { inPrefix[operation] = true }
        var blocked: [Int] = []
        for event in events where !inPrefix[event.operation] {
            if event.isReturn { break }
            blocked.append(event.operation)
        }
        lines.append("no candidate for the next operation leads to a full linearization:")
        for operation in blocked {
            let verdict = apply(operation, to: state) == nil ? "illegal in this state" : "legal here, but a dead end"
            lines.append("  \(describe(operation, ids: ids))  (\(verdict))")
        }
        let byCall = operations.indices.sorted { (operations[$0].callTime, $0) < (operations[$1].callTime, $1) }
        return LinearizabilityViolation(
            partition: partition,
            operationIDs: byCall.map { ids[$0] },
            longestLinearizablePrefix: prefix.map { ids[$0] },
            stateAfterPrefix: model.describe(state: state),
            blockedOperationIDs: blocked.map { ids[$0] },
            description: lines.joined(separator: "\n"))
    }
}
