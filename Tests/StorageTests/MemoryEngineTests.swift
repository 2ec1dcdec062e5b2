import RaftCore
import Storage
import Testing

@Suite("MemoryEngine crash semantics")
struct MemoryEngineTests {
    private func put(_ engine: MemoryEngine, _ pairs: [(String, String)], sync: Bool) throws {
        var batch = StorageBatch()
        for (key, value) in pairs { batch.put(bytes(key), bytes(value)) }
        try engine.write(batch, sync: sync)
    }

    private func contents(_ records: [StorageRecord]) -> [String: String] {
        Dictionary(
            uniqueKeysWithValues: records.map { (String(decoding: $0.key, as: UTF8.self), String(decoding: $0.value, as: UTF8.self)) })
    }

    @Test func unsyncedWritesAreVisibleButLostOnCrash() throws {
        let engine = MemoryEngine()
        try put(engine, [("a", "1")], sync: false)
        #expect(try engine.get(bytes("a")) == bytes("1"))
        #expect(engine.durableSnapshot.isEmpty)
        #expect(engine.unsyncedBatchCount == 1)
        engine.crash()
        #expect(try engine.get(bytes("a")) == nil)
        #expect(engine.visibleSnapshot.isEmpty)
        #expect(engine.unsyncedBatchCount == 0)
    }

    @Test func syncedWritesSurviveCrash() throws {
        let engine = MemoryEngine()
        try put(engine, [("a", "1"), ("b", "2")], sync: true)
        var delete = StorageBatch()
        delete.delete(bytes("b"))
        try engine.write(delete, sync: true)
        engine.crash()
        #expect(contents(engine.visibleSnapshot) == ["a": "1"])
        engine.crash()
        #expect(contents(engine.visibleSnapshot) == ["a": "1"])
    }

    @Test func syncedWriteMakesEarlierUnsyncedWritesDurable() throws {
        let engine = MemoryEngine()
        try put(engine, [("a", "1")], sync: false)
        var range = StorageBatch()
        range.put(bytes("c"), bytes("3"))
        range.deleteRange(from: bytes("a"), to: bytes("b"))
        try engine.write(range, sync: false)
        try put(engine, [("b", "2")], sync: true)
        #expect(engine.unsyncedBatchCount == 0)
        try put(engine, [("d", "4")], sync: false)
        engine.crash()
        #expect(contents(engine.visibleSnapshot) == ["b": "2", "c": "3"])
    }

    @Test func overwritesOfDurableValuesRollBack() throws {
        let engine = MemoryEngine()
        try put(engine, [("a", "old"), ("b", "old")], sync: true)
        try put(engine, [("a", "new")], sync: false)
        var delete = StorageBatch()
        delete.deleteRange(from: [], to: bytes("z"))
        try engine.write(delete, sync: false)
        #expect(engine.visibleSnapshot.isEmpty)
        engine.crash()
        #expect(contents(engine.visibleSnapshot) == ["a": "old", "b": "old"])
    }

    @Test func batchesAreNeverHalfApplied() throws {
        let engine = MemoryEngine()
        try put(engine, [("a", "1"), ("b", "1"), ("c", "1")], sync: false)
        try put(engine, [("a", "2"), ("b", "2"), ("c", "2")], sync: false)
        try put(engine, [("a", "3"), ("b", "3"), ("c", "3")], sync: false)
        // A write-ahead log that reached the disk partly keeps whole batches, oldest first.
        engine.crash(keepingUnsyncedBatches: 2)
        #expect(contents(engine.visibleSnapshot) == ["a": "2", "b": "2", "c": "2"])
        #expect(contents(engine.durableSnapshot) == ["a": "2", "b": "2", "c": "2"])
        try put(engine, [("a", "4"), ("b", "4")], sync: false)
        engine.crash(keepingUnsyncedBatches: 5)
        #expect(contents(engine.visibleSnapshot) == ["a": "4", "b": "4", "c": "2"])
    }

    @Test func failedWriteAppliesNothing() throws {
        let engine = MemoryEngine()
        try put(engine, [("a", "1")], sync: false)
        engine.failNextWrite(StorageError(.engine, "disk full"))
        let error = #expect(throws: StorageError.self) { try put(engine, [("a", "2"), ("b", "2")], sync: true) }
        #expect(error?.message == "disk full")
        #expect(contents(engine.visibleSnapshot) == ["a": "1"])
        #expect(engine.durableSnapshot.isEmpty)
        #expect(engine.writeCount == 1)
        try put(engine, [("b", "3")], sync: true)
        #expect(contents(engine.durableSnapshot) == ["a": "1", "b": "3"])
    }

    @Test func raftAppendIsOneSyncedWrite() throws {
        let engine = MemoryEngine()
        let store = try RaftLogStore(engine: engine)
        try store.append(entries: entries(1...5, term: 1), hardState: HardState(term: 1, vote: 1, commit: 0))
        try store.append(entries: entries(3...4, term: 2), hardState: HardState(term: 2, vote: 0, commit: 0))
        #expect(engine.writeCount == 2)
        #expect(engine.syncedWriteCount == 2)
        engine.crash()
        let loaded = try RaftLogStore(engine: engine).load(appliedIndex: 0)
        #expect(loaded.entries == entries(1...2, term: 1) + entries(3...4, term: 2))
    }

    @Test func unsyncedCompactionMayBeLostHarmlessly() throws {
        let engine = MemoryEngine()
        let store = try RaftLogStore(engine: engine)
        try store.append(entries: entries(1...6, term: 1), hardState: HardState(term: 1, vote: 1, commit: 6))
        try store.saveSnapshot(snapshot(index: 4, term: 1))
        try store.compact(through: 4, sync: false)
        #expect(try storedEntryIndexes(engine) == [5, 6])
        engine.crash()
        #expect(try storedEntryIndexes(engine) == [1, 2, 3, 4, 5, 6])
        let reopened = try RaftLogStore(engine: engine)
        #expect(reopened.bounds.storedEntries == 1...6)
        let loaded = try reopened.load(appliedIndex: 4)
        #expect(loaded.snapshot == snapshot(index: 4, term: 1))
        #expect(loaded.entries == entries(5...6, term: 1))
    }

    @Test func initialDurableContents() throws {
        let engine = MemoryEngine(durable: [
            StorageRecord(key: bytes("b"), value: bytes("2")), StorageRecord(key: bytes("a"), value: bytes("1")),
        ])
        #expect(engine.visibleSnapshot.map(\.key) == [bytes("a"), bytes("b")])
        try put(engine, [("c", "3")], sync: false)
        engine.crash()
        #expect(engine.visibleSnapshot.map(\.key) == [bytes("a"), bytes("b")])
    }
}
