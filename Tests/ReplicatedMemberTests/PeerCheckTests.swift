import Primitives
import StateMachine
import Storage
import Testing

@testable import RaftCore
@testable import ReplicatedMember

@Suite("Peer checks")
struct PeerCheckTests {
    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// Members 1, 2 and 3, led by 1.
    private func groupLedByOne() -> MemberHarness {
        var harness = MemberHarness(voters: [1, 2, 3])
        harness.elect(1)
        return harness
    }

    /// Snapshot data that carries a correct checksum over bytes that are not a snapshot.
    private static let checksummedGarbage: [UInt8] = {
        let body: [UInt8] = [0x05, 0, 0, 0, 0, 0, 0, 0, 0xDE, 0xAD]
        let crc = CRC32.checksum(body, .castagnoli)
        return [UInt8](repeating: 0xFF, count: 8) + [1] + (0..<4).map { UInt8(truncatingIfNeeded: crc >> (8 * $0)) } + body
    }()

    @Test(
        "checksummed snapshot data round-trips; a flipped byte, a short header or an unknown version is refused; plain data still decodes")
    func checksummedCodec() throws {
        let pairs: [([UInt8], [UInt8])] = [(bytes("k/1"), bytes("x")), (bytes("m/revision"), [0, 1])]
        let encoded = SnapshotCodec.encodeChecksummed(pairs)
        #expect(encoded.starts(with: [UInt8](repeating: 0xFF, count: 8)))
        let decoded = try SnapshotCodec.decodeChecksummed(encoded)
        #expect(decoded.map(\.0) == pairs.map(\.0) && decoded.map(\.1) == pairs.map(\.1))
        let plain = try SnapshotCodec.decodeChecksummed(SnapshotCodec.encode(pairs))
        #expect(plain.map(\.0) == pairs.map(\.0))

        var flipped = encoded
        flipped[flipped.count - 1] ^= 0x01
        #expect(throws: ByteDecodingError.self) { try SnapshotCodec.decodeChecksummed(flipped) }
        var otherVersion = encoded
        otherVersion[8] = 2
        #expect(throws: ByteDecodingError.self) { try SnapshotCodec.decodeChecksummed(otherVersion) }
        #expect(throws: ByteDecodingError.self) { try SnapshotCodec.decodeChecksummed(Array(encoded.prefix(10))) }
        #expect(throws: ByteDecodingError.self) { try SnapshotCodec.decodeChecksummed(Self.checksummedGarbage) }
        // The plain decoder, which backups use, does not read the checksummed format.
        #expect(throws: ByteDecodingError.self) { try SnapshotCodec.decode(encoded) }
    }

    @Test("a member drops messages from a sender that is not a member: a vote with a huge term changes nothing")
    func strangerIsIgnored() throws {
        var follower = groupLedByOne().members[2]!
        let term = follower.raft.term
        #expect(!follower.recognizes(9) && !follower.recognizes(2) && follower.recognizes(1))
        for kind in [RaftMessage.Kind.requestVote, .requestPreVote, .appendEntries, .heartbeat, .timeoutNow, .propose] {
            let verdict = follower.step(RaftMessage(kind: kind, from: 9, to: 2, term: 1_000_000, commit: 1_000))
            #expect(verdict == .unknownSender)
        }
        #expect(follower.raft.term == term && follower.raft.leader == 1 && !follower.hasBatch)
    }

    @Test("a forwarded proposal or transfer from a stranger reaches neither the leader's log nor its leadership")
    func strangerCannotProposeOrTransfer() throws {
        var leader = groupLedByOne().members[1]!
        let last = leader.raft.lastIndex
        #expect(
            leader.step(RaftMessage(kind: .propose, from: 9, to: 1, term: 0, entries: [LogEntry(term: 0, index: 0, data: [1])]))
                == .unknownSender)
        #expect(leader.step(RaftMessage(kind: .transferLeader, from: 9, to: 1, term: 0, context: 2)) == .unknownSender)
        #expect(leader.raft.lastIndex == last && !leader.raft.isTransferringLeadership)
    }

    @Test("a garbage snapshot from the leader's ID is refused before it is stored; the follower keeps serving")
    func garbageSnapshotIsRefused() throws {
        var harness = groupLedByOne()
        #expect(harness.call(.write(.put(PutRequest(key: bytes("a"), value: bytes("1")))), at: 1) != nil)
        var follower = harness.members[3]!
        let applied = follower.appliedIndex
        let hash = try follower.store.hashKV().hash
        for data in [Self.checksummedGarbage, [1, 2, 3], SnapshotCodec.encodeChecksummed([]) + [0]] {
            let chunk = SnapshotChunk(
                metadata: SnapshotMetadata(index: 1_000, term: follower.raft.term, confState: ConfState(voters: [1, 2, 3])),
                offset: 0, data: data, isLast: true)
            let verdict = follower.step(RaftMessage(kind: .installSnapshot, from: 1, to: 3, term: follower.raft.term, snapshot: chunk))
            guard case .invalidSnapshot = verdict else {
                Issue.record("snapshot \(data) was not refused: \(verdict)")
                continue
            }
            let ready = follower.startBatch()
            #expect(ready.snapshot == nil && ready.entries.isEmpty)
            #expect(ready.messages.contains { $0.kind == .snapshotResponse && $0.reject && $0.rejectHint == 0 })
            _ = follower.finishBatch()
        }
        #expect(follower.appliedIndex == applied && follower.raft.commitIndex == applied)
        #expect(try follower.store.hashKV().hash == hash)
        harness.members[3] = follower
        #expect(harness.call(.write(.put(PutRequest(key: bytes("b"), value: bytes("2")))), at: 1) != nil)
        #expect(harness.members[3]!.store.currentRevision == harness.members[1]!.store.currentRevision)
    }

    @Test("a member joining with an empty log hears from its initial members until it has applied its own addition")
    func joiningMemberTrustsInitialMembers() throws {
        var configuration = MemberConfiguration(id: 4)
        configuration.initialMembers = [1, 2, 3, 4]
        var joining = Member(
            configuration: configuration,
            recovered: RecoveredState(raft: PersistentState(), store: StateStore(configuration: configuration.storeConfiguration)))
        #expect(joining.recognizes(1) && joining.recognizes(3) && !joining.recognizes(9) && !joining.recognizes(4))
        #expect(joining.step(RaftMessage(kind: .heartbeat, from: 1, to: 4, term: 2)) == .accepted)
        #expect(joining.raft.leader == 1)

        let stranger = Member(
            configuration: MemberConfiguration(id: 4),
            recovered: RecoveredState(raft: PersistentState(), store: StateStore()))
        #expect(!stranger.recognizes(1))
    }

    @Test("a damaged stored snapshot makes recovery fail with a corruption error, not a crash")
    func damagedStoredSnapshot() throws {
        let engine = MemoryEngine()
        let storage = try MemberStorage(engine: engine)
        try storage.bootstrap(voters: [1, 2, 3])
        var data = SnapshotCodec.encodeChecksummed(StateStore().backendPairs())
        data[data.count - 1] ^= 0xFF
        var ready = Ready()
        ready.snapshot = Snapshot(metadata: SnapshotMetadata(index: 40, term: 2, confState: ConfState(voters: [1, 2, 3])), data: data)
        ready.hardState = HardState(term: 2, vote: 1, commit: 40)
        try storage.persist(ready)
        do {
            _ = try MemberStorage(engine: engine).recover()
            Issue.record("a damaged snapshot was recovered")
        } catch let error as StorageError {
            #expect(error.kind == .corruption)
        }
    }
}
