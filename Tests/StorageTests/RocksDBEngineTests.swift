import Foundation
import RaftCore
import Storage
import StorageRocksDB
import Testing

@Suite("RocksDBEngine")
struct RocksDBEngineTests {
    @Test func writesSurviveCloseAndReopen() throws {
        let fixture = try EngineKind.rocksDB.make()
        var synced = StorageBatch()
        synced.put(bytes("k/a"), bytes("1"))
        synced.put(bytes("k/b"), bytes("2"))
        try fixture.engine.write(synced, sync: true)
        var unsynced = StorageBatch()
        unsynced.delete(bytes("k/a"))
        unsynced.put(bytes("k/c"), bytes("3"))
        try fixture.engine.write(unsynced, sync: false)
        let store = try RaftLogStore(engine: fixture.engine)
        try store.append(entries: entries(1...3, term: 1), hardState: HardState(term: 1, vote: 2, commit: 1))

        try fixture.reopen()
        #expect(try fixture.engine.scan(prefix: bytes("k/")).map(\.key) == [bytes("k/b"), bytes("k/c")])
        let loaded = try RaftLogStore(engine: fixture.engine).load(appliedIndex: 1)
        #expect(loaded.entries == entries(1...3, term: 1))
        #expect(loaded.hardState == HardState(term: 1, vote: 2, commit: 1))
    }

    @Test func rangeDeletionSurvivesReopen() throws {
        let fixture = try EngineKind.rocksDB.make()
        let store = try RaftLogStore(engine: fixture.engine)
        try store.append(entries: entries(1...50, term: 1), hardState: HardState(term: 1, vote: 0, commit: 50))
        try store.append(entries: entries(20...21, term: 2), hardState: nil)
        try fixture.reopen()
        #expect(try storedEntryIndexes(fixture.engine) == Array(1...21))
    }

    @Test func secondOpenOfTheSameDirectoryReportsRocksDBsMessage() throws {
        let fixture = try EngineKind.rocksDB.make()
        let error = #expect(throws: StorageError.self) { try RocksDBEngine(path: fixture.path!) }
        #expect(error?.kind == .engine)
        #expect(error?.message.contains("lock") == true || error?.message.contains("LOCK") == true)
    }

    @Test func openingARegularFileFails() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("storage-tests-file-\(UUID().uuidString)")
        try Data("not a database".utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let error = #expect(throws: StorageError.self) { try RocksDBEngine(path: url.path) }
        #expect(error?.kind == .engine)
        #expect(error?.message.isEmpty == false)
    }

    @Test func operationsOnAClosedEngineThrow() throws {
        let fixture = try EngineKind.rocksDB.make()
        let engine = try #require(fixture.engine as? RocksDBEngine)
        try engine.close()
        let error = #expect(throws: StorageError.self) { try engine.get(bytes("k")) }
        #expect(error?.message.contains("closed") == true)
        #expect(throws: StorageError.self) { try engine.write(StorageBatch([.put(key: bytes("k"), value: [])]), sync: true) }
        #expect(throws: StorageError.self) { try engine.scan(prefix: bytes("k")) }
    }
}
