import StateMachine
import Testing

@Suite struct RangeTests {
    /// a, b, c, foo, foo/1, foo/2, fop: revisions 2…8.
    func makeStore() throws -> StateStore {
        var store = StateStore()
        for (k, v) in [("a", "1"), ("b", "2"), ("c", "3"), ("foo", "x"), ("foo/1", "y"), ("foo/2", "z"), ("fop", "w")] {
            try store.set(k, v)
        }
        return store
    }

    @Test func emptyStoreIsAtRevisionOne() throws {
        let store = StateStore()
        #expect(store.currentRevision == 1)
        let r = try store.get("a")
        #expect(r.kvs.isEmpty && r.count == 0 && !r.more && r.revision == 1)
    }

    @Test func singleKey() throws {
        let store = try makeStore()
        let r = try store.get("foo")
        #expect(keys(r.kvs) == ["foo"])
        #expect(r.count == 1)
        #expect(r.revision == 8)
        #expect(r.kvs[0] == KeyValue(key: b("foo"), createRevision: 5, modRevision: 5, version: 1, value: b("x")))
        #expect(try store.get("nope").kvs.isEmpty)
    }

    @Test func halfOpenRange() throws {
        let store = try makeStore()
        #expect(keys(try store.get("a", "c").kvs) == ["a", "b"])
        #expect(keys(try store.get("b", "foo0").kvs) == ["b", "c", "foo", "foo/1", "foo/2"])
    }

    @Test func prefixRange() throws {
        let store = try makeStore()
        // etcdctl --prefix foo: range_end = "fop"
        #expect(keys(try store.get("foo", "fop").kvs) == ["foo", "foo/1", "foo/2"])
        #expect(keys(try store.get("foo/", "foo0").kvs) == ["foo/1", "foo/2"])
    }

    @Test func fromKeyAndAllKeys() throws {
        let store = try makeStore()
        let fromKey = try store.range(RangeRequest(key: b("foo/1"), rangeEnd: [0]))
        #expect(keys(fromKey.kvs) == ["foo/1", "foo/2", "fop"])
        let all = try store.range(RangeRequest(key: [0], rangeEnd: [0]))
        #expect(keys(all.kvs) == ["a", "b", "c", "foo", "foo/1", "foo/2", "fop"])
        #expect(all.count == 7)
    }

    @Test func rangeEndNotAfterKeyIsEmpty() throws {
        let store = try makeStore()
        #expect(try store.get("c", "b").kvs.isEmpty)
        #expect(try store.get("c", "c").count == 0)
    }

    @Test func emptyKeyIsRejected() throws {
        let store = try makeStore()
        #expect(throws: StateError.emptyKey) { try store.range(RangeRequest(key: [])) }
    }

    @Test func limitSetsMoreAndKeepsCount() throws {
        let store = try makeStore()
        let r = try store.range(RangeRequest(key: [0], rangeEnd: [0], limit: 2))
        #expect(keys(r.kvs) == ["a", "b"])
        #expect(r.more)
        #expect(r.count == 7)
        let exact = try store.range(RangeRequest(key: [0], rangeEnd: [0], limit: 7))
        #expect(exact.kvs.count == 7 && !exact.more)
        let negative = try store.range(RangeRequest(key: [0], rangeEnd: [0], limit: -1))
        #expect(negative.kvs.count == 7 && !negative.more)
    }

    @Test func keysOnlyDropsValues() throws {
        let store = try makeStore()
        let r = try store.range(RangeRequest(key: b("a"), rangeEnd: b("c"), keysOnly: true))
        #expect(keys(r.kvs) == ["a", "b"])
        #expect(r.kvs.allSatisfy { $0.value.isEmpty && $0.modRevision > 0 })
    }

    @Test func countOnlyReturnsNoKeyValues() throws {
        let store = try makeStore()
        let r = try store.range(RangeRequest(key: [0], rangeEnd: [0], limit: 2, countOnly: true))
        #expect(r.kvs.isEmpty)
        #expect(r.count == 7)
        #expect(!r.more)
    }

    @Test func historicalRead() throws {
        var store = StateStore()
        try store.set("k", "v1")  // 2
        try store.set("k", "v2")  // 3
        try store.set("j", "x")  // 4
        try store.remove("k")  // 5
        #expect(values(try store.get("k", revision: 2).kvs) == ["v1"])
        #expect(values(try store.get("k", revision: 3).kvs) == ["v2"])
        #expect(try store.get("k", revision: 3).kvs[0].version == 2)
        #expect(try store.get("k", revision: 5).kvs.isEmpty)
        #expect(try store.get("k").kvs.isEmpty)
        #expect(try store.get("j", revision: 3).kvs.isEmpty)
        let all3 = try store.range(RangeRequest(key: [0], rangeEnd: [0], revision: 3))
        #expect(keys(all3.kvs) == ["k"] && all3.count == 1)
        // The header revision is the current revision even for a historical read.
        #expect(all3.revision == 5)
        #expect(try store.get("k", revision: 1).kvs.isEmpty)
    }

    @Test func futureRevisionFails() throws {
        let store = try makeStore()
        #expect(throws: StateError.futureRevision) { try store.get("a", revision: 9) }
        #expect(try store.get("a", revision: 8).kvs.count == 1)
    }

    @Test func sortByEachTarget() throws {
        var store = StateStore()
        try store.set("a", "z")  // 2
        try store.set("b", "y")  // 3
        try store.set("c", "x")  // 4
        try store.set("a", "z2")  // 5: a version 2
        try store.set("a", "z3")  // 6: a version 3
        try store.set("b", "y2")  // 7: b version 2
        func sorted(_ target: SortTarget, _ order: SortOrder) throws -> [String] {
            keys(try store.range(RangeRequest(key: [0], rangeEnd: [0], sortOrder: order, sortTarget: target)).kvs)
        }
        #expect(try sorted(.key, .none) == ["a", "b", "c"])
        #expect(try sorted(.key, .ascend) == ["a", "b", "c"])
        #expect(try sorted(.key, .descend) == ["c", "b", "a"])
        #expect(try sorted(.version, .ascend) == ["c", "b", "a"])
        #expect(try sorted(.version, .descend) == ["a", "b", "c"])
        #expect(try sorted(.createRevision, .ascend) == ["a", "b", "c"])
        #expect(try sorted(.createRevision, .descend) == ["c", "b", "a"])
        #expect(try sorted(.modRevision, .ascend) == ["c", "a", "b"])
        #expect(try sorted(.modRevision, .descend) == ["b", "a", "c"])
        #expect(try sorted(.value, .ascend) == ["c", "b", "a"])
        #expect(try sorted(.value, .descend) == ["a", "b", "c"])
        // A non-key target with order NONE sorts ascending (etcd).
        #expect(try sorted(.modRevision, .none) == ["c", "a", "b"])
    }

    @Test func sortWithLimitSortsWholeRangeFirst() throws {
        var store = StateStore()
        try store.set("a", "1")
        try store.set("b", "1")
        try store.set("c", "1")
        try store.set("a", "2")
        let r = try store.range(
            RangeRequest(key: [0], rangeEnd: [0], limit: 1, sortOrder: .descend, sortTarget: .modRevision)
        )
        #expect(keys(r.kvs) == ["a"])
        #expect(r.more)
        #expect(r.count == 3)
    }

    @Test func nonKeyTargetWithOrderNoneSortsOnlyTheFetchedPage() throws {
        // etcd 3.4 only disables the early limit for an explicit sort order or filters, so with
        // order NONE and a non-key target it fetches limit+1 keys in key order and sorts those.
        var store = StateStore()
        try store.set("a", "1")
        try store.set("a", "1")
        try store.set("a", "1")  // a: version 3
        try store.set("b", "1")  // b: version 1
        try store.set("c", "1")
        try store.set("c", "1")  // c: version 2
        try store.set("d", "1")  // d: version 1
        let quirk = try store.range(
            RangeRequest(key: [0], rangeEnd: [0], limit: 2, sortOrder: .none, sortTarget: .version)
        )
        #expect(keys(quirk.kvs) == ["b", "c"])
        #expect(quirk.more)
        let full = try store.range(
            RangeRequest(key: [0], rangeEnd: [0], limit: 2, sortOrder: .ascend, sortTarget: .version)
        )
        #expect(keys(full.kvs) == ["b", "d"])
    }

    @Test func modAndCreateRevisionFilters() throws {
        var store = StateStore()
        try store.set("a", "1")  // 2
        try store.set("b", "1")  // 3
        try store.set("c", "1")  // 4
        try store.set("a", "2")  // 5: a create 2 mod 5
        try store.set("d", "1")  // 6
        func query(_ r: RangeRequest) throws -> RangeResponse { try store.range(r) }
        let minMod = try query(RangeRequest(key: [0], rangeEnd: [0], minModRevision: 4))
        #expect(keys(minMod.kvs) == ["a", "c", "d"])
        // count is not reduced by the filters (etcd 3.4).
        #expect(minMod.count == 4)
        #expect(keys(try query(RangeRequest(key: [0], rangeEnd: [0], maxModRevision: 4)).kvs) == ["b", "c"])
        #expect(keys(try query(RangeRequest(key: [0], rangeEnd: [0], minCreateRevision: 3)).kvs) == ["b", "c", "d"])
        #expect(keys(try query(RangeRequest(key: [0], rangeEnd: [0], maxCreateRevision: 3)).kvs) == ["a", "b"])
        let both = try query(RangeRequest(key: [0], rangeEnd: [0], minCreateRevision: 3, maxCreateRevision: 4))
        #expect(keys(both.kvs) == ["b", "c"])
        // The lock recipe: newest key created before mine.
        let lockQuery = try query(
            RangeRequest(
                key: [0],
                rangeEnd: [0],
                limit: 1,
                sortOrder: .descend,
                sortTarget: .createRevision,
                maxCreateRevision: 5
            )
        )
        #expect(keys(lockQuery.kvs) == ["c"])
        #expect(lockQuery.more)
        // With a filter, limit applies after filtering, so `more` reflects the filtered set.
        let filteredLimit = try query(RangeRequest(key: [0], rangeEnd: [0], limit: 2, minModRevision: 5))
        #expect(keys(filteredLimit.kvs) == ["a", "d"])
        #expect(!filteredLimit.more)
    }

    @Test func filtersApplyToHistoricalReads() throws {
        var store = StateStore()
        try store.set("a", "1")  // 2
        try store.set("b", "1")  // 3
        try store.set("a", "2")  // 4
        let r = try store.range(RangeRequest(key: [0], rangeEnd: [0], revision: 3, maxModRevision: 2))
        #expect(keys(r.kvs) == ["a"])
        #expect(values(r.kvs) == ["1"])
    }
}
