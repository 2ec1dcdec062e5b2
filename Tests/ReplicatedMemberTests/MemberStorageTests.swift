import StateMachine
import Storage
import Testing

@testable import RaftCore
@testable import ReplicatedMember

@Suite("MemberStorage")
struct MemberStorageTests {
    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// A snapshot of a store holding `count` keys, as a leader would send it at `index`.
    private func snapshot(keys count: Int, at index: LogIndex) throws -> (Snapshot, StateStore) {
        var store = StateStore()
        for key in 0..<count { _ = try store.put(PutRequest(key: bytes("k\(key)"), value: bytes("v\(key)"))) }
        let metadata = SnapshotMetadata(index: index, term: 2, confState: ConfState(voters: [1, 2, 3]))
        return (Snapshot(metadata: metadata, data: SnapshotCodec.encode(store.backendPairs())), store)
    }

    @Test("a crash after a received snapshot is stored but before its state is written recovers the snapshot's state")
    func crashBetweenSnapshotAndState() throws {
        let engine = MemoryEngine()
        let storage = try MemberStorage(engine: engine)
        try storage.bootstrap(voters: [1, 2, 3])
        let (received, leaderStore) = try snapshot(keys: 20, at: 40)
        var ready = Ready()
        ready.snapshot = received
        ready.hardState = HardState(term: 2, vote: 1, commit: 40)
        try storage.persist(ready)  // synced; the state write that would follow never happens
        engine.crash()

        let recovered = try MemberStorage(engine: engine).recover()
        #expect(recovered.raft.appliedIndex == 40)
        #expect(recovered.raft.snapshot?.metadata == received.metadata)
        #expect(try recovered.store.hashKV().hash == leaderStore.hashKV().hash)
        #expect(try AppliedIndex.read(from: engine) == 40, "recovery must make the rebuilt state durable")
    }

    @Test("state writes are one batch with the applied index: a crash keeps both or neither")
    func stateAndAppliedIndexTogether() throws {
        let engine = MemoryEngine()
        let storage = try MemberStorage(engine: engine)
        try storage.bootstrap(voters: [1])
        var store = StateStore()
        let applied = try store.put(PutRequest(key: bytes("a"), value: bytes("1")))
        var output = BatchOutput()
        output.stateWrite.mutations = applied.mutations
        output.stateWrite.appliedIndex = 7
        try storage.write(output)  // unsynced
        engine.crash()
        let lost = try MemberStorage(engine: engine).recover()
        #expect(lost.raft.appliedIndex == 0 && lost.store.currentRevision == 1, "an unsynced write must vanish whole")

        try storage.write(output)
        try storage.persist(
            {
                var ready = Ready(); ready.hardState = HardState(term: 1, commit: 1); return ready
            }())  // a later sync
        engine.crash()
        let kept = try MemberStorage(engine: engine).recover()
        #expect(kept.raft.appliedIndex == 7 && kept.store.currentRevision == 2, "a later synced write must keep it whole")
    }
}
