import RaftCore
import Storage
import Testing

@Suite("Checksummed records and injected disk faults")
struct StorageFaultTests {
    private func batch(_ pairs: [(String, String)]) -> StorageBatch {
        var batch = StorageBatch()
        for (key, value) in pairs { batch.put(bytes(key), bytes(value)) }
        return batch
    }

    private func expectCorruption(at key: String, _ body: () throws(StorageError) -> Void) {
        do {
            try body()
            Issue.record("damaged record at \(key) was read")
        } catch {
            #expect(error.kind == .corruption)
            #expect(error.key == bytes(key))
        }
    }

    @Test func checksummedRecordsReadBackAndHideTheFormatRecord() throws {
        let base = MemoryEngine()
        let engine = try ChecksummedEngine(wrapping: base)
        try engine.write(batch([("a", "1"), ("g", "2")]), sync: true)
        #expect(try engine.get(bytes("a")) == bytes("1"))
        #expect(try engine.scan(from: [], to: nil).map(\.key) == [bytes("a"), bytes("g")])
        #expect(try engine.scan(from: [], to: nil, limit: 1, reverse: true).map(\.key) == [bytes("g")])
        #expect(try engine.scan(from: bytes("b"), to: nil, limit: 1).map(\.key) == [bytes("g")])
        #expect(try base.get(ChecksummedEngine.formatKey) == ChecksummedEngine.formatValue)
        #expect(try base.get(bytes("a"))?.count == 1 + ChecksummedEngine.checksumBytes)
        #expect(try ChecksummedEngine(wrapping: base).get(bytes("g")) == bytes("2"))
    }

    @Test func everyFlippedBitIsDetected() throws {
        let base = MemoryEngine()
        try ChecksummedEngine(wrapping: base).write(batch([("a", "value")]), sync: true)
        for bit in 0..<((5 + ChecksummedEngine.checksumBytes) * 8) {
            let damaged = MemoryEngine(durable: base.durableSnapshot)
            #expect(damaged.flipBit(ofValueAt: bytes("a"), bit: bit))
            let engine = try ChecksummedEngine(wrapping: damaged)
            expectCorruption(at: "a") { () throws(StorageError) in _ = try engine.get(bytes("a")) }
            expectCorruption(at: "a") { () throws(StorageError) in _ = try engine.scan(from: [], to: nil) }
        }
    }

    @Test func aMisdirectedWriteIsDetectedUnderTheKeyItLandedOn() throws {
        let base = MemoryEngine()
        let engine = try ChecksummedEngine(wrapping: base)
        try engine.write(batch([("a", "1"), ("b", "2")]), sync: true)
        base.faults.misdirectNextWrite = 0  // the durable record at position 0: "a"
        try engine.write(batch([("b", "3")]), sync: true)
        #expect(base.faults.misdirectedWrites == 1)
        #expect(try engine.get(bytes("b")) == bytes("2"), "the intended key keeps its old value")
        expectCorruption(at: "a") { () throws(StorageError) in _ = try engine.get(bytes("a")) }
    }

    @Test func aStoreWithoutChecksumsIsUpgradedOnce() throws {
        let base = MemoryEngine(durable: [StorageRecord(key: bytes("a"), value: bytes("old"))])
        let engine = try ChecksummedEngine(wrapping: base)
        #expect(try engine.get(bytes("a")) == bytes("old"))
        #expect(try base.get(bytes("a"))?.count == 3 + ChecksummedEngine.checksumBytes)
        #expect(base.syncedWriteCount == 1)
        #expect(try ChecksummedEngine(wrapping: base).get(bytes("a")) == bytes("old"))
        #expect(base.syncedWriteCount == 1)
    }

    @Test func aLostFormatRecordIsNotMistakenForAnOldStore() throws {
        let base = MemoryEngine()
        try ChecksummedEngine(wrapping: base).write(batch([("a", "1")]), sync: true)
        var delete = StorageBatch()
        delete.delete(ChecksummedEngine.formatKey)
        try base.write(delete, sync: true)
        #expect(throws: StorageError.self) { _ = try ChecksummedEngine(wrapping: base) }
        var unknown = StorageBatch()
        unknown.put(ChecksummedEngine.formatKey, bytes("crc32c/9"))
        try base.write(unknown, sync: true)
        #expect(throws: StorageError.self) { _ = try ChecksummedEngine(wrapping: base) }
    }

    @Test func aTornBatchIsDroppedWholeWithEverythingAfterIt() throws {
        let engine = MemoryEngine()
        try engine.write(batch([("a", "1")]), sync: false)
        try engine.write(batch([("b", "2"), ("c", "3")]), sync: false)
        try engine.write(batch([("d", "4")]), sync: false)
        #expect(engine.crash(keepingUnsyncedBatches: 1, tornOperations: 1))
        #expect(engine.visibleSnapshot.map(\.key) == [bytes("a")])
        try engine.write(batch([("b", "2"), ("c", "3")]), sync: false)
        #expect(!engine.crash(keepingUnsyncedBatches: 0, tornOperations: 2), "a record written whole is not torn")
        #expect(engine.visibleSnapshot.map(\.key) == [bytes("a"), bytes("b"), bytes("c")])
    }

    @Test func aFailedFsyncLeavesTheWriteUnsynced() throws {
        let engine = MemoryEngine()
        engine.faults.failNextSync = true
        #expect(throws: StorageError.self) { try engine.write(batch([("a", "1")]), sync: true) }
        #expect(try engine.get(bytes("a")) == bytes("1"))
        #expect(engine.durableSnapshot.isEmpty)
        try engine.write(batch([("b", "2")]), sync: true)
        #expect(engine.durableSnapshot.count == 2, "the next successful sync makes both durable")
    }

    @Test func aFullDiskRefusesEveryWriteUntilCleared() throws {
        let engine = MemoryEngine()
        engine.faults.diskFull = true
        #expect(throws: StorageError.self) { try engine.write(batch([("a", "1")]), sync: false) }
        #expect(throws: StorageError.self) { try engine.write(batch([("a", "1")]), sync: true) }
        #expect(engine.visibleSnapshot.isEmpty)
        engine.faults.diskFull = false
        try engine.write(batch([("a", "1")]), sync: true)
        #expect(engine.durableSnapshot.count == 1)
    }

    @Test func aLostSyncedWriteRestoresWhatItReplaced() throws {
        let engine = MemoryEngine()
        engine.faults.recordsLostWrites = true
        try engine.write(batch([("a", "1"), ("b", "1")]), sync: true)
        try engine.write(batch([("c", "2")]), sync: false)
        var second = batch([("a", "2")])
        second.deleteRange(from: bytes("b"), to: bytes("c"))
        try engine.write(second, sync: true)
        #expect(engine.crashLosingLastSyncedWrite())
        #expect(engine.visibleSnapshot.map(\.key) == [bytes("a"), bytes("b")])
        #expect(try engine.get(bytes("a")) == bytes("1"))
        #expect(!engine.crashLosingLastSyncedWrite(), "only the last synced write is remembered")
    }
}
