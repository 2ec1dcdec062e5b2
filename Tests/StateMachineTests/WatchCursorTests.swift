import StateMachine
import Testing

@Suite struct WatchCursorTests {
    /// Keys a, b, c put at revisions 2, 3, 4; a deleted at 5.
    func history() throws -> StateStore {
        var store = StateStore()
        try store.set("a", "1")
        try store.set("b", "1")
        try store.set("c", "1")
        try store.remove("a")
        return store
    }

    func revisions(_ events: [Event]) -> [Int64] { events.map(\.kv.modRevision) }

    @Test("a watch from the next revision is synced and takes each published batch in its range")
    func publishWhileSynced() throws {
        var store = try history()
        var cursor = WatchCursor(key: b("a"), rangeEnd: b("c"), startRevision: 0, currentRevision: store.currentRevision)
        #expect(cursor.synced && cursor.nextRevision == 6)
        let batch = try store.set("b", "2").events + store.set("c", "2").events
        #expect(revisions(cursor.publish(batch, revision: store.currentRevision)) == [6])
        #expect(cursor.nextRevision == 8)
        // An event before the next revision is never delivered twice.
        #expect(cursor.publish(batch, revision: store.currentRevision).isEmpty)
    }

    @Test("a stalled reader falls out of sync and catches up from history in windows, once each")
    func catchUpInWindows() throws {
        var store = try history()
        var cursor = WatchCursor(key: [0], rangeEnd: [0], startRevision: 0, currentRevision: store.currentRevision)
        var delivered: [Int64] = []
        let missed = try store.set("d", "1").events
        #expect(cursor.publish(missed, revision: store.currentRevision, writable: false).isEmpty)
        #expect(!cursor.synced)
        let later = try store.set("e", "1").events + store.set("f", "1").events
        #expect(cursor.publish(later, revision: store.currentRevision).isEmpty, "an unsynced cursor takes no batch")
        var windows = 0
        while !cursor.synced {
            guard case .events(let events, _) = cursor.catchUp(from: store, window: 1, batch: 10) else {
                Issue.record("unexpected compaction")
                return
            }
            delivered += revisions(events)
            windows += 1
        }
        #expect(delivered == [6, 7, 8])
        #expect(windows == 3)
        #expect(cursor.nextRevision == 9)
    }

    @Test("a window read while the store moves on leaves the cursor behind, and the next window delivers the rest once")
    func windowFinishedLater() throws {
        var store = try history()
        var cursor = WatchCursor(key: [0], rangeEnd: [0], startRevision: 2, currentRevision: store.currentRevision)
        guard case .window(let window) = cursor.planCatchUp(from: store, window: 1_000, batch: 1_000) else {
            Issue.record("unexpected compaction")
            return
        }
        #expect(window.through == 5)
        // Planning moves nothing: the cursor takes no batch applied while the window is out.
        let later = try store.set("d", "1").events
        #expect(cursor.publish(later, revision: store.currentRevision).isEmpty)
        var delivered = revisions(cursor.finishCatchUp(window, reading: nil, currentRevision: store.currentRevision))
        #expect(delivered == [2, 3, 4, 5])
        #expect(!cursor.synced, "the store moved on to 6 while the window was out")
        guard case .events(let rest, synced: true) = cursor.catchUp(from: store, window: 1_000, batch: 1_000) else {
            Issue.record("the second window did not reach the current revision")
            return
        }
        delivered += revisions(rest)
        #expect(delivered == [2, 3, 4, 5, 6])
        #expect(revisions(cursor.publish(try store.set("e", "1").events, revision: store.currentRevision)) == [7])
    }

    @Test("a watch from a past revision replays history first; a compacted one is cancelled")
    func startInThePast() throws {
        var store = try history()
        var cursor = WatchCursor(key: b("a"), startRevision: 2, currentRevision: store.currentRevision)
        #expect(!cursor.synced)
        #expect(cursor.catchUp(from: store, window: 1_000, batch: 1_000) == .events(try store.events(from: 2, key: b("a")), synced: true))
        _ = try store.compact(CompactionRequest(revision: 4))
        var stale = WatchCursor(key: b("a"), startRevision: 2, currentRevision: store.currentRevision)
        #expect(stale.catchUp(from: store, window: 1_000, batch: 1_000) == .compacted(compactedRevision: 4))
    }

    @Test("after a snapshot the cursor resynchronises before a batch is published, so no revision is skipped")
    func snapshotThenPublish() throws {
        var leader = try history()
        var cursor = WatchCursor(key: [0], rangeEnd: [0], startRevision: 0, currentRevision: leader.currentRevision)
        // The member installs a snapshot at revision 8, then applies revision 9 in the same batch.
        try leader.set("x", "1")
        try leader.set("y", "1")
        try leader.set("z", "1")
        let after = try leader.set("w", "1").events
        cursor.fallOutOfSync()
        #expect(cursor.publish(after, revision: leader.currentRevision).isEmpty)
        var delivered: [Int64] = []
        while !cursor.synced {
            guard case .events(let events, _) = cursor.catchUp(from: leader, window: 2, batch: 10) else { return }
            delivered += revisions(events)
        }
        #expect(delivered == [6, 7, 8, 9])
    }
}
