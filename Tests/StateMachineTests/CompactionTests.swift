import StateMachine
import Testing

@Suite struct CompactionTests {
    /// k: v1@2, v2@3, deleted@4, v3@6; j: x@5; t: y@7, deleted@8. Current revision 8.
    func makeStore() throws -> StateStore {
        var store = StateStore()
        try store.set("k", "v1")
        try store.set("k", "v2")
        try store.remove("k")
        try store.set("j", "x")
        try store.set("k", "v3")
        try store.set("t", "y")
        try store.remove("t")
        return store
    }

    @Test func readsBelowCompactionFail() throws {
        var store = try makeStore()
        _ = try store.compact(CompactionRequest(revision: 5))
        #expect(store.compactedRevision == 5)
        #expect(throws: StateError.compacted) { try store.get("k", revision: 4) }
        #expect(throws: StateError.compacted) { try store.get("k", revision: 2) }
        // At the compaction revision and above, answers are unchanged.
        #expect(try store.get("k", revision: 5).kvs.isEmpty)
        #expect(values(try store.get("j", revision: 5).kvs) == ["x"])
        #expect(values(try store.get("k", revision: 6).kvs) == ["v3"])
        #expect(values(try store.get("t", revision: 7).kvs) == ["y"])
        #expect(try store.get("t").kvs.isEmpty)
        // Current reads (revision 0) still work.
        #expect(values(try store.get("k").kvs) == ["v3"])
    }

    @Test func keepsLatestVersionAtOrBelowCompaction() throws {
        var store = try makeStore()
        _ = try store.compact(CompactionRequest(revision: 3))
        let kv = try store.get("k", revision: 3).kvs
        #expect(values(kv) == ["v2"])
        #expect(kv[0].version == 2 && kv[0].createRevision == 2)
        // v1@2 is gone; v2@3 remains; the rest is untouched.
        #expect(store.retainedVersionCount == 6)
    }

    @Test func dropsOldTombstones() throws {
        var store = try makeStore()
        let applied = try store.compact(CompactionRequest(revision: 5))
        // k@2, k@3 and the tombstone k@4 are dropped.
        let deleted = applied.mutations.compactMap { m -> [UInt8]? in
            if case .delete(let key) = m { return key }
            return nil
        }
        #expect(deleted == [2, 3, 4].map { BackendLayout.versionKey(Revision(main: $0)) })
        #expect(applied.mutations.contains(.put(key: BackendLayout.compactedKey, value: [0, 0, 0, 0, 0, 0, 0, 5])))
        #expect(store.retainedVersionCount == 4)
        // Compacting past every version of a deleted key removes the key entirely.
        _ = try store.compact(CompactionRequest(revision: 8))
        #expect(store.retainedVersionCount == 3)  // j@5, k@6, and t's tombstone at exactly 8
        try store.set("z", "1")
        _ = try store.compact(CompactionRequest(revision: 9))
        #expect(store.retainedVersionCount == 3)  // j@5, k@6, z@9
        #expect(try store.range(RangeRequest(key: [0], rangeEnd: [0])).count == 3)
    }

    @Test func compactionErrors() throws {
        var store = try makeStore()
        #expect(throws: StateError.futureRevision) { try store.compact(CompactionRequest(revision: 9)) }
        _ = try store.compact(CompactionRequest(revision: 5))
        #expect(throws: StateError.compacted) { try store.compact(CompactionRequest(revision: 5)) }
        #expect(throws: StateError.compacted) { try store.compact(CompactionRequest(revision: 4)) }
        #expect(throws: StateError.futureRevision) { try store.get("k", revision: 9) }
        _ = try store.compact(CompactionRequest(revision: 8))
        #expect(store.currentRevision == 8)
    }

    @Test func compactionDoesNotChangeRevision() throws {
        var store = try makeStore()
        let r = try store.compact(CompactionRequest(revision: 8))
        #expect(r.response.revision == 8)
        #expect(r.events.isEmpty)
        #expect(try store.set("n", "1").response.revision == 9)
    }

    @Test func txnReadBelowCompactionFails() throws {
        var store = try makeStore()
        _ = try store.compact(CompactionRequest(revision: 5))
        #expect(throws: StateError.compacted) {
            _ = try store.txn(TxnRequest(success: [.range(RangeRequest(key: b("k"), revision: 4))]))
        }
    }

    @Test func historyAfterCompactionMatchesHistoryBefore() throws {
        let before = try makeStore()
        var after = before
        _ = try after.compact(CompactionRequest(revision: 4))
        for revision in Int64(4)...8 {
            let all = RangeRequest(key: [0], rangeEnd: [0], revision: revision)
            #expect(try after.range(all) == before.range(all))
        }
    }
}
