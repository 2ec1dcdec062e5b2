import StateMachine
import Testing

@Suite struct PutTests {
    @Test func putTakesOneRevisionAndTracksVersions() throws {
        var store = StateStore()
        let first = try store.set("k", "v1")
        #expect(first.response.revision == 2)
        #expect(first.response.prevKV == nil)
        try store.set("k", "v2")
        let kv = try store.get("k").kvs[0]
        #expect(kv == KeyValue(key: b("k"), createRevision: 2, modRevision: 3, version: 2, value: b("v2")))
        #expect(store.currentRevision == 3)
    }

    @Test func prevKVIsReturnedOnlyWhenAsked() throws {
        var store = StateStore()
        try store.set("k", "v1")
        let without = try store.put(PutRequest(key: b("k"), value: b("v2")))
        #expect(without.response.prevKV == nil)
        let with = try store.put(PutRequest(key: b("k"), value: b("v3"), prevKV: true))
        #expect(
            with.response.prevKV == KeyValue(key: b("k"), createRevision: 2, modRevision: 3, version: 2, value: b("v2"))
        )
        let fresh = try store.put(PutRequest(key: b("new"), value: b("x"), prevKV: true))
        #expect(fresh.response.prevKV == nil)
    }

    @Test func ignoreValueKeepsValue() throws {
        var store = StateStore()
        let lease = try store.grantLease(LeaseGrantRequest(ttl: 10, id: 7)).response.id
        try store.set("k", "keep")
        _ = try store.put(PutRequest(key: b("k"), lease: lease, ignoreValue: true))
        let kv = try store.get("k").kvs[0]
        #expect(kv.value == b("keep"))
        #expect(kv.lease == 7)
        #expect(kv.version == 2)
    }

    @Test func ignoreLeaseKeepsLease() throws {
        var store = StateStore()
        _ = try store.grantLease(LeaseGrantRequest(ttl: 10, id: 7))
        try store.set("k", "v1", lease: 7)
        _ = try store.put(PutRequest(key: b("k"), value: b("v2"), ignoreLease: true))
        let kv = try store.get("k").kvs[0]
        #expect(kv.value == b("v2") && kv.lease == 7)
        #expect(store.keys(attachedTo: 7) == [b("k")])
    }

    @Test func ignoreFlagsOnMissingKeyFail() throws {
        var store = StateStore()
        #expect(throws: StateError.keyNotFound) { try store.put(PutRequest(key: b("k"), ignoreValue: true)) }
        #expect(throws: StateError.keyNotFound) {
            try store.put(PutRequest(key: b("k"), value: b("v"), ignoreLease: true))
        }
        try store.set("k", "v")
        try store.remove("k")
        #expect(throws: StateError.keyNotFound) { try store.put(PutRequest(key: b("k"), ignoreValue: true)) }
        #expect(store.currentRevision == 3)
    }

    @Test func ignoreFlagsRejectProvidedFields() throws {
        var store = StateStore()
        try store.set("k", "v")
        #expect(throws: StateError.valueProvided) {
            try store.put(PutRequest(key: b("k"), value: b("x"), ignoreValue: true))
        }
        #expect(throws: StateError.leaseProvided) { try store.put(PutRequest(key: b("k"), lease: 5, ignoreLease: true)) }
        #expect(store.currentRevision == 2)
    }

    @Test func unknownLeaseFails() throws {
        var store = StateStore()
        #expect(throws: StateError.leaseNotFound) { try store.put(PutRequest(key: b("k"), value: b("v"), lease: 42)) }
        #expect(store.currentRevision == 1)
        #expect(try store.get("k").kvs.isEmpty)
    }

    @Test func emptyKeyFails() throws {
        var store = StateStore()
        #expect(throws: StateError.emptyKey) { try store.put(PutRequest(key: [], value: b("v"))) }
    }

    @Test func emptyValueIsAllowed() throws {
        var store = StateStore()
        _ = try store.put(PutRequest(key: b("k")))
        #expect(try store.get("k").kvs[0].value.isEmpty)
    }

    @Test func requestSizeLimit() throws {
        var store = StateStore(configuration: .init(maxRequestBytes: 16))
        _ = try store.put(PutRequest(key: b("k"), value: [UInt8](repeating: 1, count: 15)))
        #expect(throws: StateError.requestTooLarge) {
            _ = try store.put(PutRequest(key: b("k"), value: [UInt8](repeating: 1, count: 16)))
        }
    }
}

@Suite struct DeleteTests {
    @Test func deleteReportsCountAndPrevKVs() throws {
        var store = StateStore()
        try store.set("a", "1")
        try store.set("b", "2")
        try store.set("c", "3")
        let applied = try store.deleteRange(DeleteRangeRequest(key: b("a"), rangeEnd: b("c"), prevKV: true))
        #expect(applied.response.deleted == 2)
        #expect(applied.response.revision == 5)
        #expect(keys(applied.response.prevKVs) == ["a", "b"])
        #expect(values(applied.response.prevKVs) == ["1", "2"])
        #expect(keys(try store.range(RangeRequest(key: [0], rangeEnd: [0])).kvs) == ["c"])
    }

    @Test func deleteWithoutPrevKVReturnsNone() throws {
        var store = StateStore()
        try store.set("a", "1")
        let applied = try store.remove("a")
        #expect(applied.response.deleted == 1)
        #expect(applied.response.prevKVs.isEmpty)
    }

    @Test func deletingNothingKeepsRevision() throws {
        var store = StateStore()
        try store.set("a", "1")
        let applied = try store.remove("zzz")
        #expect(applied.response.deleted == 0)
        #expect(applied.response.revision == 2)
        #expect(applied.mutations.isEmpty && applied.events.isEmpty)
        try store.remove("a")
        let again = try store.remove("a")
        #expect(again.response.deleted == 0 && store.currentRevision == 3)
    }

    @Test func deleteAllAndFromKey() throws {
        var store = StateStore()
        for k in ["a", "b", "c", "d"] { try store.set(k, "v") }
        let fromKey = try store.deleteRange(DeleteRangeRequest(key: b("c"), rangeEnd: [0]))
        #expect(fromKey.response.deleted == 2)
        let all = try store.deleteRange(DeleteRangeRequest(key: [0], rangeEnd: [0]))
        #expect(all.response.deleted == 2)
        #expect(try store.range(RangeRequest(key: [0], rangeEnd: [0])).count == 0)
    }

    @Test func multiKeyDeleteUsesSubRevisions() throws {
        var store = StateStore()
        for k in ["a", "b", "c"] { try store.set(k, "v") }
        let applied = try store.deleteRange(DeleteRangeRequest(key: [0], rangeEnd: [0]))
        let versionKeys = applied.mutations.compactMap { m -> [UInt8]? in
            if case .put(let k, _) = m, k.starts(with: BackendLayout.versionPrefix) { return k }
            return nil
        }
        #expect(versionKeys == (0..<3).map { BackendLayout.versionKey(Revision(main: 5, sub: $0)) })
        #expect(applied.events.map(\.kv.modRevision) == [5, 5, 5])
    }

    @Test func emptyKeyFails() throws {
        var store = StateStore()
        #expect(throws: StateError.emptyKey) { try store.deleteRange(DeleteRangeRequest(key: [])) }
    }
}

@Suite struct RevisionTests {
    @Test func deleteAndRecreateResetsVersionAndCreateRevision() throws {
        var store = StateStore()
        try store.set("k", "a")  // 2
        try store.set("k", "b")  // 3
        try store.remove("k")  // 4
        try store.set("other", "x")  // 5
        try store.set("k", "c")  // 6
        let kv = try store.get("k").kvs[0]
        #expect(kv.createRevision == 6)
        #expect(kv.modRevision == 6)
        #expect(kv.version == 1)
        try store.set("k", "d")
        #expect(try store.get("k").kvs[0].version == 2)
        #expect(try store.get("k").kvs[0].createRevision == 6)
        // Old generation still readable.
        let old = try store.get("k", revision: 3).kvs[0]
        #expect(old.createRevision == 2 && old.version == 2 && old.value == b("b"))
    }

    @Test func everyWriteTakesExactlyOneRevision() throws {
        var store = StateStore()
        #expect(try store.set("a", "1").response.revision == 2)
        #expect(try store.set("b", "1").response.revision == 3)
        #expect(try store.remove("a", "c").response.revision == 4)
        #expect(try store.txn(TxnRequest(success: [.range(RangeRequest(key: b("a")))])).response.revision == 4)
        #expect(
            try store.txn(
                TxnRequest(success: [.put(PutRequest(key: b("x"))), .put(PutRequest(key: b("y")))])
            ).response.revision == 5
        )
        #expect(store.currentRevision == 5)
    }
}
