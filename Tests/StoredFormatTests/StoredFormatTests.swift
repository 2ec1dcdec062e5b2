import Foundation
import RaftCore
import StateMachine
import Storage
import TestSupport
import Testing

@testable import ReplicatedMember

/// The bytes Statehouse stores and sends, pinned: a data directory or a backup written by one
/// version must read back in the next. Each expected value below was produced by the build
/// before the codecs were merged into `Primitives` and must never change without a format
/// version change.
@Suite("Stored formats")
struct StoredFormatTests {
    /// The bytes as lowercase hex.
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// The key/value pairs as `key=value` lines of hex.
    static func hex(_ pairs: [([UInt8], [UInt8])]) -> String {
        pairs.map { hex($0.0) + "=" + hex($0.1) }.joined(separator: "\n")
    }

    static let chunk = SnapshotChunk(
        metadata: SnapshotMetadata(index: 9, term: 3, confState: ConfState(voters: [1, 2, 3], learners: [4])),
        offset: 0, data: [0xAB, 0xCD], isLast: true)

    static let message = RaftMessage(
        kind: .appendEntries, from: 1, to: 2, term: 3, logTerm: 2, index: 7,
        entries: [
            LogEntry(term: 3, index: 8, kind: .normal, data: Array("x".utf8)),
            LogEntry(term: 3, index: 9, kind: .confChange, data: ConfChange(.addLearner, node: 4, context: [1, 2]).encoded()),
        ],
        commit: 6, rejectHint: 4, context: 9, snapshot: chunk)

    /// A store after puts, a transaction, a delete, a lease, members and an alarm.
    static func store() throws -> StateStore {
        var store = StateStore()
        func apply(_ request: StateRequest) throws { _ = try store.apply(request) }
        try apply(.leaseGrant(LeaseGrantRequest(ttl: 60, id: 0x42)))
        try apply(.put(PutRequest(key: Array("a".utf8), value: Array("1".utf8))))
        try apply(.put(PutRequest(key: Array("b".utf8), value: Array("2".utf8), lease: 0x42)))
        try apply(
            .txn(
                TxnRequest(
                    compares: [Compare(key: Array("a".utf8), target: .version(1), result: .equal)],
                    success: [.put(PutRequest(key: Array("c".utf8), value: Array("3".utf8)))],
                    failure: [])))
        try apply(.deleteRange(DeleteRangeRequest(key: Array("a".utf8))))
        _ = store.applyMembership(.addVoter(ClusterMember(id: 7, name: "n7", peerURLs: ["http://10.0.0.7:2380"])))
        _ = store.applyMembership(.addLearner(ClusterMember(id: 8, peerURLs: ["http://[::1]:2380"])))
        try apply(.alarm(AlarmRequest(action: .activate, memberID: 7, alarm: .noSpace)))
        return store
    }

    @Test("Raft messages, entries, membership and snapshot metadata")
    func raft() {
        #expect(Self.hex(HardState(term: 5, vote: 2, commit: 17).encoded()) == Golden.hardState)
        #expect(Self.hex(Self.message.encoded()) == Golden.message)
        #expect(RaftMessage(decoding: Self.message.encoded()) == Self.message)
        #expect(Self.hex(Self.chunk.metadata.encoded()) == Golden.snapshotMetadata)
    }

    /// Stores a small log (a snapshot, two entries, a hard state) and applied index through
    /// `writer` and returns every record of `engine` as hex lines.
    static func storedLog(through writer: any StorageEngine, in engine: MemoryEngine) throws -> String {
        let log = try RaftLogStore(engine: writer)
        let base = SnapshotMetadata(index: 7, term: 2, confState: ConfState(voters: [1, 2, 3]))
        try log.append(
            entries: Self.message.entries, hardState: HardState(term: 3, vote: 1, commit: 8),
            snapshot: Snapshot(metadata: base, data: [1, 2, 3]))
        var batch = StorageBatch()
        AppliedIndex.put(8, into: &batch)
        try writer.write(batch, sync: true)
        return Self.hex(try engine.scan(from: [], to: nil).map { ($0.key, $0.value) })
    }

    @Test("the Raft log and applied index as stored")
    func raftLog() throws {
        let engine = MemoryEngine()
        #expect(try Self.storedLog(through: engine, in: engine) == Golden.raftLog)
    }

    @Test("the Raft log and applied index as stored with checksums (format record crc32c/1)")
    func checksummedRaftLog() throws {
        let engine = MemoryEngine()
        #expect(try Self.storedLog(through: ChecksummedEngine(wrapping: engine), in: engine) == Golden.checksummedRaftLog)
    }

    @Test("a data directory written before checksums is read, and upgraded")
    func uncheckedRaftLogIsUpgraded() throws {
        let records = Golden.raftLog.split(separator: "\n").map { line in
            let parts = line.split(separator: "=").map { text in
                stride(from: 0, to: text.count, by: 2).map { offset in
                    UInt8(text.dropFirst(offset).prefix(2), radix: 16)!
                }
            }
            return StorageRecord(key: parts[0], value: parts[1])
        }
        let engine = MemoryEngine(durable: records)
        let recovered = try MemberStorage(engine: engine).recover()
        #expect(recovered.raft.entries == Self.message.entries)
        #expect(recovered.raft.hardState == HardState(term: 3, vote: 1, commit: 8))
        #expect(recovered.raft.snapshot?.data == [1, 2, 3])
        #expect(recovered.raft.appliedIndex == 8)
        #expect(Self.hex(engine.durableSnapshot.map { ($0.key, $0.value) }) == Golden.checksummedRaftLog)
    }

    @Test("the state machine's records, the snapshot codec and log entry payloads")
    func stateMachine() throws {
        let store = try Self.store()
        #expect(Self.hex(store.backendPairs()) == Golden.backend)
        #expect(Self.hex(SnapshotCodec.encode(Array(store.backendPairs().prefix(2)))) == Golden.snapshotCodec)
        let checksummed = SnapshotCodec.encodeChecksummed(Array(store.backendPairs().prefix(2)))
        #expect(Self.hex(checksummed) == Golden.checksummedSnapshot)
        #expect(try SnapshotCodec.decodeChecksummed(checksummed).map(\.0) == store.backendPairs().prefix(2).map(\.0))
        let request = StateRequest.txn(
            TxnRequest(
                compares: [Compare(key: Array("k".utf8), rangeEnd: [0], target: .modRevision(-3), result: .less)],
                success: [.range(RangeRequest(key: Array("k".utf8), limit: 2))],
                failure: [.deleteRange(DeleteRangeRequest(key: Array("k".utf8), prevKV: true))]))
        let envelope = Envelope(origin: 2, incarnation: 5, request: 11, body: request)
        #expect(Self.hex(envelope.encoded()) == Golden.envelope)
        #expect(Envelope(decoding: envelope.encoded()) == envelope)
    }

    @Test("the client session table's records and session log entry payloads (format 2 envelopes)")
    func sessions() throws {
        var store = StateStore()
        _ = try store.apply(.leaseGrant(LeaseGrantRequest(ttl: 60, id: 0x42)))
        _ = store.apply(
            .put(PutRequest(key: Array("a".utf8), value: Array("1".utf8))), in: SessionStamp(session: 0x42, sequence: 3, acknowledged: 2))
        _ = store.apply(
            .put(PutRequest(key: Array("b".utf8), value: [], lease: 9)), in: SessionStamp(session: 0x42, sequence: 4, acknowledged: 3))
        let sessionPairs = store.backendPairs().filter { $0.0.starts(with: Array("m/session/".utf8)) }
        #expect(Self.hex(sessionPairs) == Golden.sessions)
        let envelope = Envelope(
            origin: 2, incarnation: 5, request: 11, session: SessionStamp(session: 0x42, sequence: 4, acknowledged: 3),
            body: .deleteRange(DeleteRangeRequest(key: Array("k".utf8))))
        #expect(Self.hex(envelope.encoded()) == Golden.sessionEnvelope)
        #expect(Envelope(decoding: envelope.encoded()) == envelope)
    }
}

@Suite("Stored formats: auth")
struct AuthStoredFormatTests {
    @Test("auth records in the backend and a log entry with credentials")
    func auth() throws {
        var store = StateStore()
        for request: AuthRequest in [
            .userAdd(name: "root", passwordHash: Array("h".utf8), noPassword: false),
            .userGrantRole(user: "root", role: "root"),
            .roleAdd(name: "app"),
            .roleGrantPermission(role: "app", permission: Permission(type: .readWrite, key: Array("a/".utf8), rangeEnd: Array("a0".utf8))),
            .enable,
        ] {
            _ = try store.apply(.auth(request))
        }
        let pairs = store.backendPairs().filter { $0.0.starts(with: Array("m/auth/".utf8)) }
        #expect(StoredFormatTests.hex(pairs) == AuthGolden.backend)
        let entry = StateRequest.authorized(
            AuthInfo(user: "root", revision: 5), .auth(.userChangePassword(name: "root", passwordHash: [1, 2])))
        #expect(StoredFormatTests.hex(entry.encoded()) == AuthGolden.request)
        #expect(try StateRequest(decoding: entry.encoded()) == entry)
    }
}

/// The expected bytes of the auth records, as produced by their first version.
enum AuthGolden {
    static let backend = """
        6d2f617574682f656e61626c6564=01
        6d2f617574682f7265766973696f6e=0000000000000005
        6d2f617574682f726f6c652f617070=0103617070010202612f026130
        6d2f617574682f757365722f726f6f74=010004726f6f7401680104726f6f74
        """
    static let request = "010c04726f6f74050b0704726f6f74020102"
}

/// The expected bytes, as produced by the format's first version.
enum Golden {
    static let hardState = "050000000000000002000000000000001100000000000000"
    static let message =
        "000100000000000000020000000000000003000000000000000200000000000000070000000000000006000000000000"
        + "000004000000000000000900000000000000020000000000000003000000000000000800000000000000000100000078"
        + "03000000000000000900000000000000010f000000010400000000000000020000000102010900000000000000030000"
        + "000000000003000000000000000100000000000000020000000000000003000000000000000100000000000000040000"
        + "0000000000000000000000000002000000abcd01"
    static let snapshotMetadata =
        "090000000000000003000000000000000300000000000000010000000000000002000000000000000300000000000000"
        + "01000000000000000400000000000000"
    static let raftLog = """
        612f6170706c696564=0800000000000000
        722f652f0000000000000008=03000000000000000800000000000000000100000078
        722f652f0000000000000009=03000000000000000900000000000000010f000000010400000000000000020000000102
        722f68=030000000000000001000000000000000800000000000000
        722f73=070000000000000002000000000000000300000000000000010000000000000002000000000000000300000000000000000000000000000003000000010203
        """
    /// ``raftLog`` as a ``ChecksummedEngine`` stores it: each value followed by the CRC-32C
    /// (little-endian) of the key's 32-bit little-endian length, the key and the value, and the
    /// format record `f/format` = `crc32c/1`.
    static let checksummedRaftLog = """
        612f6170706c696564=080000000000000053932fee
        662f666f726d6174=6372633332632f31
        722f652f0000000000000008=03000000000000000800000000000000000100000078a17ca46c
        722f652f0000000000000009=03000000000000000900000000000000010f000000010400000000000000020000000102a4e8c863
        722f68=03000000000000000100000000000000080000000000000094612c8c
        722f73=070000000000000002000000000000000300000000000000010000000000000002000000000000000300000000000000000000000000000003000000010203752c398b
        """
    static let backend = """
        6b2f00000000000000020000000000000000=010001610402000131
        6b2f00000000000000030000000000000000=01000162060284010132
        6b2f00000000000000040000000000000000=010001630802000133
        6b2f00000000000000050000000000000000=0101016100000000
        6c2f8000000000000042=010000000000000042000000000000003c0000000000000000
        6d2f616c61726d2f000000000000000701=01
        6d2f6d656d6265722f0000000000000007=0001026e370114687474703a2f2f31302e302e302e373a3233383000
        6d2f6d656d6265722f0000000000000008=0101000111687474703a2f2f5b3a3a315d3a3233383000
        6d2f7265766973696f6e=0000000000000005
        """
    static let snapshotCodec =
        "0200000000000000120000006b2f0000000000000002000000000000000009000000010001610402000131120000006b"
        + "2f000000000000000300000000000000000a00000001000162060284010132"
    /// Snapshot data as leaders send it and followers store it since it was checksummed: eight
    /// 0xFF bytes, version 1, the CRC-32C of the plain encoding (little-endian), the plain encoding.
    static let checksummedSnapshot = "ffffffffffffffff" + "01" + "dcc11634" + snapshotCodec
    /// A session header (created at revision 1, acknowledged 3) and two remembered answers (a
    /// put's response, a lease-not-found error).
    static let sessions = """
        6d2f73657373696f6e2f8000000000000042=01020300
        6d2f73657373696f6e2f80000000000000420000000000000003=010001010400
        6d2f73657373696f6e2f80000000000000420000000000000004=01010108
        """
    static let sessionEnvelope =
        "02020000000000000005000000000000000b000000000000004200000000000000040000000000000003000000000000"
        + "000102016b0000"
    static let envelope =
        "01020000000000000005000000000000000b00000000000000010301020205016b01000100016b000400000000000000"
        + "0000000102016b0001"
}

/// The fuzzer's corpora (inputs libFuzzer found that reach new code), one directory per target,
/// replayed: every decoder must refuse or accept each input without crashing. `make fuzz`
/// grows the search.
@Suite("Decoder corpus")
struct DecoderCorpusTests {
    static let targets = ["decoders", "grpc-framing", "etcd-requests", "peer-frames", "raft-messages", "snapshots", "stored-records"]

    @Test("decoder-fuzzer replays each target's corpus without a crash", arguments: targets)
    func replay(target: String) throws {
        let executable = try #require(builtExecutable(named: "decoder-fuzzer"), "build decoder-fuzzer first")
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/corpus/\(target)")
        let files = try FileManager.default.contentsOfDirectory(atPath: corpus.path).map { corpus.appendingPathComponent($0).path }
        #expect(files.count >= 10)
        let process = Process()
        process.executableURL = executable
        process.arguments = ["--target", target] + files
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(text.contains("\(files.count) input(s) decoded without a crash (\(target))"))
    }

    @Test("Every corpus directory is a target")
    func everyCorpusIsATarget() throws {
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/corpus")
        #expect(try Set(FileManager.default.contentsOfDirectory(atPath: corpus.path)) == Set(Self.targets))
    }
}
