import Foundation
import RaftCore
import Storage
import StorageRocksDB
import Testing

/// The UTF-8 bytes of `string`.
func bytes(_ string: String) -> [UInt8] { Array(string.utf8) }

/// The engines a test runs against.
enum EngineKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case memory
    case rocksDB

    var testDescription: String { rawValue }

    /// Makes a fresh, empty engine of this kind.
    func make() throws -> EngineFixture { try EngineFixture(kind: self) }
}

/// An engine under test; a RocksDB one lives in a temporary directory removed on deinit.
final class EngineFixture {
    let kind: EngineKind
    private(set) var engine: any StorageEngine
    private let directory: URL?

    init(kind: EngineKind) throws {
        self.kind = kind
        switch kind {
        case .memory:
            directory = nil
            engine = MemoryEngine()
        case .rocksDB:
            let url = FileManager.default.temporaryDirectory
                .appendingPathComponent("storage-tests-\(UUID().uuidString)", isDirectory: true)
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            directory = url
            engine = try RocksDBEngine(path: url.path + "/db")
        }
    }

    /// The database directory (RocksDB only).
    var path: String? { directory.map { $0.path + "/db" } }

    /// Simulates a clean process restart: RocksDB is closed and reopened (everything written
    /// survives); a memory engine stays as it is.
    func reopen() throws {
        guard let rocks = engine as? RocksDBEngine, let path else { return }
        try rocks.close()
        engine = try RocksDBEngine(path: path)
    }

    deinit {
        try? (engine as? RocksDBEngine)?.close()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }
}

/// Entries `range` with `term` and some data.
func entries(_ range: ClosedRange<LogIndex>, term: Term) -> [LogEntry] {
    range.map { index in
        LogEntry(term: term, index: index, kind: index % 3 == 0 ? .confChange : .normal, data: bytes("e\(index)t\(term)"))
    }
}

/// A snapshot at `index`/`term` with some data.
func snapshot(index: LogIndex, term: Term, voters: [NodeID] = [1, 2, 3]) -> Snapshot {
    Snapshot(
        metadata: SnapshotMetadata(index: index, term: term, confState: ConfState(voters: voters, learners: [9])),
        data: bytes("state at \(index)"))
}

/// Expects two persistent states to be equal, field by field.
func expectEqual(
    _ actual: PersistentState, _ expected: PersistentState, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(actual.hardState == expected.hardState, sourceLocation: sourceLocation)
    #expect(actual.snapshot == expected.snapshot, sourceLocation: sourceLocation)
    #expect(actual.entries == expected.entries, sourceLocation: sourceLocation)
    #expect(actual.appliedIndex == expected.appliedIndex, sourceLocation: sourceLocation)
}

/// The indexes of the entry keys stored in `engine`.
func storedEntryIndexes(_ engine: any StorageEngine) throws -> [LogIndex] {
    try engine.scan(prefix: RaftLogStore.Keys.entryPrefix).map { RaftLogStore.Keys.index(fromEntryKey: $0.key) ?? .max }
}
