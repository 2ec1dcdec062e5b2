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
        #expect(try AppliedIndex.read(from: ChecksummedEngine(wrapping: engine)) == 40, "recovery must make the rebuilt state durable")
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

    @Test("--force-new-cluster: the survivor keeps every committed write, drops uncommitted ones, and leads alone")
    func forceNewCluster() throws {
        // Three members applied two puts; a third was appended but never committed.
        var harness = MemberHarness(voters: [1, 2, 3])
        harness.elect(1)
        for key in ["a", "b"] {
            let response = harness.call(.write(.put(PutRequest(key: bytes(key), value: bytes("1")))), at: 1)
            guard case .write = response else { throw StorageError(.invalidOperation, "put \(key) failed") }
        }
        let engine = MemoryEngine()
        let storage = try MemberStorage(engine: engine)
        let survivor = harness.members[1]!
        let entries = survivor.raft.log.entries(from: 1, through: survivor.raft.lastIndex, maxBytes: .max)
        let lostWrite = Envelope(origin: 2, incarnation: 1, request: 9, body: .put(PutRequest(key: bytes("lost"), value: [1])))
        let lost = LogEntry(term: entries.last!.term, index: survivor.raft.lastIndex + 1, kind: .normal, data: lostWrite.encoded())
        try storage.persist(
            {
                var ready = Ready()
                ready.entries = entries + [lost]
                ready.hardState = HardState(term: survivor.raft.term, vote: 1, commit: survivor.raft.commitIndex)
                return ready
            }())
        #expect(try storage.forceNewCluster(keeping: 1) == [2, 3])
        #expect(throws: StorageError.self) { try MemberStorage(engine: MemoryEngine()).forceNewCluster(keeping: 1) }

        var member = Member(configuration: MemberConfiguration(id: 1), recovered: try storage.recover())
        func settle() throws {
            while member.hasBatch {
                let ready = member.startBatch()
                try storage.persist(ready)
                try storage.write(member.finishBatch())
            }
        }
        try settle()
        #expect(member.raft.confState.voters == [1] && member.raft.confState.learners.isEmpty)
        #expect(member.store.members().map(\.id) == [1])
        for _ in 0..<30 where member.raft.role != .leader {
            member.tick()
            try settle()
        }
        #expect(member.raft.role == .leader)
        #expect(try member.store.range(RangeRequest(key: bytes("a"), rangeEnd: [0])).kvs.count == 2, "committed writes are kept")
        #expect(try member.store.range(RangeRequest(key: bytes("lost"))).kvs.isEmpty, "an uncommitted write is dropped")
        #expect(member.submit(.write(.put(PutRequest(key: bytes("c"), value: bytes("1")))), id: 1) == nil)
        try settle()
        #expect(try member.store.range(RangeRequest(key: bytes("c"))).kvs.count == 1, "the lone member commits alone")
        #expect(try storage.forceNewCluster(keeping: 1) == [], "nothing left to remove")
    }

    @Test("a log that lost its last entries, or a hard state older than the log, is refused although every record passes its checksum")
    func inconsistentLogIsRefused() throws {
        func stored() throws -> (MemoryEngine, MemberStorage) {
            let engine = MemoryEngine()
            let storage = try MemberStorage(engine: engine)
            try storage.bootstrap(voters: [1])
            var ready = Ready()
            ready.entries = (2...5).map { LogEntry(term: 2, index: $0) }
            ready.hardState = HardState(term: 2, vote: 1, commit: 5)
            try storage.persist(ready)
            return (engine, storage)
        }
        func expectRefusal(_ engine: MemoryEngine, _ words: String) {
            do {
                _ = try MemberStorage(engine: engine).recover()
                Issue.record("recovered an inconsistent log")
            } catch let error as StorageError {
                #expect(error.kind == .corruption && error.message.contains(words), "\(error)")
            } catch {
                Issue.record("\(error)")
            }
        }
        let (lostEntry, lostEntryStorage) = try stored()
        var delete = StorageBatch()
        delete.delete(RaftLogStore.Keys.entry(5))
        try lostEntryStorage.engine.write(delete, sync: true)
        expectRefusal(lostEntry, "entries were lost")

        let (staleState, staleStateStorage) = try stored()
        var stale = StorageBatch()
        stale.put(RaftLogStore.Keys.hardState, HardState(term: 1, vote: 1, commit: 1).encoded())
        try staleStateStorage.engine.write(stale, sync: true)
        expectRefusal(staleState, "the hard state was lost")

        let (intact, _) = try stored()
        #expect(try MemberStorage(engine: intact).recover().raft.entries.count == 5)
    }
}

@Suite("MemberStorage: a batch that only moves the commit index")
struct CommitOnlyBatchTests {
    /// Three members on their own engines, each batch carried out at once in the order the
    /// shells do it: persist, finish, write the state.
    struct Group {
        var engines: [NodeID: MemoryEngine] = [:]
        var storages: [NodeID: MemberStorage] = [:]
        var members: [NodeID: Member] = [:]
        var inFlight: [RaftMessage] = []
        var answered: [RequestID: ClientResponse] = [:]
        /// Every leader batch that had nothing to sync and applied entries: (writes its persist
        /// step made, the hard state its state write carried, the last index it applied).
        var commitOnly: [(persistWrites: Int, hardState: HardState?, applied: LogIndex)] = []

        init() throws {
            for id: NodeID in [1, 2, 3] {
                let engine = MemoryEngine()
                let storage = try MemberStorage(engine: engine)
                try storage.bootstrap(voters: [1, 2, 3])
                engines[id] = engine
                storages[id] = storage
                members[id] = Member(configuration: MemberConfiguration(id: id), recovered: try storage.recover())
            }
        }

        mutating func settle() throws {
            for _ in 0..<1_000 {
                var moved = false
                for id in members.keys.sorted() where members[id]!.hasBatch {
                    let ready = members[id]!.startBatch()
                    let writesBefore = engines[id]!.writeCount
                    try storages[id]!.persist(ready)
                    let persistWrites = engines[id]!.writeCount - writesBefore
                    let output = members[id]!.finishBatch()
                    try storages[id]!.write(output)
                    members[id]!.stateWritten()
                    if !ready.mustSync, members[id]!.raft.role == .leader, let last = output.appliedEntries.last {
                        commitOnly.append((persistWrites, output.stateWrite.hardState, last.index))
                    }
                    inFlight += ready.leaderMessages + output.messages
                    for (request, response) in output.responses { answered[request] = response }
                    moved = true
                }
                let messages = inFlight
                inFlight = []
                for message in messages { members[message.to]?.step(message) }
                if !moved && messages.isEmpty { return }
            }
        }
    }

    @Test("a leader applies a write's commit without a persist write, and stores the commit index with the applied index")
    func commitIndexGoesWithTheState() throws {
        var group = try Group()
        try group.settle()
        group.members[1]!.campaign()
        try group.settle()
        #expect(group.members[1]!.raft.role == .leader, "\(group.members.mapValues { ($0.raft.role, $0.raft.term) })")
        group.commitOnly = []
        let put = PutRequest(key: Array("k".utf8), value: Array("v".utf8))
        #expect(group.members[1]!.submit(.write(.put(put)), id: 1) == nil)
        try group.settle()
        #expect(group.answered[1] != nil, "the put was not answered")
        let batch = try #require(group.commitOnly.last, "no leader batch applied the put on learning its commit")
        #expect(batch.persistWrites == 0, "a batch with nothing to sync wrote in its persist step")
        #expect(batch.hardState?.commit == batch.applied, "the state write did not carry the commit index")

        // Synced by the next write to the engine, then the leader crashes: the stored commit
        // index covers the stored applied index.
        let engine = group.engines[1]!
        try engine.write(StorageBatch(), sync: true)
        engine.crash()
        let recovered = try MemberStorage(engine: engine).recover()
        #expect(recovered.raft.appliedIndex == batch.applied)
        #expect(recovered.raft.hardState.commit >= recovered.raft.appliedIndex)
    }
}
