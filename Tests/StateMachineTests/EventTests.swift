import StateMachine
import Testing

@Suite struct EventTests {
    @Test func putAndDeleteEventsFromApply() throws {
        var store = StateStore()
        let created = try store.set("k", "v1")
        #expect(
            created.events == [
                Event(
                    kind: .put,
                    kv: KeyValue(key: b("k"), createRevision: 2, modRevision: 2, version: 1, value: b("v1"))
                )
            ]
        )
        let updated = try store.set("k", "v2")
        #expect(updated.events.first?.prevKV?.value == b("v1"))
        #expect(updated.events.first?.kv.version == 2)
        let deleted = try store.remove("k")
        #expect(
            deleted.events == [
                Event(
                    kind: .delete,
                    kv: KeyValue(key: b("k"), modRevision: 4),
                    prevKV: KeyValue(key: b("k"), createRevision: 2, modRevision: 3, version: 2, value: b("v2"))
                )
            ]
        )
    }

    func makeHistory() throws -> StateStore {
        var store = StateStore()
        try store.set("a", "1")  // 2
        try store.set("b", "1")  // 3
        _ = try store.txn(
            TxnRequest(success: [
                .put(PutRequest(key: b("c"), value: b("1"))), .put(PutRequest(key: b("a"), value: b("2"))),
            ])
        )  // 4.0 c, 4.1 a
        try store.remove("b")  // 5
        try store.set("b", "2")  // 6
        return store
    }

    @Test func replayInRevisionOrder() throws {
        let store = try makeHistory()
        let all = try store.events(from: 0, key: [0], rangeEnd: [0])
        #expect(all.map(\.kv.modRevision) == [2, 3, 4, 4, 5, 6])
        #expect(all.map { String(decoding: $0.kv.key, as: UTF8.self) } == ["a", "b", "c", "a", "b", "b"])
        #expect(all.map(\.kind) == [.put, .put, .put, .put, .delete, .put])
        #expect(all[3].prevKV?.value == b("1"))
        #expect(all[4].prevKV?.modRevision == 3)
        #expect(all[5].prevKV == nil)
        #expect(all[5].kv.createRevision == 6)
    }

    @Test func replayFiltersByKeyRangeAndStart() throws {
        let store = try makeHistory()
        #expect(try store.events(from: 4, key: b("a")).map(\.kv.modRevision) == [4])
        #expect(try store.events(from: 0, key: b("b")).map(\.kv.modRevision) == [3, 5, 6])
        #expect(try store.events(from: 5, key: b("a"), rangeEnd: b("c")).map(\.kind) == [.delete, .put])
        #expect(try store.events(from: 7, key: [0], rangeEnd: [0]).isEmpty)
    }

    @Test func replayStopsAfterTheLastRevisionOfTheWindow() throws {
        let store = try makeHistory()
        let all = RangeRequest(key: [0], rangeEnd: [0])
        #expect(try store.events(from: 0, key: all.key, rangeEnd: all.rangeEnd, through: 4).map(\.kv.modRevision) == [2, 3, 4, 4])
        #expect(try store.events(from: 3, key: all.key, rangeEnd: all.rangeEnd, through: 3).map(\.kv.modRevision) == [3])
        #expect(try store.events(from: 5, key: all.key, rangeEnd: all.rangeEnd, through: 4).isEmpty)
        #expect(try store.events(from: 0, key: b("b"), through: 5).map(\.kv.modRevision) == [3, 5])
        // The event limit still ends a window early, at a revision boundary.
        #expect(
            try store.events(from: 0, key: all.key, rangeEnd: all.rangeEnd, limit: 3, through: 5).map(\.kv.modRevision) == [2, 3, 4, 4])
    }

    @Test func replayMatchesAppliedEvents() throws {
        var store = StateStore()
        var applied: [Event] = []
        applied += try store.set("x", "1").events
        applied += try store.set("y", "1").events
        applied += try store.remove("x", "z").events
        applied += try store.set("x", "2").events
        #expect(try store.events(from: 2, key: [0], rangeEnd: [0]) == applied)
        #expect(try store.events(from: 4, key: [0], rangeEnd: [0]) == Array(applied[2...]))
    }

    @Test func limitNeverSplitsARevision() throws {
        let store = try makeHistory()
        let page = try store.events(from: 0, key: [0], rangeEnd: [0], limit: 3)
        #expect(page.map(\.kv.modRevision) == [2, 3, 4, 4])
        let one = try store.events(from: 0, key: [0], rangeEnd: [0], limit: 1)
        #expect(one.map(\.kv.modRevision) == [2])
    }

    @Test func replayBelowCompactionFails() throws {
        var store = try makeHistory()
        _ = try store.compact(CompactionRequest(revision: 5))
        #expect(throws: StateError.compacted) { try store.events(from: 4, key: [0], rangeEnd: [0]) }
        // From the compaction revision itself, the deletion at that revision is still delivered.
        let fromCompaction = try store.events(from: 5, key: [0], rangeEnd: [0])
        #expect(fromCompaction.map(\.kind) == [.delete, .put])
        #expect(fromCompaction.map(\.kv.modRevision) == [5, 6])
    }
}
