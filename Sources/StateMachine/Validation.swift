// Stateless request checks, as etcd's gRPC layer makes them before proposing (v3rpc/key.go).
// The store repeats them when applying, so a request that skipped them still fails the same way
// on every replica.

extension StateStore {
    /// Checks a request without looking at the store, as etcd does before proposing it to Raft.
    ///
    /// Servers may call this to fail fast; applying a request runs the same checks.
    ///
    /// - Throws: ``StateError/emptyKey``, ``StateError/valueProvided``, ``StateError/leaseProvided``,
    ///   ``StateError/tooManyOperations``, ``StateError/duplicateKey`` or ``StateError/requestTooLarge``.
    public static func validate(
        _ request: StateRequest, configuration: Configuration = Configuration()
    )
        throws(StateError)
    {
        switch request {
        case .range(let r):
            // Reads are not proposed through Raft, so etcd applies no request-size limit to them.
            guard !r.key.isEmpty else { throw .emptyKey }
        case .put(let r):
            try checkPut(r)
            try checkSize(r.key.count + r.value.count, configuration)
        case .deleteRange(let r):
            guard !r.key.isEmpty else { throw .emptyKey }
            try checkSize(r.key.count + r.rangeEnd.count, configuration)
        case .txn(let r):
            try checkTxn(r, maxOperations: configuration.maxTxnOperations)
            _ = try checkIntervals(r.success)
            _ = try checkIntervals(r.failure)
            try checkSize(approximateSize(of: r), configuration)
        case .authorized(_, let inner):
            try validate(inner, configuration: configuration)
        case .compaction, .leaseGrant, .leaseRevoke, .leaseCheckpoint, .alarm, .publishMember, .updateMemberPeerURLs, .auth:
            break
        }
    }

    private static func checkSize(_ size: Int, _ configuration: Configuration) throws(StateError) {
        if size > configuration.maxRequestBytes { throw .requestTooLarge }
    }

    static func checkPut(_ r: PutRequest) throws(StateError) {
        guard !r.key.isEmpty else { throw .emptyKey }
        if r.ignoreValue && !r.value.isEmpty { throw .valueProvided }
        if r.ignoreLease && r.lease != 0 { throw .leaseProvided }
    }

    /// etcd's `checkTxnRequest`: the largest of the compare, success and failure counts must not
    /// exceed the budget; nested transactions get the budget minus that count.
    static func checkTxn(_ r: TxnRequest, maxOperations: Int) throws(StateError) {
        let opc = Swift.max(r.compares.count, r.success.count, r.failure.count)
        if opc > maxOperations { throw .tooManyOperations }
        for c in r.compares where c.key.isEmpty { throw .emptyKey }
        for op in r.success { try checkOp(op, maxOperations: maxOperations - opc) }
        for op in r.failure { try checkOp(op, maxOperations: maxOperations - opc) }
    }

    private static func checkOp(_ op: RequestOp, maxOperations: Int) throws(StateError) {
        switch op {
        case .range(let r): if r.key.isEmpty { throw .emptyKey }
        case .put(let r): try checkPut(r)
        case .deleteRange(let r): if r.key.isEmpty { throw .emptyKey }
        case .txn(let t): try checkTxn(t, maxOperations: maxOperations)
        }
    }

    /// etcd's `checkIntervals`: within one branch (including nested transactions), a key may be put
    /// only once and may not be both put and deleted. Deletes may overlap each other, and the two
    /// branches of a nested transaction may put the same key.
    ///
    /// As in etcd 3.4, a from-key delete (`rangeEnd == "\0"`) is taken literally as the empty
    /// interval `[key, "\0")`, so it never conflicts with a put; the operations then simply run in
    /// order (a put followed by such a delete leaves the key deleted).
    ///
    /// - Returns: The keys put and the ranges deleted by `ops`.
    static func checkIntervals(_ ops: [RequestOp]) throws(StateError) -> (puts: Set<[UInt8]>, deletes: [KeyRange]) {
        var deletes: [KeyRange] = []
        for op in ops {
            if case .deleteRange(let d) = op {
                let range = KeyRange(key: d.key, rangeEnd: d.rangeEnd)
                if case .from = range { continue }
                deletes.append(range)
            }
        }
        func isDeleted(_ key: [UInt8]) -> Bool {
            deletes.contains { $0.contains(key) }
        }
        var puts = Set<[UInt8]>()
        for op in ops {
            guard case .txn(let t) = op else { continue }
            let thenBranch = try checkIntervals(t.success)
            let elseBranch = try checkIntervals(t.failure)
            for key in thenBranch.puts {
                if puts.contains(key) || isDeleted(key) { throw .duplicateKey }
                puts.insert(key)
            }
            for key in elseBranch.puts {
                if puts.contains(key) && !thenBranch.puts.contains(key) { throw .duplicateKey }
                if isDeleted(key) { throw .duplicateKey }
                puts.insert(key)
            }
            deletes.append(contentsOf: thenBranch.deletes)
            deletes.append(contentsOf: elseBranch.deletes)
        }
        for op in ops {
            guard case .put(let p) = op else { continue }
            if puts.contains(p.key) || isDeleted(p.key) { throw .duplicateKey }
            puts.insert(p.key)
        }
        return (puts, deletes)
    }

    private static func approximateSize(of txn: TxnRequest) -> Int {
        var size = 0
        for c in txn.compares {
            size += c.key.count + c.rangeEnd.count
            if case .value(let v) = c.target { size += v.count }
        }
        for op in txn.success + txn.failure {
            switch op {
            case .range(let r): size += r.key.count + r.rangeEnd.count
            case .put(let p): size += p.key.count + p.value.count
            case .deleteRange(let d): size += d.key.count + d.rangeEnd.count
            case .txn(let t): size += approximateSize(of: t)
            }
        }
        return size
    }
}
