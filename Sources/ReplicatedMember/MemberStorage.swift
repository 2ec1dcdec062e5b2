import RaftCore
import StateMachine
@_spi(Testing) import Storage

/// Keeps one member's Raft log, snapshots, state machine and applied index in a storage engine,
/// following the durability rules: log entries and hard state are synced before a batch's
/// messages are sent; state-machine changes and the applied index are written in one batch.
///
/// The same type serves the server (over RocksDB) and the simulator (over ``MemoryEngine``).
/// Every record goes through a ``ChecksummedEngine``: a record whose checksum fails is reported
/// as a ``StorageError/Kind/corruption`` error, and the member refuses to start from it.
public final class MemberStorage {
    /// The engine everything is written to: a ``ChecksummedEngine`` over the one passed in.
    public let engine: any StorageEngine
    let log: RaftLogStore
    let storeConfiguration: StateStore.Configuration
    /// A deliberately broken storage rule (only ``MemberMutation/writeAppliedIndexApart`` acts
    /// here), used only to prove that the simulator's checker catches it.
    @_spi(Testing) public var mutation: MemberMutation?
    /// Whether ``recover()`` gives the store every value in memory instead of a
    /// ``backendReader`` (for the simulator's member whose disk misdirects writes).
    @_spi(Testing) public var keepsValuesInMemory = false

    /// Opens a member's storage in `engine`, adding checksums to a store written without them.
    ///
    /// - Throws: ``StorageError`` of kind `corruption` if a record read on opening fails its
    ///   checksum or the stored format is unknown; the engine's error otherwise.
    public convenience init(
        engine: any StorageEngine, store: StateStore.Configuration = StateStore.Configuration()
    )
        throws(StorageError)
    {
        try self.init(engine: engine, store: store, mutation: nil)
    }

    /// Opens a member's storage in `engine`, broken on purpose if `mutation` is
    /// ``MemberMutation/acceptDamagedRecords``.
    @_spi(Testing) public init(
        engine: any StorageEngine, store: StateStore.Configuration, mutation: MemberMutation?
    )
        throws(StorageError)
    {
        do {
            let checked = try ChecksummedEngine(wrapping: engine, verifiesChecksums: mutation != .acceptDamagedRecords)
            self.engine = checked
            log = try RaftLogStore(engine: checked)
        } catch {
            throw error.kind == .corruption ? Self.refusal(error) : error
        }
        storeConfiguration = store
        self.mutation = mutation
    }

    /// Reads the state machine's released values back from ``engine`` (checksums verified).
    public var backendReader: any BackendReader { EngineBackendReader(engine: engine) }

    /// Whether nothing was ever stored (a member that has never run).
    public var isEmpty: Bool { log.lastIndex == 0 && log.snapshotIndex == 0 }

    /// Writes the founding log of a new group (one membership entry per voter) to an empty store.
    public func bootstrap(voters: [NodeID]) throws(StorageError) {
        try bootstrap(members: voters.map { ClusterMember(id: $0) })
    }

    /// Writes the founding log of a new group whose membership entries carry each member's
    /// name and peer URLs, so that every member lists them once the entries are applied.
    public func bootstrap(members: [ClusterMember]) throws(StorageError) {
        precondition(isEmpty, "bootstrap on a member that already has a log")
        let state = PersistentState.bootstrap(voters: members.map { ($0.id, $0.encodedAttributes()) })
        try log.append(entries: state.entries, hardState: state.hardState)
    }

    /// Makes this member the only one of its cluster, for the disaster in which the others are
    /// lost for good (etcd's `--force-new-cluster`): log entries after the commit index are
    /// discarded, and a committed removal of every other member is appended, which the member
    /// applies when it starts. It keeps every committed write.
    ///
    /// - Returns: The members removed (none when `id` is the only member already).
    /// - Throws: ``StorageError`` if nothing is stored or `id` is not a voter as of the commit index.
    @discardableResult
    public func forceNewCluster(keeping id: NodeID) throws(StorageError) -> [NodeID] {
        guard !isEmpty else { throw StorageError(.invalidOperation, "there is no stored cluster to force into a new one") }
        let state = try log.load(appliedIndex: try AppliedIndex.read(from: engine))
        let snapshotIndex = state.snapshot?.metadata.index ?? 0
        let commit = max(state.hardState.commit, snapshotIndex)
        var membership = state.snapshot?.metadata.confState ?? ConfState()
        for entry in state.entries where entry.index > snapshotIndex && entry.index <= commit && entry.kind == .confChange {
            if let change = ConfChange(decoding: entry.data) { membership = membership.applying(change) }
        }
        guard membership.voters.contains(id) else {
            throw StorageError(.invalidOperation, "member \(String(id, radix: 16)) is not a voter of the stored cluster")
        }
        let others = membership.members.filter { $0 != id }
        guard !others.isEmpty else { return [] }
        let term = state.hardState.term
        let removals = others.enumerated().map { offset, member in
            LogEntry(
                term: term, index: commit + 1 + UInt64(offset), kind: .confChange,
                data: ConfChange(.removeNode, node: member).encoded())
        }
        try log.append(
            entries: removals, hardState: HardState(term: term, vote: state.hardState.vote, commit: commit + UInt64(others.count)))
        return others
    }

    /// Step 1 of a batch: makes the Ready's snapshot, entries and hard state durable in one
    /// synced write. Call before sending any of the Ready's messages.
    ///
    /// A Ready that needs no sync (``Ready/mustSync``: it only moves the commit index) writes
    /// nothing here: the shell may finish its batch at once, and its hard state goes in the
    /// state write (``StateWrite/hardState``).
    public func persist(_ ready: Ready) throws(StorageError) {
        guard ready.mustSync else { return }
        try log.append(entries: ready.entries, hardState: ready.hardState, snapshot: ready.snapshot, sync: true)
    }

    /// Step 3 of a batch: writes the state machine's changes with the applied index (and the
    /// hard state of a batch that only moved the commit index) in one batch, stores a new
    /// snapshot if the member took one, and trims the log behind it.
    ///
    /// The write is not synced: if it is lost in a crash, the entries are still in the synced
    /// log and are applied again on restart.
    public func write(_ output: BatchOutput) throws(StorageError) {
        var batch = StorageBatch()
        if output.stateWrite.replacesState { batch.deleteRange(from: Self.stateStart, to: Self.stateEnd) }
        for mutation in output.stateWrite.mutations {
            switch mutation {
            case .put(let key, let value): batch.put(key, value)
            case .delete(let key): batch.delete(key)
            }
        }
        if let hardState = output.stateWrite.hardState { batch.put(RaftLogStore.Keys.hardState, hardState.encoded()) }
        if mutation == .writeAppliedIndexApart {
            var applied = StorageBatch()
            AppliedIndex.put(output.stateWrite.appliedIndex, into: &applied)
            try engine.write(applied, sync: false)
        } else {
            AppliedIndex.put(output.stateWrite.appliedIndex, into: &batch)
        }
        if let snapshot = output.snapshot {
            let update = try log.prepareSaveSnapshot(snapshot)
            batch.append(contentsOf: update.batch)
            try engine.write(batch, sync: false)
            log.didWrite(update)
        } else {
            try engine.write(batch, sync: false)
        }
        if let through = output.compactedThrough, through <= log.snapshotIndex {
            try log.compact(through: through, sync: false)
        }
    }

    /// Reads the member back after a restart: the Raft log and hard state, and the state
    /// machine as of its applied index. If the crash came after a received snapshot was stored
    /// but before its state was written, the state is rebuilt from the snapshot here.
    ///
    /// - Throws: ``StorageError`` of kind `corruption` if that snapshot's data does not decode
    ///   or fails its checksum (received snapshots are checked before they are stored, so only a
    ///   damaged disk, or an earlier build that stored unchecked data, leads here) or if any
    ///   record fails its checksum (see ``ChecksummedEngine``), with advice for the operator;
    ///   the engine's or the state machine's error otherwise.
    public func recover() throws -> RecoveredState {
        do {
            return try recoverRecords()
        } catch let error as StorageError where error.kind == .corruption {
            throw Self.refusal(error)
        }
    }

    /// A corruption error with what the operator has to do about it.
    static func refusal(_ error: StorageError) -> StorageError {
        let advice =
            "this member's storage is damaged and it refuses to serve from it: remove it from the cluster "
            + "and add it back with an empty data directory (the other members hold the data)"
        guard !error.message.contains(advice) else { return error }
        return StorageError(error.kind, error.message + "; " + advice, key: error.key)
    }

    private func recoverRecords() throws -> RecoveredState {
        let applied = try AppliedIndex.read(from: engine)
        var raft = try log.load(appliedIndex: applied)
        try Self.checkConsistency(raft)
        if let snapshot = raft.snapshot, snapshot.metadata.index > applied {
            let pairs: [([UInt8], [UInt8])]
            do {
                pairs = try SnapshotCodec.decodeChecksummed(snapshot.data)
            } catch {
                throw StorageError(.corruption, "the stored snapshot at index \(snapshot.metadata.index) is damaged (\(error))")
            }
            var batch = StorageBatch()
            batch.deleteRange(from: Self.stateStart, to: Self.stateEnd)
            for (key, value) in pairs { batch.put(key, value) }
            AppliedIndex.put(snapshot.metadata.index, into: &batch)
            try engine.write(batch, sync: true)
            raft.appliedIndex = snapshot.metadata.index
        }
        // The store keeps only the key index: values stay in the engine and are read back
        // through `backendReader`. The records are scanned a page at a time, so that they are
        // never all in memory at once.
        let pages = PagedStateScan(engine: engine)
        let store: StateStore
        do {
            store = try StateStore(
                restoringFrom: pages, configuration: storeConfiguration, backendReader: keepsValuesInMemory ? nil : backendReader)
        } catch {
            // A scan that failed part way leaves pairs out: its error is the cause.
            if let scanError = pages.error { throw scanError }
            // Records that each pass their checksum but contradict each other (a disk that
            // lost or misdirected a write): the state is damaged.
            throw StorageError(.corruption, "the stored state does not restore: \(error)")
        }
        if let error = pages.error { throw error }
        return RecoveredState(raft: raft, store: store)
    }

    /// Checks what the hard state and the log always agree on, since a member writes them in one
    /// synced batch: the commit index is in the log, and no entry is newer than the term. A
    /// disk that lost or misdirected a write can break either; every record may still pass its
    /// checksum.
    static func checkConsistency(_ raft: PersistentState) throws(StorageError) {
        let snapshot = raft.snapshot?.metadata
        let lastIndex = raft.entries.last?.index ?? snapshot?.index ?? 0
        let lastTerm = raft.entries.last?.term ?? snapshot?.term ?? 0
        guard raft.hardState.commit <= lastIndex else {
            throw StorageError(
                .corruption, "the commit index \(raft.hardState.commit) is beyond the last stored entry \(lastIndex): entries were lost",
                key: RaftLogStore.Keys.hardState)
        }
        guard lastTerm <= raft.hardState.term else {
            throw StorageError(
                .corruption,
                "the last stored entry's term \(lastTerm) is newer than the stored term \(raft.hardState.term): the hard state was lost",
                key: RaftLogStore.Keys.hardState)
        }
    }

    /// The state machine owns the keys from `k/` through `m/…` (key versions, leases, metadata).
    public static let stateStart: [UInt8] = Array("k/".utf8)
    /// The first key after the state machine's keys (exclusive end of ``stateStart``'s range).
    public static let stateEnd: [UInt8] = Array("m0".utf8)
}

/// A ``BackendReader`` over a member's storage engine.
///
/// The engine is used from the member's own thread only (the server's member loop, the
/// simulator), which is where the store reads through it, hence `@unchecked Sendable`.
struct EngineBackendReader: BackendReader, @unchecked Sendable {
    let engine: any StorageEngine

    func value(forKey key: [UInt8]) throws -> [UInt8]? {
        try engine.get(key)
    }
}

/// The state machine's records in key order, scanned from an engine a page at a time. A scan
/// error ends the sequence early and is kept in ``error``, which the caller must check.
final class PagedStateScan: Sequence {
    let engine: any StorageEngine
    private(set) var error: StorageError?
    static let pageSize = 1024

    init(engine: any StorageEngine) {
        self.engine = engine
    }

    func makeIterator() -> AnyIterator<([UInt8], [UInt8])> {
        var page: [StorageRecord] = []
        var offset = 0
        var next: [UInt8]? = MemberStorage.stateStart
        return AnyIterator { [self] in
            if offset == page.count {
                guard let start = next else { return nil }
                do throws(StorageError) {
                    page = try engine.scan(from: start, to: MemberStorage.stateEnd, limit: Self.pageSize)
                } catch {
                    self.error = error
                    return nil
                }
                offset = 0
                next = page.count == Self.pageSize ? page[page.count - 1].key + [0] : nil
                if page.isEmpty { return nil }
            }
            defer { offset += 1 }
            return (page[offset].key, page[offset].value)
        }
    }
}
