import EtcdMapping
import EtcdWire
import Foundation
import GRPCStatus
import StateMachine
import Testing

@Suite("Compare mapping")
struct CompareMappingTests {
    @Test(arguments: [
        (Compare.Target.version(3), Etcdserverpb_Compare.CompareTarget.version),
        (.createRevision(4), .create),
        (.modRevision(5), .mod),
        (.value(Array("v".utf8)), .value),
        (.lease(6), .lease),
    ])
    func everyTarget(target: Compare.Target, wireTarget: Etcdserverpb_Compare.CompareTarget) throws {
        for result in [Compare.Result.equal, .greater, .less, .notEqual] {
            let compare = Compare(key: b("k"), rangeEnd: b("z"), target: target, result: result)
            let wire = Etcdserverpb_Compare(compare)
            #expect(wire.target == wireTarget)
            #expect(wire.result.rawValue == result.rawValue)
            #expect(wire.key == d("k"))
            #expect(wire.rangeEnd == d("z"))
            #expect(Compare(wire) == compare)
            #expect(Compare(try throughBytes(wire)) == compare)
        }
    }

    @Test func operandsLandInTheirUnionFields() {
        #expect(Etcdserverpb_Compare(Compare(key: b("k"), target: .version(3), result: .equal)).version == 3)
        #expect(Etcdserverpb_Compare(Compare(key: b("k"), target: .createRevision(4), result: .equal)).createRevision == 4)
        #expect(Etcdserverpb_Compare(Compare(key: b("k"), target: .modRevision(5), result: .equal)).modRevision == 5)
        #expect(Etcdserverpb_Compare(Compare(key: b("k"), target: .value(b("v")), result: .equal)).value == d("v"))
        #expect(Etcdserverpb_Compare(Compare(key: b("k"), target: .lease(6), result: .equal)).lease == 6)
    }

    @Test func aMismatchedOrMissingOperandIsZero() {
        var wire = Etcdserverpb_Compare()
        wire.key = d("k")
        wire.target = .create
        wire.targetUnion = .version(9)
        #expect(Compare(wire).target == .createRevision(0))
        wire.target = .value
        #expect(Compare(wire).target == .value([]))
        wire.targetUnion = nil
        wire.target = .lease
        #expect(Compare(wire).target == .lease(0))
        wire.target = .mod
        #expect(Compare(wire).target == .modRevision(0))
        wire.target = .version
        wire.targetUnion = .value(d("x"))
        #expect(Compare(wire).target == .version(0))
    }

    // MARK: etcd's evaluation of every wire input

    /// etcd 3.4's `applyCompare`/`compareKV`, written from its documented behaviour: a model of
    /// what etcd answers for any wire compare, including undefined targets and results.
    static func etcdHolds(_ c: Etcdserverpb_Compare, kvs: [KeyValue]) -> Bool {
        func compareKV(_ kv: KeyValue) -> Bool {
            func order(_ x: Int64, _ y: Int64) -> Int { x < y ? -1 : (x > y ? 1 : 0) }
            var result = 0
            switch c.target {
            case .value:
                var operand: [UInt8] = []
                if case .value(let v)? = c.targetUnion { operand = Array(v) }
                result = kv.value.lexicographicallyPrecedes(operand) ? -1 : (kv.value == operand ? 0 : 1)
            case .create:
                var operand: Int64 = 0
                if case .createRevision(let v)? = c.targetUnion { operand = v }
                result = order(kv.createRevision, operand)
            case .mod:
                var operand: Int64 = 0
                if case .modRevision(let v)? = c.targetUnion { operand = v }
                result = order(kv.modRevision, operand)
            case .version:
                var operand: Int64 = 0
                if case .version(let v)? = c.targetUnion { operand = v }
                result = order(kv.version, operand)
            case .lease:
                var operand: Int64 = 0
                if case .lease(let v)? = c.targetUnion { operand = v }
                result = order(kv.lease, operand)
            case .UNRECOGNIZED:
                break
            }
            switch c.result {
            case .equal: return result == 0
            case .notEqual: return result != 0
            case .greater: return result > 0
            case .less: return result < 0
            case .UNRECOGNIZED: return true
            }
        }
        if kvs.isEmpty {
            if c.target == .value { return false }
            return compareKV(KeyValue(key: []))
        }
        return kvs.allSatisfy(compareKV)
    }

    /// Every combination of target, result and operand, defined or not, on present and absent
    /// keys and ranges, evaluates in our store exactly as etcd evaluates it.
    @Test func everyWireCompareEvaluatesAsInEtcd() throws {
        var store = StateStore()
        let lease = try store.grantLease(LeaseGrantRequest(ttl: 60, id: 6)).response.id
        _ = try store.put(PutRequest(key: b("k"), value: b("v")))
        _ = try store.put(PutRequest(key: b("k"), value: b("v"), lease: lease))
        _ = try store.put(PutRequest(key: b("m"), value: b("w")))

        let targets: [Etcdserverpb_Compare.CompareTarget] = [.version, .create, .mod, .value, .lease, .UNRECOGNIZED(9)]
        let results: [Etcdserverpb_Compare.CompareResult] = [.equal, .greater, .less, .notEqual, .UNRECOGNIZED(7)]
        let unions: [Etcdserverpb_Compare.OneOf_TargetUnion?] = [
            nil, .version(2), .version(0), .createRevision(2), .createRevision(0), .modRevision(3), .modRevision(9),
            .value(d("v")), .value(d("")), .value(d("w")), .lease(lease), .lease(0),
        ]
        // (key, range end): present key, absent key, range with keys, range without keys.
        let ranges: [(String, String)] = [("k", ""), ("x", ""), ("a", "z"), ("x", "y")]

        var checked = 0
        for target in targets {
            for result in results {
                for union in unions {
                    for (key, end) in ranges {
                        var wire = Etcdserverpb_Compare()
                        wire.key = d(key)
                        wire.rangeEnd = d(end)
                        wire.target = target
                        wire.result = result
                        wire.targetUnion = union
                        let kvs = try store.range(RangeRequest(key: b(key), rangeEnd: b(end))).kvs
                        let expected = Self.etcdHolds(wire, kvs: kvs)

                        var probe = store
                        let txn = TxnRequest(compares: [Compare(try throughBytes(wire))])
                        let succeeded = try probe.txn(txn).response.succeeded
                        #expect(
                            succeeded == expected,
                            "target \(target) result \(result) union \(String(describing: union)) range \(key)..\(end)")
                        checked += 1
                    }
                }
            }
        }
        #expect(checked == targets.count * results.count * unions.count * ranges.count)
    }
}

@Suite("Txn mapping")
struct TxnMappingTests {
    let nested = TxnRequest(
        compares: [Compare(key: b("n"), target: .value(b("x")), result: .notEqual)],
        success: [.put(PutRequest(key: b("n"), value: b("x")))],
        failure: [.deleteRange(DeleteRangeRequest(key: b("n")))]
    )

    var request: TxnRequest {
        TxnRequest(
            compares: [
                Compare(key: b("k"), target: .createRevision(0), result: .equal),
                Compare(key: b("a"), rangeEnd: [0], target: .modRevision(10), result: .less),
            ],
            success: [
                .put(PutRequest(key: b("k"), value: b("v"), lease: 5, prevKV: true)),
                .range(
                    RangeRequest(
                        key: b("p/"), rangeEnd: b("p0"), limit: 1, sortOrder: .ascend, sortTarget: .createRevision)),
                .txn(nested),
            ],
            failure: [
                .range(RangeRequest(key: b("k"))),
                .deleteRange(DeleteRangeRequest(key: b("k"), prevKV: true)),
            ]
        )
    }

    @Test func requestRoundTripsIncludingNestedTransactions() throws {
        let wire = Etcdserverpb_TxnRequest(request)
        #expect(wire.compare.count == 2)
        #expect(wire.success.count == 3)
        #expect(wire.failure.count == 2)
        guard case .requestTxn(let inner)? = wire.success[2].request else {
            Issue.record("the nested transaction is missing")
            return
        }
        #expect(try TxnRequest(inner) == nested)
        #expect(try TxnRequest(wire) == request)
        #expect(try TxnRequest(try throughBytes(wire)) == request)
    }

    @Test func requestOpEveryKind() throws {
        let ops: [RequestOp] = [
            .range(RangeRequest(key: b("r"))), .put(PutRequest(key: b("p"), value: b("1"))),
            .deleteRange(DeleteRangeRequest(key: b("d"), rangeEnd: b("e"))), .txn(nested),
        ]
        for op in ops {
            #expect(try RequestOp(try throughBytes(Etcdserverpb_RequestOp(op))) == op)
        }
    }

    @Test func anEmptyOperationIsRefusedAsEtcdDoes() throws {
        var wire = Etcdserverpb_TxnRequest(request)
        wire.failure.append(Etcdserverpb_RequestOp())
        #expect(throws: WireRequestError.emptyRequestOperation) { try TxnRequest(wire) }

        // At any depth.
        var inner = Etcdserverpb_TxnRequest(nested)
        inner.success.append(Etcdserverpb_RequestOp())
        var outer = Etcdserverpb_TxnRequest()
        var op = Etcdserverpb_RequestOp()
        op.request = .requestTxn(inner)
        outer.success = [op]
        #expect(throws: WireRequestError.emptyRequestOperation) { try TxnRequest(try throughBytes(outer)) }

        let error = WireRequestError.emptyRequestOperation
        #expect(error.code == .invalidArgument)
        #expect(error.message == "etcdserver: key not found")
    }

    @Test func anUndefinedSortOptionInsideATransactionIsRefused() {
        var range = Etcdserverpb_RangeRequest(RangeRequest(key: b("k")))
        range.sortOrder = .UNRECOGNIZED(4)
        var op = Etcdserverpb_RequestOp()
        op.request = .requestRange(range)
        var wire = Etcdserverpb_TxnRequest()
        wire.failure = [op]
        #expect(throws: WireRequestError.invalidSortOption) { try TxnRequest(wire) }
    }

    @Test func responseWithNestedResponses() throws {
        var store = StateStore()
        _ = try store.put(PutRequest(key: b("a"), value: b("1")))
        let lease = try store.grantLease(LeaseGrantRequest(ttl: 60, id: 5)).response.id
        #expect(lease == 5)
        let response = try store.txn(request).response
        #expect(response.succeeded)

        let h = header(clusterID: 11, memberID: 22, revision: response.revision, raftTerm: 33)
        let wire = try throughBytes(Etcdserverpb_TxnResponse(response, header: h))
        #expect(wire.header == h)
        #expect(wire.succeeded)
        #expect(wire.responses.count == 3)

        guard case .responsePut(let put)? = wire.responses[0].response,
            case .responseRange(let range)? = wire.responses[1].response,
            case .responseTxn(let inner)? = wire.responses[2].response,
            case .put(let ourPut) = response.responses[0],
            case .range(let ourRange) = response.responses[1],
            case .txn(let ourInner) = response.responses[2]
        else {
            Issue.record("unexpected response kinds")
            return
        }
        // Nested headers carry only the revision.
        #expect(put.header == header(clusterID: 0, memberID: 0, revision: ourPut.revision, raftTerm: 0))
        #expect(!put.hasPrevKv)
        #expect(range.header.revision == ourRange.revision)
        #expect(range.header.clusterID == 0 && range.header.memberID == 0 && range.header.raftTerm == 0)
        #expect(range.kvs.map(KeyValue.init) == ourRange.kvs)
        #expect(range.count == ourRange.count)
        #expect(range.more == ourRange.more)
        #expect(inner.header.revision == ourInner.revision)
        #expect(inner.succeeded == ourInner.succeeded)
        #expect(inner.responses.count == 1)
        // A value compare on a missing key fails, so the nested failure branch ran.
        #expect(!inner.succeeded)
        guard case .responseDeleteRange? = inner.responses[0].response else {
            Issue.record("the nested transaction's delete answer is missing")
            return
        }

        // The failure branch: a range and a delete with previous values.
        let failed = try store.txn(request).response
        #expect(!failed.succeeded)
        let failedWire = Etcdserverpb_TxnResponse(failed, header: h)
        #expect(!failedWire.succeeded)
        guard case .responseRange(let kRange)? = failedWire.responses[0].response,
            case .responseDeleteRange(let deleted)? = failedWire.responses[1].response
        else {
            Issue.record("unexpected failure-branch kinds")
            return
        }
        #expect(kRange.kvs.map { Array($0.key) } == [b("k")])
        #expect(deleted.deleted == 1)
        #expect(deleted.prevKvs.map { Array($0.value) } == [b("v")])
    }
}
