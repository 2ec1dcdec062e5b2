/// A read-only transaction resolved from the key index (``StateStore/planReadOnlyTxn(_:)``):
/// its compares are evaluated and the ranges of the branch that runs are planned, but the
/// values those ranges answer may still have to be read, as a ``PendingRange``'s are, by
/// ``finish(reading:)``.
public struct PendingTxn: Hashable, Sendable {
    /// One operation of the branch that runs.
    enum Operation: Hashable, Sendable {
        case range(PendingRange)
        case txn(PendingTxn)
    }

    /// The store revision when the transaction was planned (the answer's `header.revision`).
    public let revision: Int64
    /// Whether the compares held (and `success` runs).
    public let succeeded: Bool
    var operations: [Operation]

    /// The number of values ``finish(reading:)`` reads from the backend.
    public var unreadValueCount: Int {
        operations.reduce(0) { total, operation in
            switch operation {
            case .range(let range): total + range.unreadValueCount
            case .txn(let nested): total + nested.unreadValueCount
            }
        }
    }

    /// Reads the values not in memory through `reader` (as ``PendingRange/finish(reading:)``
    /// does, with the same demands on `reader`) and returns the answer.
    public func finish(reading reader: (any BackendReader)?) -> TxnResponse {
        let responses = operations.map { operation -> ResponseOp in
            switch operation {
            case .range(let range): .range(range.finish(reading: reader))
            case .txn(let nested): .txn(nested.finish(reading: reader))
            }
        }
        return TxnResponse(revision: revision, succeeded: succeeded, responses: responses)
    }
}

extension StateStore {
    /// Resolves a read-only transaction (``TxnRequest/isReadOnly``) from the key index, without
    /// the log, as etcd serves one: the compares are evaluated against the state now (a value
    /// compare reads the values it compares), and the chosen branch's ranges are planned as
    /// ``planRange(_:)`` plans a range.
    ///
    /// - Throws: what ``txn(_:)`` throws for the same request before it writes anything:
    ///   ``StateError/tooManyOperations``, ``StateError/emptyKey``, ``StateError/futureRevision``,
    ///   ``StateError/compacted``, …
    public func planReadOnlyTxn(_ request: TxnRequest) throws(StateError) -> PendingTxn {
        precondition(request.isReadOnly, "planReadOnlyTxn needs a transaction that writes nothing")
        try Self.validate(.txn(request), configuration: configuration)
        return try planBranch(of: request)
    }

    private func planBranch(of request: TxnRequest) throws(StateError) -> PendingTxn {
        let succeeded = request.compares.allSatisfy { evaluate($0) }
        var operations: [PendingTxn.Operation] = []
        for op in succeeded ? request.success : request.failure {
            switch op {
            case .range(let range): operations.append(.range(try planRange(range)))
            case .txn(let nested): operations.append(.txn(try planBranch(of: nested)))
            case .put, .deleteRange: preconditionFailure("a read-only transaction holds a write")
            }
        }
        return PendingTxn(revision: currentRevision, succeeded: succeeded, operations: operations)
    }
}
