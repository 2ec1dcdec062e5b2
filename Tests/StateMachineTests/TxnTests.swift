import StateMachine
import Testing

@Suite struct TxnCompareTests {
    /// "k": create 2, mod 4, version 2, value "v", lease 9. "other" at 3.
    func makeStore() throws -> StateStore {
        var store = StateStore()
        _ = try store.grantLease(LeaseGrantRequest(ttl: 60, id: 9))
        try store.set("k", "u")  // 2
        try store.set("other", "o")  // 3
        try store.set("k", "v", lease: 9)  // 4
        return store
    }

    func holds(_ target: Compare.Target, _ result: Compare.Result, key: String = "k", end: String = "") throws -> Bool {
        var store = try makeStore()
        let compare = Compare(key: b(key), rangeEnd: b(end), target: target, result: result)
        return try store.txn(TxnRequest(compares: [compare])).response.succeeded
    }

    @Test(arguments: [
        (Compare.Target.version(2), [true, false, false, false]),
        (.version(1), [false, true, false, true]),
        (.version(3), [false, false, true, true]),
        (.createRevision(2), [true, false, false, false]),
        (.createRevision(1), [false, true, false, true]),
        (.createRevision(5), [false, false, true, true]),
        (.modRevision(4), [true, false, false, false]),
        (.modRevision(3), [false, true, false, true]),
        (.modRevision(5), [false, false, true, true]),
        (.value(Array("v".utf8)), [true, false, false, false]),
        (.value(Array("u".utf8)), [false, true, false, true]),
        (.value(Array("w".utf8)), [false, false, true, true]),
        (.lease(9), [true, false, false, false]),
        (.lease(0), [false, true, false, true]),
        (.lease(10), [false, false, true, true]),
    ])
    func everyTargetAndResult(target: Compare.Target, expected: [Bool]) throws {
        let results: [Compare.Result] = [.equal, .greater, .less, .notEqual]
        let actual = try results.map { try holds(target, $0) }
        #expect(actual == expected)
    }

    @Test func missingKeyComparesAgainstZero() throws {
        #expect(try holds(.createRevision(0), .equal, key: "missing"))
        #expect(try holds(.version(0), .equal, key: "missing"))
        #expect(try holds(.modRevision(1), .less, key: "missing"))
        #expect(try holds(.lease(0), .equal, key: "missing"))
        // A value compare on a missing key is always false, even NOT_EQUAL.
        #expect(try !holds(.value(b("x")), .notEqual, key: "missing"))
        #expect(try !holds(.value([]), .equal, key: "missing"))
    }

    @Test func rangeCompareMustHoldForEveryKey() throws {
        // "k" (mod 4) and "other" (mod 3) are in [a, z).
        #expect(try holds(.modRevision(5), .less, key: "a", end: "z"))
        #expect(try !holds(.modRevision(4), .less, key: "a", end: "z"))
        #expect(try holds(.modRevision(2), .greater, key: "\u{0}", end: "\u{0}"))
        #expect(try holds(.createRevision(0), .equal, key: "x", end: "y"))
    }

    @Test func deletedKeyCountsAsMissing() throws {
        var store = try makeStore()
        try store.remove("k")
        let r = try store.txn(TxnRequest(compares: [Compare(key: b("k"), target: .createRevision(0), result: .equal)]))
        #expect(r.response.succeeded)
    }
}

@Suite struct TxnExecutionTests {
    @Test func thenAndElseBranches() throws {
        var store = StateStore()
        try store.set("k", "1")
        let request = TxnRequest(
            compares: [Compare(key: b("k"), target: .value(b("1")), result: .equal)],
            success: [.put(PutRequest(key: b("k"), value: b("2"))), .range(RangeRequest(key: b("k")))],
            failure: [.put(PutRequest(key: b("k"), value: b("fail")))]
        )
        let first = try store.txn(request).response
        #expect(first.succeeded)
        #expect(first.revision == 3)
        guard first.responses.count == 2, case .put(let put) = first.responses[0],
            case .range(let read) = first.responses[1]
        else {
            Issue.record("unexpected responses \(first.responses)")
            return
        }
        #expect(put.revision == 3)
        // A read inside the transaction sees the earlier write.
        #expect(values(read.kvs) == ["2"])
        #expect(read.revision == 3)

        let second = try store.txn(request).response
        #expect(!second.succeeded)
        #expect(second.revision == 4)
        #expect(try store.value(of: "k") == "fail")
    }

    @Test func emptyTxnSucceedsWithoutRevision() throws {
        var store = StateStore()
        let r = try store.txn(TxnRequest())
        #expect(r.response.succeeded && r.response.responses.isEmpty && r.response.revision == 1)
        #expect(r.mutations.isEmpty)
    }

    @Test func writesShareOneRevisionWithSubRevisions() throws {
        var store = StateStore()
        try store.set("gone", "x")
        let applied = try store.txn(
            TxnRequest(success: [
                .put(PutRequest(key: b("a"), value: b("1"))),
                .deleteRange(DeleteRangeRequest(key: b("gone"))),
                .put(PutRequest(key: b("b"), value: b("2"))),
            ])
        )
        #expect(applied.response.revision == 3)
        #expect(applied.events.map(\.kind) == [.put, .delete, .put])
        #expect(applied.events.map(\.kv.modRevision) == [3, 3, 3])
        let versionKeys = applied.mutations.compactMap { m -> [UInt8]? in
            if case .put(let k, _) = m, k.starts(with: BackendLayout.versionPrefix) { return k }
            return nil
        }
        #expect(versionKeys == (0..<3).map { BackendLayout.versionKey(Revision(main: 3, sub: $0)) })
    }

    @Test func txnWithOnlyNoOpDeleteKeepsRevision() throws {
        var store = StateStore()
        try store.set("a", "1")
        let r = try store.txn(TxnRequest(success: [.deleteRange(DeleteRangeRequest(key: b("zzz")))]))
        #expect(r.response.revision == 2)
        #expect(r.mutations.isEmpty)
        guard case .deleteRange(let d) = r.response.responses.first else {
            Issue.record("expected a delete response")
            return
        }
        #expect(d.deleted == 0)
    }

    @Test func nestedTxnComparesSeeStateBeforeTheTxn() throws {
        var store = StateStore()
        let nested = TxnRequest(
            compares: [Compare(key: b("k"), target: .value(b("1")), result: .equal)],
            success: [.put(PutRequest(key: b("seen"), value: b("yes")))],
            failure: [.put(PutRequest(key: b("seen"), value: b("no")))]
        )
        let r = try store.txn(TxnRequest(success: [.put(PutRequest(key: b("k"), value: b("1"))), .txn(nested)]))
        #expect(r.response.succeeded)
        guard case .txn(let inner) = r.response.responses[1] else {
            Issue.record("expected a nested txn response")
            return
        }
        // etcd evaluates every compare of the path before running any operation.
        #expect(!inner.succeeded)
        #expect(try store.value(of: "seen") == "no")
        #expect(store.currentRevision == 2)
        // Now "k" == "1" holds beforehand.
        let again = try store.txn(TxnRequest(success: [.txn(nested)]))
        guard case .txn(let inner2) = again.response.responses[0] else {
            Issue.record("expected a nested txn response")
            return
        }
        #expect(inner2.succeeded)
        #expect(try store.value(of: "seen") == "yes")
    }

    @Test func nestedTxnInFailureBranch() throws {
        var store = StateStore()
        let r = try store.txn(
            TxnRequest(
                compares: [Compare(key: b("k"), target: .version(5), result: .equal)],
                success: [.put(PutRequest(key: b("s"), value: b("1")))],
                failure: [.txn(TxnRequest(success: [.put(PutRequest(key: b("f"), value: b("1")))]))]
            )
        )
        #expect(!r.response.succeeded)
        #expect(try store.value(of: "f") == "1")
        #expect(try store.value(of: "s") == nil)
    }

    @Test func duplicatePutsAreRejected() throws {
        var store = StateStore()
        let dup = TxnRequest(success: [.put(PutRequest(key: b("a"))), .put(PutRequest(key: b("a")))])
        #expect(throws: StateError.duplicateKey) { try store.txn(dup) }
        let dupElse = TxnRequest(failure: [.put(PutRequest(key: b("a"))), .put(PutRequest(key: b("a")))])
        #expect(throws: StateError.duplicateKey) { try store.txn(dupElse) }
    }

    @Test func putInsideDeletedRangeIsRejected() throws {
        var store = StateStore()
        let overlap = TxnRequest(success: [
            .deleteRange(DeleteRangeRequest(key: b("a"), rangeEnd: b("c"))),
            .put(PutRequest(key: b("b"))),
        ])
        #expect(throws: StateError.duplicateKey) { try store.txn(overlap) }
        // Outside the deleted range is fine, and deletes may overlap each other.
        let fine = TxnRequest(success: [
            .deleteRange(DeleteRangeRequest(key: b("a"), rangeEnd: b("c"))),
            .deleteRange(DeleteRangeRequest(key: b("b"), rangeEnd: b("d"))),
            .put(PutRequest(key: b("d0"))),
        ])
        #expect(try store.txn(fine).response.succeeded)
    }

    @Test func fromKeyDeleteDoesNotConflictWithPuts() throws {
        // etcd 3.4 checks a from-key delete as the literal interval [key, "\0"), which is empty.
        var store = StateStore()
        try store.set("zz", "old")  // 2
        let putThenDelete = TxnRequest(success: [
            .put(PutRequest(key: b("zz"), value: b("new"))),
            .deleteRange(DeleteRangeRequest(key: b("m"), rangeEnd: [0])),
        ])
        let first = try store.txn(putThenDelete)
        #expect(first.response.revision == 3)
        #expect(first.events.map(\.kind) == [.put, .delete])
        // Like etcd's watch, an event's prevKV is the state before the whole transaction.
        #expect(first.events.map { $0.prevKV?.value } == [b("old"), b("old")])
        #expect(try store.value(of: "zz") == nil)
        #expect(values(try store.get("zz", revision: 2).kvs) == ["old"])
        let deleteThenPut = TxnRequest(success: [
            .deleteRange(DeleteRangeRequest(key: [0], rangeEnd: [0])),
            .put(PutRequest(key: b("zz"), value: b("again"))),
        ])
        let second = try store.txn(deleteThenPut)
        #expect(second.events.map(\.kind) == [.put])
        let kv = try store.get("zz").kvs[0]
        #expect(kv.value == b("again") && kv.version == 1 && kv.createRevision == 4)
        // The same history survives a restore and a compaction at that revision.
        let restored = try StateStore(restoringFrom: store.backendPairs())
        #expect(try restored.events(from: 3, key: b("zz")) == store.events(from: 3, key: b("zz")))
        _ = try store.compact(CompactionRequest(revision: 3))
        #expect(try store.get("zz", revision: 3).kvs.isEmpty)
        #expect(try store.events(from: 3, key: b("zz")).map(\.kind) == [.delete, .put])
    }

    @Test func nestedDuplicates() throws {
        var store = StateStore()
        // The two branches of one nested txn may write the same key.
        let branches = TxnRequest(success: [
            .txn(TxnRequest(success: [.put(PutRequest(key: b("a")))], failure: [.put(PutRequest(key: b("a")))]))
        ])
        #expect(try store.txn(branches).response.succeeded)
        // But not a nested put and an outer put.
        let outer = TxnRequest(success: [
            .txn(TxnRequest(success: [.put(PutRequest(key: b("a")))])),
            .put(PutRequest(key: b("a"))),
        ])
        #expect(throws: StateError.duplicateKey) { try store.txn(outer) }
        // Nor a nested put under an outer delete.
        let underDelete = TxnRequest(success: [
            .deleteRange(DeleteRangeRequest(key: b("a"))),
            .txn(TxnRequest(failure: [.put(PutRequest(key: b("a")))])),
        ])
        #expect(throws: StateError.duplicateKey) { try store.txn(underDelete) }
        // Nor two sibling nested txns putting the same key.
        let siblings = TxnRequest(success: [
            .txn(TxnRequest(success: [.put(PutRequest(key: b("a")))])),
            .txn(TxnRequest(failure: [.put(PutRequest(key: b("a")))])),
        ])
        #expect(throws: StateError.duplicateKey) { try store.txn(siblings) }
        #expect(store.currentRevision == 2)
    }

    @Test func tooManyOperations() throws {
        var store = StateStore()
        let puts = (0..<129).map { RequestOp.put(PutRequest(key: b("k\($0)"))) }
        #expect(throws: StateError.tooManyOperations) { try store.txn(TxnRequest(success: puts)) }
        #expect(throws: StateError.tooManyOperations) { try store.txn(TxnRequest(failure: puts)) }
        let compares = (0..<129).map { Compare(key: b("k\($0)"), target: .version(0), result: .equal) }
        #expect(throws: StateError.tooManyOperations) { try store.txn(TxnRequest(compares: compares)) }
        #expect(try store.txn(TxnRequest(success: Array(puts.prefix(128)))).response.revision == 2)
        // A nested txn gets the budget left by its parent.
        let nested = TxnRequest(success: [.txn(TxnRequest(success: Array(puts.prefix(128))))])
        #expect(throws: StateError.tooManyOperations) { try store.txn(nested) }
        let nestedOK = TxnRequest(success: [.txn(TxnRequest(success: Array(puts.prefix(127))))])
        #expect(try store.txn(nestedOK).response.succeeded)
    }

    @Test func configurableOperationLimit() throws {
        var store = StateStore(configuration: .init(maxTxnOperations: 2))
        let three = (0..<3).map { RequestOp.put(PutRequest(key: b("k\($0)"))) }
        #expect(throws: StateError.tooManyOperations) { try store.txn(TxnRequest(success: three)) }
        #expect(try store.txn(TxnRequest(success: Array(three.prefix(2)))).response.succeeded)
    }

    @Test func emptyKeysAnywhereAreRejected() throws {
        var store = StateStore()
        #expect(throws: StateError.emptyKey) {
            _ = try store.txn(TxnRequest(compares: [Compare(key: [], target: .version(0), result: .equal)]))
        }
        #expect(throws: StateError.emptyKey) { try store.txn(TxnRequest(failure: [.range(RangeRequest(key: []))])) }
        #expect(throws: StateError.emptyKey) {
            _ = try store.txn(
                TxnRequest(success: [.txn(TxnRequest(success: [.deleteRange(DeleteRangeRequest(key: []))]))])
            )
        }
    }

    @Test func failingChecksLeaveStoreUnchanged() throws {
        var store = StateStore()
        try store.set("a", "1")
        let badLease = TxnRequest(success: [
            .put(PutRequest(key: b("x"), value: b("1"))),
            .put(PutRequest(key: b("y"), value: b("1"), lease: 77)),
        ])
        #expect(throws: StateError.leaseNotFound) { try store.txn(badLease) }
        let missingKey = TxnRequest(success: [
            .put(PutRequest(key: b("x"), value: b("1"))),
            .put(PutRequest(key: b("y"), ignoreValue: true)),
        ])
        #expect(throws: StateError.keyNotFound) { try store.txn(missingKey) }
        let futureRead = TxnRequest(success: [
            .put(PutRequest(key: b("x"), value: b("1"))),
            .range(RangeRequest(key: b("a"), revision: 3)),
        ])
        #expect(throws: StateError.futureRevision) { try store.txn(futureRead) }
        #expect(store.currentRevision == 2)
        #expect(try store.value(of: "x") == nil)
        // Checks only cover the branch that runs.
        let otherBranch = TxnRequest(
            compares: [Compare(key: b("a"), target: .value(b("1")), result: .equal)],
            success: [.put(PutRequest(key: b("x"), value: b("1")))],
            failure: [.put(PutRequest(key: b("y"), lease: 77))]
        )
        #expect(try store.txn(otherBranch).response.succeeded)
    }

    @Test func putChecksComeBeforeReadChecks() throws {
        var store = StateStore()
        let both = TxnRequest(success: [
            .range(RangeRequest(key: b("a"), revision: 50)),
            .put(PutRequest(key: b("y"), lease: 77)),
        ])
        #expect(throws: StateError.leaseNotFound) { try store.txn(both) }
    }

    @Test func historicalReadInsideTxn() throws {
        var store = StateStore()
        try store.set("a", "1")
        try store.set("a", "2")
        let r = try store.txn(TxnRequest(success: [.range(RangeRequest(key: b("a"), revision: 2))]))
        guard case .range(let read) = r.response.responses[0] else {
            Issue.record("expected a range response")
            return
        }
        #expect(values(read.kvs) == ["1"])
    }

    @Test func deleteResponseInsideTxn() throws {
        var store = StateStore()
        try store.set("a", "1")
        try store.set("b", "2")
        let r = try store.txn(
            TxnRequest(success: [.deleteRange(DeleteRangeRequest(key: b("a"), rangeEnd: b("z"), prevKV: true))])
        )
        guard case .deleteRange(let d) = r.response.responses[0] else {
            Issue.record("expected a delete response")
            return
        }
        #expect(d.deleted == 2 && keys(d.prevKVs) == ["a", "b"] && d.revision == 4)
    }
}
