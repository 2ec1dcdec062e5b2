/// A batch of work the shell must carry out, returned by ``RaftNode/ready()``.
///
/// The contract, in order. Between ``RaftNode/ready()`` and ``RaftNode/advance(_:)`` the shell
/// may keep feeding the node ticks, messages and proposals (so that heartbeats, votes and reads
/// keep flowing while a slow fsync runs), and send what ``RaftNode/takeImmediateMessages()``
/// returns; it must not call ``RaftNode/ready()`` again or ``RaftNode/compact(with:retainingEntries:)``
/// until it has advanced:
/// 1. Make `snapshot`, `entries` and `hardState` durable (fsync, when `mustSync`), atomically if
///    storage allows. Writing entry *i* discards every previously stored entry at index *i* or
///    above.
/// 2. Only then send `messages`. (A vote or an acknowledgement therefore never leaves a member
///    before the state it promises is on disk.) `leaderMessages` may be sent at any time, best
///    before step 1 so that followers write in parallel with the leader.
/// 3. Apply `snapshot` (if any) and then `committedEntries` to the state machine, writing each
///    entry's changes and the applied index in one atomic batch. Serve `readStates` once the
///    applied index reaches their index.
/// 4. Call ``RaftNode/advance(_:)`` with this value.
public struct Ready: Sendable {
    /// The hard state to persist, when it changed.
    public var hardState: HardState?
    /// Entries to append to durable storage (possibly overwriting a conflicting tail).
    public var entries: [LogEntry] = []
    /// A snapshot received from the leader, to persist and install.
    public var snapshot: Snapshot?
    /// Messages to send once the above is durable.
    public var messages: [RaftMessage] = []
    /// A leader's appends and heartbeats, which may leave before the above is durable.
    ///
    /// The Raft thesis (§10.2.1) lets a leader write its log in parallel with replicating it:
    /// it counts its own log toward a commit only up to what it has made durable, and its term
    /// and vote were made durable in an earlier batch (only batches that change neither get
    /// leader messages). Sending them first takes one fsync off every write's critical path.
    public var leaderMessages: [RaftMessage] = []
    /// Committed entries to apply, in index order.
    public var committedEntries: [LogEntry] = []
    /// Linearizable reads confirmed by the leader.
    public var readStates: [ReadState] = []
    /// The new leader and role, when either changed.
    public var softState: SoftState?
    /// Whether step 1 must be synced: there are entries or a snapshot to store, or the term or
    /// the vote changed. A hard state that only moves the commit index may be written without
    /// an fsync (etcd-raft's `MustSync`): the commit index is volatile state in Raft, so a crash
    /// that loses it only makes the member learn it again from its leader; storage that keeps
    /// writes in order (one write-ahead log) makes it durable with the next synced write, and
    /// never keeps a later applied index without it. True unless ``RaftNode/ready()`` found
    /// the batch needs no fsync.
    public var mustSync = true

    /// Whether there is nothing to do.
    public var isEmpty: Bool {
        hardState == nil && entries.isEmpty && snapshot == nil && messages.isEmpty && leaderMessages.isEmpty
            && committedEntries.isEmpty
            && readStates.isEmpty && softState == nil
    }
}

/// What a member finds in durable storage when it starts.
public struct PersistentState: Sendable {
    /// The last persisted hard state.
    public var hardState: HardState
    /// The last persisted snapshot, if any.
    public var snapshot: Snapshot?
    /// The persisted entries after the snapshot, contiguous and ascending.
    public var entries: [LogEntry]
    /// The index the state machine has applied (persisted with the state machine's data).
    public var appliedIndex: LogIndex

    /// Creates the state read back from storage.
    public init(hardState: HardState = HardState(), snapshot: Snapshot? = nil, entries: [LogEntry] = [], appliedIndex: LogIndex = 0) {
        self.hardState = hardState
        self.snapshot = snapshot
        self.entries = entries
        self.appliedIndex = appliedIndex
    }

    /// The state of a member of a brand-new group: the same membership entries, one per voter
    /// (term 1, committed), on every founding member, as etcd bootstraps a cluster.
    public static func bootstrap(voters: [NodeID]) -> PersistentState {
        bootstrap(voters: voters.map { ($0, []) })
    }

    /// The founding state of a new group whose membership entries carry application context
    /// (for example each member's name and addresses), in ascending node order.
    public static func bootstrap(voters: [(id: NodeID, context: [UInt8])]) -> PersistentState {
        let entries = voters.sorted { $0.id < $1.id }.enumerated().map { offset, voter in
            LogEntry(
                term: 1, index: LogIndex(offset + 1), kind: .confChange,
                data: ConfChange(.addVoter, node: voter.id, context: voter.context).encoded())
        }
        return PersistentState(hardState: HardState(term: 1, vote: noNode, commit: LogIndex(entries.count)), entries: entries)
    }
}

extension ConfState {
    /// Returns the membership after `change`; an invalid change leaves it as it is.
    public func applying(_ change: ConfChange) -> ConfState {
        var voters = self.voters
        var learners = self.learners
        switch change.kind {
        case .addVoter:
            learners.removeAll { $0 == change.node }
            if !voters.contains(change.node) { voters.append(change.node) }
        case .addLearner:
            if !voters.contains(change.node) && !learners.contains(change.node) { learners.append(change.node) }
        case .removeNode:
            voters.removeAll { $0 == change.node }
            learners.removeAll { $0 == change.node }
        }
        return ConfState(voters: voters, learners: learners)
    }
}
