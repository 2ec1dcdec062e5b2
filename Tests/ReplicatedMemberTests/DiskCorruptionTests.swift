import Foundation
import Primitives
import RocksDB
import Storage
import StorageRocksDB
import Testing

@testable import RaftCore
@testable import ReplicatedMember

/// A member's data directory on a real disk, damaged while the member is down: reopening it must
/// fail with an error naming the corruption, never return wrong data. A torn end of the
/// write-ahead log, which a power cut leaves, must not stop the member from starting.
@Suite("Damaged data directories")
struct DiskCorruptionTests {
    static let entryCount = 24

    /// Entry `index`'s data: bytes no compressor shrinks, so that they appear as they are in the
    /// files and the test can find them.
    static func payload(_ index: LogIndex) -> [UInt8] {
        var rng = SeededGenerator(seed: 0xD15C + index)
        return (0..<256).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    /// A fresh directory, removed when `body` returns.
    static func withDirectory(_ body: (String) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("disk-corruption-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try body(directory.path + "/db")
    }

    /// Writes a one-member log of ``entryCount`` entries, one synced batch each, and closes the
    /// database; with `flush`, the data ends up in SST files, otherwise only in the log.
    static func writeLog(at path: String, flush: Bool) throws {
        let engine = try RocksDBEngine(path: path)
        let storage = try MemberStorage(engine: engine)
        try storage.bootstrap(voters: [1])
        for index in LogIndex(2)...LogIndex(entryCount) {
            var ready = Ready()
            ready.entries = [LogEntry(term: 1, index: index, kind: .normal, data: payload(index))]
            ready.hardState = HardState(term: 1, vote: 1, commit: index)
            try storage.persist(ready)
        }
        if flush { try engine.database.flush() }
        try engine.close()
    }

    /// Opens the directory and recovers the member from it.
    static func recover(at path: String, options: Database.Options = Database.Options()) throws -> RecoveredState {
        let engine = try RocksDBEngine(path: path, options: options)
        defer { try? engine.close() }
        return try MemberStorage(engine: engine).recover()
    }

    /// Flips one byte in the middle of entry `index`'s data in the first file named `suffix`
    /// that holds it; returns that file.
    static func damage(entry index: LogIndex, inFileEndingWith suffix: String, at path: String) throws -> String {
        let needle = Data(payload(index))
        for name in try FileManager.default.contentsOfDirectory(atPath: path).sorted() where name.hasSuffix(suffix) {
            let file = path + "/" + name
            var contents = try Data(contentsOf: URL(fileURLWithPath: file))
            guard let range = contents.range(of: needle) else { continue }
            contents[range.lowerBound + needle.count / 2] ^= 0x5A
            try contents.write(to: URL(fileURLWithPath: file))
            return file
        }
        throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "entry \(index) is in no \(suffix) file"])
    }

    /// Expects recovery to fail with an error that names the damage.
    static func expectRefusal(at path: String, _ comment: Comment) {
        do {
            let recovered = try recover(at: path)
            Issue.record("recovered \(recovered.raft.entries.count) entries from a damaged directory: \(comment)")
        } catch {
            let text = "\(error)".lowercased()
            #expect(text.contains("corrupt") || text.contains("checksum"), "\(comment): \(error)")
        }
    }

    @Test("an undamaged directory recovers every entry")
    func intact() throws {
        try Self.withDirectory { path in
            try Self.writeLog(at: path, flush: true)
            let recovered = try Self.recover(at: path)
            #expect(recovered.raft.entries.count == Self.entryCount)
            #expect(recovered.raft.entries.last?.data == Self.payload(LogIndex(Self.entryCount)))
        }
    }

    /// Where a byte is flipped: in an SST file (the data flushed), or in a write-ahead-log record
    /// followed by others (the data only in the log).
    enum DamagedFile: String, CaseIterable, Sendable {
        case table = ".sst"
        case log = ".log"
    }

    @Test("a flipped byte in an SST file, or in a write-ahead-log record followed by others, is refused", arguments: DamagedFile.allCases)
    func damagedFile(_ file: DamagedFile) throws {
        try Self.withDirectory { path in
            try Self.writeLog(at: path, flush: file == .table)
            _ = try Self.damage(entry: 10, inFileEndingWith: file.rawValue, at: path)
            Self.expectRefusal(at: path, "\(file.rawValue) file")
            if file == .log {
                // RocksDB itself refuses, before any record is read: the damaged record is not the
                // log's last. Point-in-time recovery would open, silently without the synced
                // records after it.
                #expect(throws: StorageError.self) { try RocksDBEngine(path: path).close() }
                let truncated = try Self.recover(at: path, options: Database.Options(walRecovery: .pointInTime))
                #expect(truncated.raft.entries.count < 10)
            }
        }
    }

    @Test("a torn end of the write-ahead log loses only the torn batch, and the member starts")
    func tornLogTail() throws {
        try Self.withDirectory { path in
            try Self.writeLog(at: path, flush: false)
            let logs = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".log") }.sorted()
            let file = try #require(logs.last.map { path + "/" + $0 })
            let contents = try Data(contentsOf: URL(fileURLWithPath: file))
            try contents.prefix(contents.count - 100).write(to: URL(fileURLWithPath: file))
            // Refusing every damaged record would keep the member down after any power cut.
            #expect(throws: (any Error).self) {
                _ = try Self.recover(at: path, options: Database.Options(walRecovery: .absoluteConsistency))
            }
            let recovered = try Self.recover(at: path)
            #expect(recovered.raft.entries.count == Self.entryCount - 1)
            #expect(recovered.raft.entries.last?.data == Self.payload(LogIndex(Self.entryCount - 1)))
        }
    }
}
