public import EtcdWire
import Foundation
public import StateMachine

// MARK: - Compare

extension Compare {
    /// Creates a transaction compare from its wire form, with etcd's evaluation of every input.
    ///
    /// etcd reads the operand from `target_union` only when the union holds the field named by
    /// `target`; otherwise the operand is zero (or the empty value), which this conversion keeps.
    ///
    /// etcd accepts compares with an undefined `result` or `target` and evaluates them as follows
    /// (`compareKV` in etcd's applier): an undefined target compares as equal, and an undefined
    /// result always holds, so such compares are constant except that a value compare on a range
    /// without keys fails. They are mapped to compares of defined fields with the same outcome
    /// on every store state, so the round trip back to the wire is lossy only for such input:
    /// - undefined target, result EQUAL or undefined: always holds;
    /// - undefined target, result NOT_EQUAL, GREATER or LESS: never holds;
    /// - target VALUE, undefined result: holds when at least one key is in the range;
    /// - other targets, undefined result: always holds.
    public init(_ wire: Etcdserverpb_Compare) {
        let key = Array(wire.key)
        let rangeEnd = Array(wire.rangeEnd)
        let result: Result?
        switch wire.result {
        case .equal: result = .equal
        case .greater: result = .greater
        case .less: result = .less
        case .notEqual: result = .notEqual
        case .UNRECOGNIZED: result = nil
        }

        let target: Target
        switch wire.target {
        case .version:
            if case .version(let v)? = wire.targetUnion { target = .version(v) } else { target = .version(0) }
        case .create:
            if case .createRevision(let v)? = wire.targetUnion { target = .createRevision(v) } else { target = .createRevision(0) }
        case .mod:
            if case .modRevision(let v)? = wire.targetUnion { target = .modRevision(v) } else { target = .modRevision(0) }
        case .value:
            if case .value(let v)? = wire.targetUnion { target = .value(Array(v)) } else { target = .value([]) }
        case .lease:
            if case .lease(let v)? = wire.targetUnion { target = .lease(v) } else { target = .lease(0) }
        case .UNRECOGNIZED:
            // Every key compares as equal to the operand.
            let holds = result == nil || result == .equal
            self = holds ? Self.alwaysHolds(key: key, rangeEnd: rangeEnd) : Self.neverHolds(key: key, rangeEnd: rangeEnd)
            return
        }

        guard let result else {
            if case .value = target {
                // Holds for every existing key, fails when the range has none: exactly
                // "create revision != 0" (a missing key compares as create revision 0).
                self.init(key: key, rangeEnd: rangeEnd, target: .createRevision(0), result: .notEqual)
            } else {
                self = Self.alwaysHolds(key: key, rangeEnd: rangeEnd)
            }
            return
        }
        self.init(key: key, rangeEnd: rangeEnd, target: target, result: result)
    }

    /// A compare true on every store state: every version, including a missing key's 0, is > -1.
    private static func alwaysHolds(key: [UInt8], rangeEnd: [UInt8]) -> Compare {
        Compare(key: key, rangeEnd: rangeEnd, target: .version(-1), result: .greater)
    }

    /// A compare false on every store state: no version is < 0.
    private static func neverHolds(key: [UInt8], rangeEnd: [UInt8]) -> Compare {
        Compare(key: key, rangeEnd: rangeEnd, target: .version(0), result: .less)
    }
}

extension Etcdserverpb_Compare {
    /// Creates the wire form of a transaction compare, field by field.
    public init(_ compare: Compare) {
        self.init()
        key = Data(compare.key)
        rangeEnd = Data(compare.rangeEnd)
        switch compare.result {
        case .equal: result = .equal
        case .greater: result = .greater
        case .less: result = .less
        case .notEqual: result = .notEqual
        }
        switch compare.target {
        case .version(let v):
            target = .version
            targetUnion = .version(v)
        case .createRevision(let v):
            target = .create
            targetUnion = .createRevision(v)
        case .modRevision(let v):
            target = .mod
            targetUnion = .modRevision(v)
        case .value(let v):
            target = .value
            targetUnion = .value(Data(v))
        case .lease(let v):
            target = .lease
            targetUnion = .lease(v)
        }
    }
}

// MARK: - Operations

extension RequestOp {
    /// Creates a transaction operation from its wire form; nested transactions convert recursively.
    ///
    /// - Throws: ``WireRequestError/emptyRequestOperation`` when no request field is set, and
    ///   ``WireRequestError/invalidSortOption`` for a range with an undefined sort order or target.
    public init(_ wire: Etcdserverpb_RequestOp) throws(WireRequestError) {
        switch wire.request {
        case .requestRange(let r)?: self = .range(try RangeRequest(r))
        case .requestPut(let r)?: self = .put(PutRequest(r))
        case .requestDeleteRange(let r)?: self = .deleteRange(DeleteRangeRequest(r))
        case .requestTxn(let r)?: self = .txn(try TxnRequest(r))
        case nil: throw .emptyRequestOperation
        }
    }
}

extension Etcdserverpb_RequestOp {
    /// Creates the wire form of a transaction operation; nested transactions convert recursively.
    public init(_ op: RequestOp) {
        self.init()
        switch op {
        case .range(let r): request = .requestRange(Etcdserverpb_RangeRequest(r))
        case .put(let r): request = .requestPut(Etcdserverpb_PutRequest(r))
        case .deleteRange(let r): request = .requestDeleteRange(Etcdserverpb_DeleteRangeRequest(r))
        case .txn(let r): request = .requestTxn(Etcdserverpb_TxnRequest(r))
        }
    }
}

extension Etcdserverpb_ResponseOp {
    /// Creates the wire answer to one transaction operation.
    ///
    /// As in etcd, the header of a nested response carries only its revision.
    public init(_ op: ResponseOp) {
        self.init()
        switch op {
        case .range(let r):
            response = .responseRange(Etcdserverpb_RangeResponse(r, header: nestedHeader(revision: r.revision)))
        case .put(let r):
            response = .responsePut(Etcdserverpb_PutResponse(r, header: nestedHeader(revision: r.revision)))
        case .deleteRange(let r):
            response = .responseDeleteRange(Etcdserverpb_DeleteRangeResponse(r, header: nestedHeader(revision: r.revision)))
        case .txn(let r):
            response = .responseTxn(Etcdserverpb_TxnResponse(r, header: nestedHeader(revision: r.revision)))
        }
    }
}

// MARK: - Txn

extension TxnRequest {
    /// Creates a transaction from its wire form, including nested transactions.
    ///
    /// - Throws: ``WireRequestError/emptyRequestOperation`` or ``WireRequestError/invalidSortOption``
    ///   for an operation etcd refuses, at any nesting depth.
    public init(_ wire: Etcdserverpb_TxnRequest) throws(WireRequestError) {
        var success: [RequestOp] = []
        success.reserveCapacity(wire.success.count)
        for op in wire.success { success.append(try RequestOp(op)) }
        var failure: [RequestOp] = []
        failure.reserveCapacity(wire.failure.count)
        for op in wire.failure { failure.append(try RequestOp(op)) }
        self.init(compares: wire.compare.map(Compare.init), success: success, failure: failure)
    }
}

extension Etcdserverpb_TxnRequest {
    /// Creates the wire form of a transaction, including nested transactions.
    public init(_ request: TxnRequest) {
        self.init()
        compare = request.compares.map(Etcdserverpb_Compare.init)
        success = request.success.map(Etcdserverpb_RequestOp.init)
        failure = request.failure.map(Etcdserverpb_RequestOp.init)
    }
}

extension Etcdserverpb_TxnResponse {
    /// Creates the wire answer to a transaction.
    ///
    /// - Parameters:
    ///   - response: The state machine's answer.
    ///   - header: The top-level response header; its revision is normally `response.revision`.
    ///     Nested responses get headers carrying only their revision, as in etcd.
    public init(_ response: TxnResponse, header: Etcdserverpb_ResponseHeader) {
        self.init()
        self.header = header
        succeeded = response.succeeded
        responses = response.responses.map(Etcdserverpb_ResponseOp.init)
    }
}
