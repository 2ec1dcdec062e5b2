import Primitives

/// One member of a Raft group, as a deterministic state machine with no I/O.
///
/// Inputs are ``tick()``, ``step(_:)`` (a message from a peer), ``propose(_:)``,
/// ``proposeConfChange(_:)``, ``readIndex(context:)`` and ``transferLeadership(to:)``.
/// Output is collected in a ``Ready`` batch that the shell takes with ``ready()``, carries out
/// (persist, send, apply — see ``Ready``), and acknowledges with ``advance(_:)``. The node reads no
/// clock, starts no task and draws randomness only from a generator seeded by ``RaftSettings``,
/// so the same inputs always give the same outputs.
///
/// Features: leader election with randomized timeouts, PreVote, CheckQuorum, log replication with
/// probe/replicate/snapshot flow control and fast back-off, commitment only of current-term
/// entries (Raft §5.4.2), ReadIndex reads confirmed by a quorum heartbeat round, log compaction
/// with chunked snapshot transfer, single-member membership changes with learners (taking effect
/// when applied, one at a time, only after the leader applied an entry of its term), and leader
/// transfer via TimeoutNow.
public struct RaftNode: Sendable {
    /// The settings the node was created with.
    public let settings: RaftSettings
    /// The current term.
    public private(set) var term: Term
    /// The member voted for in the current term, or ``noNode``.
    public private(set) var vote: NodeID
    /// The current leader as far as this member knows, or ``noNode``.
    public private(set) var leader: NodeID = noNode
    /// This member's role.
    public private(set) var role: RaftRole = .follower
    /// The membership as of the applied index.
    public private(set) var confState: ConfState
    /// The latest snapshot, which this member sends to followers that are too far behind.
    public private(set) var latestSnapshot: Snapshot?

    var log: RaftLog
    var progress: [NodeID: Progress] = [:]
    var votes: [NodeID: Bool] = [:]
    var messages: [RaftMessage] = []
    var readStates: [ReadState] = []
    var rng: SeededGenerator
    var electionElapsed = 0
    var heartbeatElapsed = 0
    var randomizedElectionTimeout = 0
    var leadTransferee: NodeID = noNode
    var pendingConfIndex: LogIndex = 0
    var uncommittedBytes = 0
    var broadcastPending = false

    // ReadIndex bookkeeping (leader only). Each read waits for a heartbeat round sent after it
    // arrived; rounds are numbered per leadership, so a delayed or duplicated answer can only
    // confirm reads that were registered before the heartbeat it answers was sent.
    struct PendingRead: Sendable {
        var context: UInt64
        var from: NodeID
        var index: LogIndex
        var round: UInt64
    }
    var readRound: UInt64 = 0
    var readRoundPending = false
    var pendingReads: [PendingRead] = []
    var deferredReads: [PendingRead] = []
    var ackedReadRound: [NodeID: UInt64] = [:]

    // Snapshot transfer, follower side.
    var incomingSnapshot: Snapshot?
    var unstableSnapshot: Snapshot?

    // Ready bookkeeping.
    var lastHardState: HardState
    var lastSoftState = SoftState(leader: noNode, role: .follower)
    var awaitingAdvance = false
    /// The term and vote as the shell last made them durable (set by ``advance(_:)``): while a
    /// ``Ready`` is in flight, a term or vote changed since is not durable yet.
    var durableTerm: Term
    var durableVote: NodeID
    /// A snapshot received whole, with its sender and the term it was received in: the next
    /// ``ready()`` installs it, so that a batch in flight applies and stores what it holds
    /// before the log is replaced, and the applied index never runs ahead of the state machine.
    var snapshotAwaitingBatch: (snapshot: Snapshot, from: NodeID, term: Term)?

    /// Marks a vote request made for a leader transfer, which voters grant despite a live leader.
    static let transferContext: UInt64 = 1

    /// Creates a member from what it finds in durable storage.
    /// - Precondition: `settings.validationError()` is nil.
    public init(settings: RaftSettings, state: PersistentState) {
        if let problem = settings.validationError() { preconditionFailure("invalid RaftSettings: \(problem)") }
        self.settings = settings
        let snapshotIndex = state.snapshot?.metadata.index ?? 0
        let entries = state.entries.filter { $0.index > snapshotIndex }
        let lastIndex = snapshotIndex + UInt64(entries.count)
        let applied = min(max(state.appliedIndex, snapshotIndex), lastIndex)
        log = RaftLog(
            snapshot: state.snapshot?.metadata, entries: entries,
            committed: max(state.hardState.commit, applied), applied: applied)
        latestSnapshot = state.snapshot
        var conf = state.snapshot?.metadata.confState ?? ConfState()
        if applied > snapshotIndex {
            for entry in log.entries(from: snapshotIndex + 1, through: applied, maxBytes: .max) where entry.kind == .confChange {
                if let change = ConfChange(decoding: entry.data) { conf = conf.applying(change) }
            }
        }
        confState = conf
        term = state.hardState.term
        vote = state.hardState.vote
        lastHardState = state.hardState
        durableTerm = state.hardState.term
        durableVote = state.hardState.vote
        rng = SeededGenerator(seed: settings.randomSeed)
        resetRandomizedElectionTimeout()
    }

    /// This member's identifier.
    public var id: NodeID { settings.id }
    /// The highest index known to be committed.
    public var commitIndex: LogIndex { log.committed }
    /// The highest index handed out for applying.
    public var appliedIndex: LogIndex { log.applied }
    /// The index of the last entry in the log.
    public var lastIndex: LogIndex { log.lastIndex }
    /// The index of the first entry still held (entries before it were compacted).
    public var firstIndex: LogIndex { log.firstIndex }
    /// The highest index known to be durable on this member.
    public var stableIndex: LogIndex { log.stableIndex }
    /// The hard state as it stands (not necessarily persisted yet).
    public var hardState: HardState { HardState(term: term, vote: vote, commit: log.committed) }
    /// Whether a leadership transfer is under way.
    public var isTransferringLeadership: Bool { leadTransferee != noNode }

    /// The term of the entry at `index`, or nil if it was compacted away or does not exist.
    public func term(at index: LogIndex) -> Term? { log.term(at: index) }
    /// The entry at `index`, or nil if it was compacted away or does not exist.
    public func entry(at index: LogIndex) -> LogEntry? { log.entry(at: index) }
    /// For a leader: the highest index known to match on `member`.
    public func matchIndex(of member: NodeID) -> LogIndex? {
        member == id ? log.stableIndex : progress[member]?.match
    }

    /// The metadata for a snapshot of the state machine at the applied index.
    public var appliedSnapshotMetadata: SnapshotMetadata {
        SnapshotMetadata(index: log.applied, term: log.term(at: log.applied) ?? 0, confState: confState)
    }

    // MARK: - Inputs

    /// Advances logical time by one tick (the shell's heartbeat interval).
    public mutating func tick() {
        if role == .leader {
            tickLeader()
        } else {
            electionElapsed += 1
            if isPromotable && electionElapsed >= randomizedElectionTimeout {
                electionElapsed = 0
                campaign(settings.preVote ? .preElection : .election)
            }
        }
    }

    /// Starts an election now (with a pre-vote first when PreVote is on).
    public mutating func campaign() {
        guard isPromotable, role != .leader else { return }
        campaign(settings.preVote ? .preElection : .election)
    }

    /// Tells the node that the connection on which `peer` sent to it has closed (the peer's
    /// process exited or its host reset the connection). A follower that loses its leader this
    /// way forgets it and starts a pre-vote at once, instead of waiting an election timeout.
    ///
    /// This is safe and cannot disrupt a healthy cluster: only with PreVote and CheckQuorum on
    /// (otherwise it does nothing), the pre-vote changes no term, and it succeeds only if a
    /// quorum grants it, which voters that still hear from the leader (and the leader itself)
    /// refuse. A flapping link thus costs at most a failed pre-vote: the leader's next heartbeat
    /// makes the member follow it again in the same term.
    public mutating func peerConnectionLost(_ peer: NodeID) {
        guard settings.preVote, settings.checkQuorum, role == .follower, peer == leader, peer != noNode, isPromotable else {
            return
        }
        campaign(.preElection)
    }

    /// Whether a proposal forwarded by this member in term `term` can never commit: proposals
    /// are forwarded tagged with the term, leaders of other terms drop them, and once an entry of
    /// a later term is applied every entry of `term` that will ever commit has been applied
    /// (terms only grow along a log). The shell may then propose it again without risking a
    /// double apply.
    public func forwardedProposalIsLost(term proposalTerm: Term) -> Bool {
        (log.term(at: log.applied) ?? 0) > proposalTerm
    }

    /// Proposes application data for the log.
    /// - Returns: where the entry was placed, or nil when it was forwarded to the leader.
    /// - Throws: ``ProposalError`` when the proposal cannot be accepted here.
    @discardableResult
    public mutating func propose(_ data: [UInt8]) throws(ProposalError) -> LogPosition? {
        guard role == .leader else {
            guard settings.forwardProposals, leader != noNode else { throw .notLeader(leader: leader) }
            // The message names the term whose leader it is for (in `logTerm`): a leader of any
            // other term drops it, so the entry can only ever be appended in this term (see
            // ``forwardedProposalIsLost(term:)``).
            send(
                RaftMessage(
                    kind: .propose, from: id, to: leader, term: 0, logTerm: term, entries: [LogEntry(term: 0, index: 0, data: data)]))
            return nil
        }
        return try appendProposal(data, kind: .normal)
    }

    /// Proposes a membership change. Only the leader accepts one, and only when the previous
    /// change and an entry of its own term have been applied.
    public mutating func proposeConfChange(_ change: ConfChange) throws(ProposalError) -> LogPosition {
        guard role == .leader else { throw .notLeader(leader: leader) }
        guard pendingConfIndex <= log.applied || settings.mutation == .concurrentConfChanges else { throw .confChangePending }
        switch change.kind {
        case .addVoter where confState.voters.contains(change.node):
            throw .invalidConfChange("\(change.node) is already a voter")
        case .addLearner where confState.contains(change.node):
            throw .invalidConfChange("\(change.node) is already a member")
        case .removeNode where !confState.contains(change.node):
            throw .invalidConfChange("\(change.node) is not a member")
        case .removeNode where confState.voters == [change.node]:
            throw .invalidConfChange("cannot remove the last voter")
        case .addVoter, .addLearner, .removeNode:
            break
        }
        if change.node == noNode { throw .invalidConfChange("member id must not be 0") }
        let position = try appendProposal(change.encoded(), kind: .confChange)
        pendingConfIndex = position.index
        return position
    }

    /// Asks for a linearizable read. When leadership is confirmed, a ``ReadState`` with this
    /// context appears in a later ``Ready``; serve the read once the applied index reaches it.
    /// - Throws: ``ProposalError/notLeader(leader:)`` when no leader is known.
    public mutating func readIndex(context: UInt64) throws(ProposalError) {
        if role == .leader {
            handleReadRequest(context: context, from: id)
        } else if leader != noNode {
            send(RaftMessage(kind: .readIndex, from: id, to: leader, term: 0, context: context))
        } else {
            throw .notLeader(leader: noNode)
        }
    }

    /// Hands leadership to `target`: the leader brings it up to date, then tells it to campaign.
    /// On a follower the request is forwarded to the leader. Proposals are refused meanwhile;
    /// the transfer is abandoned after an election timeout.
    public mutating func transferLeadership(to target: NodeID) {
        guard role == .leader else {
            if leader != noNode && leader != target {
                send(RaftMessage(kind: .transferLeader, from: id, to: leader, term: 0, context: target))
            }
            return
        }
        guard target != id, confState.voters.contains(target), leadTransferee != target else { return }
        leadTransferee = target
        electionElapsed = 0
        if progress[target]?.match == log.lastIndex {
            send(RaftMessage(kind: .timeoutNow, from: id, to: target, term: term))
        } else {
            sendAppend(to: target)
        }
    }

    /// Whether a follower needs a snapshot and the latest one has no data: the owner of the state
    /// should call ``provideSnapshot(_:)``. Snapshots taken only to compact the log may leave out
    /// their data (the state is durable beside the log); it is produced when a follower needs it.
    public private(set) var needsSnapshotData = false

    /// Gives the node a snapshot with data, at or after the latest one and at most at the applied
    /// index, to send to followers whose entries were compacted away. Nothing is compacted.
    public mutating func provideSnapshot(_ snapshot: Snapshot) {
        let index = snapshot.metadata.index
        precondition(index <= log.applied, "snapshot at \(index) is beyond the applied index \(log.applied)")
        precondition(index >= (latestSnapshot?.metadata.index ?? 0), "snapshot at \(index) is older than the latest one")
        latestSnapshot = snapshot
        needsSnapshotData = false
        if role == .leader { broadcastPending = true }
    }

    /// Records that the shell has made `snapshot` durable; drops log entries it covers, keeping
    /// `retainingEntries` entries before it so slightly lagging followers need no snapshot.
    /// `snapshot.data` may be empty when the state it describes is durable elsewhere (see
    /// ``needsSnapshotData``).
    public mutating func compact(with snapshot: Snapshot, retainingEntries: UInt64 = 0) {
        precondition(!awaitingAdvance, "compact() between ready() and advance()")
        let index = snapshot.metadata.index
        precondition(index <= log.applied, "snapshot at \(index) is beyond the applied index \(log.applied)")
        guard index > (latestSnapshot?.metadata.index ?? 0) else { return }
        latestSnapshot = snapshot
        if index > retainingEntries { log.compact(through: index - retainingEntries) }
    }

    /// Whether `member` belongs to the group as far as this node knows: a voter or learner of
    /// the applied membership, or a member that a membership change already in the log but not
    /// yet applied adds (a member just added talks before its addition is applied everywhere).
    ///
    /// A shell uses this to refuse messages whose sender is not a member. The log is scanned only
    /// when `member` is not in the applied membership.
    public func recognizes(_ member: NodeID) -> Bool {
        guard member != noNode else { return false }
        if confState.contains(member) { return true }
        guard log.lastIndex > log.applied else { return false }
        for entry in log.entries(from: log.applied + 1, through: log.lastIndex, maxBytes: .max) where entry.kind == .confChange {
            if let change = ConfChange(decoding: entry.data), change.node == member, change.kind != .removeNode { return true }
        }
        return false
    }

    /// Processes a message from a peer.
    public mutating func step(_ message: RaftMessage) {
        step(message, acceptingSnapshot: { _ in true })
    }

    /// Processes a message from a peer; a snapshot received whole is installed only if `accepts`
    /// returns true for it.
    ///
    /// A refused snapshot changes nothing: the log, the hard state and the state machine stay as
    /// they were, the partial transfer is dropped, and the leader is told to send it again from
    /// the start. The shell checks the snapshot's data here, before anything is persisted, so that
    /// data it could not install is never stored.
    public mutating func step(_ message: RaftMessage, acceptingSnapshot accepts: (Snapshot) -> Bool) {
        guard message.to == id, message.hasConsistentEntries else { return }
        let forwarded = message.kind == .propose || message.kind == .readIndex || message.kind == .transferLeader
        if !forwarded {
            if message.term > term {
                if message.kind == .requestVote || message.kind == .requestPreVote {
                    let inLease = settings.checkQuorum && leader != noNode && electionElapsed < settings.electionTicks
                    if inLease && message.context != Self.transferContext { return }
                }
                switch message.kind {
                case .requestPreVote:
                    break
                case .preVoteResponse where !message.reject:
                    break
                case .appendEntries, .heartbeat, .installSnapshot:
                    becomeFollower(term: message.term, leader: message.from)
                default:
                    becomeFollower(term: message.term, leader: noNode)
                }
            } else if message.term < term {
                if settings.mutation == .acceptStaleTermAppend && (message.kind == .appendEntries || message.kind == .heartbeat)
                    && role == .follower
                    && !message.entries.contains(where: { $0.index <= log.committed && !log.matchTerm($0.index, $0.term) })
                {
                    stepFollower(message, acceptingSnapshot: accepts)
                    return
                }
                if (settings.checkQuorum || settings.preVote) && (message.kind == .heartbeat || message.kind == .appendEntries) {
                    // Tell a stale leader about the newer term so it steps down.
                    send(RaftMessage(kind: .appendResponse, from: id, to: message.from, term: term))
                } else if message.kind == .requestPreVote {
                    send(RaftMessage(kind: .preVoteResponse, from: id, to: message.from, term: term, reject: true))
                }
                return
            }
        }
        switch message.kind {
        case .requestVote, .requestPreVote:
            handleVoteRequest(message)
        default:
            switch role {
            case .leader: stepLeader(message)
            case .candidate, .preCandidate: stepCandidate(message, acceptingSnapshot: accepts)
            case .follower: stepFollower(message, acceptingSnapshot: accepts)
            }
        }
    }

    // MARK: - Ready / advance

    /// Whether ``ready()`` would return work.
    public var hasReady: Bool {
        (role == .leader && (broadcastPending || readRoundPending)) || reportedHardState != lastHardState
            || !log.unstableEntries.isEmpty || unstableSnapshot != nil || !messages.isEmpty
            || log.applied < log.committed || !readStates.isEmpty
            || SoftState(leader: leader, role: role) != lastSoftState || snapshotAwaitingBatch != nil
    }

    /// Returns the work accumulated since the last call. Carry it out as ``Ready`` describes,
    /// then call ``advance(_:)`` before calling `ready()` again (inputs may be fed meanwhile).
    public mutating func ready() -> Ready {
        precondition(!awaitingAdvance, "ready() called twice without advance()")
        if let (snapshot, from, receivedTerm) = snapshotAwaitingBatch {
            snapshotAwaitingBatch = nil
            // Only by the follower that received it, in the same term, and only if it is still
            // ahead of the commit index; otherwise the leader sends it again if it must.
            if role == .follower && term == receivedTerm && snapshot.metadata.index > log.committed {
                install(snapshot, from: from)
            }
        }
        if role == .leader {
            if broadcastPending {
                broadcastPending = false
                broadcastAppend()
            }
            if readRoundPending { broadcastHeartbeat() }
        }
        var ready = Ready()
        let hardState = reportedHardState
        // A leader whose term and vote are already durable may send appends and heartbeats
        // before this batch is (see Ready.leaderMessages).
        let mayLeadBeforePersisting = role == .leader && hardState.term == lastHardState.term && hardState.vote == lastHardState.vote
        let termOrVoteChanged = hardState.term != lastHardState.term || hardState.vote != lastHardState.vote
        if hardState != lastHardState {
            ready.hardState = hardState
            lastHardState = hardState
        }
        ready.entries = Array(log.unstableEntries)
        ready.snapshot = unstableSnapshot
        ready.mustSync = termOrVoteChanged || !ready.entries.isEmpty || ready.snapshot != nil
        if log.applied < log.committed {
            ready.committedEntries = log.entries(from: log.applied + 1, through: log.committed, maxBytes: .max)
        }
        if mayLeadBeforePersisting {
            for message in messages {
                if message.term == term && (message.kind == .appendEntries || message.kind == .heartbeat) {
                    ready.leaderMessages.append(message)
                } else {
                    ready.messages.append(message)
                }
            }
        } else {
            ready.messages = messages
        }
        messages = []
        ready.readStates = readStates
        readStates = []
        let softState = SoftState(leader: leader, role: role)
        if softState != lastSoftState {
            ready.softState = softState
            lastSoftState = softState
        }
        awaitingAdvance = true
        return ready
    }

    /// Acknowledges that `ready` was carried out: its entries and snapshot are durable and its
    /// committed entries applied. Membership changes among them take effect now.
    public mutating func advance(_ ready: Ready) {
        precondition(awaitingAdvance, "advance() without ready()")
        awaitingAdvance = false
        if let snapshot = ready.snapshot {
            latestSnapshot = snapshot
            if unstableSnapshot?.metadata == snapshot.metadata { unstableSnapshot = nil }
            confState = snapshot.metadata.confState
            resetProgress()
        }
        if let last = ready.entries.last { log.stable(to: last.index, term: last.term) }
        for entry in ready.committedEntries where entry.index > log.applied {
            log.applied = entry.index
            if entry.kind == .confChange, let change = ConfChange(decoding: entry.data) { applyConfChange(change) }
        }
        if let hardState = ready.hardState {
            durableTerm = hardState.term
            durableVote = hardState.vote
        }
        if role == .leader && maybeCommit() { broadcastPending = true }
    }

    /// Takes the entries that became committed while the last ``Ready`` was in flight and that
    /// are stored here (a leader's own log counts toward a commit only once it is stored, so for
    /// a leader the commit often advances in ``advance(_:)`` itself), and marks them applied:
    /// the caller applies them at once, in order, as if they had been the Ready's last
    /// `committedEntries`. This saves a whole batch per write. Membership changes among them
    /// take effect now. Call only after ``advance(_:)``, before the next ``ready()``.
    public mutating func takeCommittedEntries() -> [LogEntry] {
        precondition(!awaitingAdvance, "takeCommittedEntries() between ready() and advance()")
        let through = min(log.committed, log.stableIndex)
        guard log.applied < through else { return [] }
        let entries = log.entries(from: log.applied + 1, through: through, maxBytes: .max)
        for entry in entries {
            log.applied = entry.index
            if entry.kind == .confChange, let change = ConfChange(decoding: entry.data) { applyConfChange(change) }
        }
        if role == .leader && maybeCommit() { broadcastPending = true }
        return entries
    }

    /// Takes the messages that may leave while a ``Ready`` is still being made durable: a
    /// leader's appends, heartbeats, snapshot chunks and read answers when its term and vote are
    /// durable (as ``Ready/leaderMessages``), heartbeat answers (they promise nothing stored),
    /// and requests forwarded to the leader. Appends for proposals made meanwhile go out here
    /// too, so that followers store them while this member syncs.
    ///
    /// Everything else (acknowledgements of entries, votes, anything sent after a term change)
    /// stays for the next ``ready()``, whose `messages` leave only once that batch, and so
    /// everything before it, is durable. A shell that carries out one ``Ready`` at a time calls
    /// this after feeding the node input between ``ready()`` and ``advance(_:)``; calling it at
    /// any other time is allowed too.
    public mutating func takeImmediateMessages() -> [RaftMessage] {
        let leadsDurably = role == .leader && term == durableTerm && vote == durableVote
        if leadsDurably {
            if broadcastPending {
                broadcastPending = false
                broadcastAppend()
            }
            if readRoundPending { broadcastHeartbeat() }
        }
        let term = term
        let acknowledgesEarly = settings.mutation == .acknowledgeBeforeStoring
        func leaves(_ message: RaftMessage) -> Bool {
            switch message.kind {
            case .appendEntries, .heartbeat, .installSnapshot, .readIndexResponse: leadsDurably && message.term == term
            case .heartbeatResponse, .propose, .readIndex, .transferLeader: true
            case .appendResponse, .voteResponse: acknowledgesEarly
            default: false
            }
        }
        // Called after every input: most calls find nothing to send (a follower's
        // acknowledgements waiting for its batch) or everything (a leader's appends), and
        // neither copies a message.
        guard let first = messages.firstIndex(where: leaves) else { return [] }
        if first == messages.startIndex && messages.allSatisfy(leaves) {
            defer { messages = [] }
            return messages
        }
        var immediate: [RaftMessage] = []
        var deferred: [RaftMessage] = []
        for message in messages {
            if leaves(message) { immediate.append(message) } else { deferred.append(message) }
        }
        messages = deferred
        return immediate
    }

    private var reportedHardState: HardState {
        HardState(
            term: settings.mutation == .forgetTermOnRestart ? log.lastTerm : term,
            vote: settings.mutation == .forgetVoteOnRestart ? noNode : vote, commit: log.committed)
    }

    // MARK: - Roles

    enum CampaignKind { case preElection, election, transfer }

    var isPromotable: Bool { confState.voters.contains(id) }

    private mutating func resetRandomizedElectionTimeout() {
        randomizedElectionTimeout = settings.electionTicks + Int(rng.next(below: UInt64(settings.electionTicks)))
    }

    private mutating func reset(term newTerm: Term) {
        if newTerm != term {
            term = newTerm
            vote = noNode
        }
        leader = noNode
        electionElapsed = 0
        heartbeatElapsed = 0
        resetRandomizedElectionTimeout()
        leadTransferee = noNode
        votes = [:]
        pendingReads = []
        deferredReads = []
        readRoundPending = false
        ackedReadRound = [:]
        uncommittedBytes = 0
        broadcastPending = false
        resetProgress()
    }

    private mutating func resetProgress() {
        progress = [:]
        for member in confState.members where member != id {
            progress[member] = Progress(next: log.lastIndex + 1, isLearner: confState.learners.contains(member))
        }
    }

    private mutating func becomeFollower(term newTerm: Term, leader newLeader: NodeID) {
        reset(term: newTerm)
        leader = newLeader
        role = .follower
    }

    private mutating func becomeLeader() {
        precondition(role == .candidate, "only a candidate can become leader")
        reset(term: term)
        role = .leader
        leader = id
        for member in progress.keys { progress[member]!.recentActive = true }
        log.append([LogEntry(term: term, index: log.lastIndex + 1)])
        pendingConfIndex = log.lastIndex
        broadcastPending = true
    }

    private mutating func campaign(_ kind: CampaignKind) {
        let voteTerm: Term
        let requestKind: RaftMessage.Kind
        if kind == .preElection {
            // Becoming a pre-candidate forgets the leader (so that, with CheckQuorum, this member
            // grants others' pre-votes too) but changes neither term nor vote.
            votes = [:]
            leader = noNode
            if settings.mutation == .preVoteBumpsTerm {
                term += 1
                vote = noNode
            }
            role = .preCandidate
            voteTerm = term + 1
            requestKind = .requestPreVote
        } else {
            reset(term: term + 1)
            vote = id
            role = .candidate
            voteTerm = term
            requestKind = .requestVote
        }
        votes[id] = true
        if tallyVotes() == .won {
            kind == .preElection ? campaign(.election) : becomeLeader()
            return
        }
        for voter in confState.voters where voter != id {
            send(
                RaftMessage(
                    kind: requestKind, from: id, to: voter, term: voteTerm, logTerm: log.lastTerm, index: log.lastIndex,
                    context: kind == .transfer ? Self.transferContext : 0))
        }
    }

    enum VoteResult { case won, lost, pending }

    private func tallyVotes() -> VoteResult {
        var granted = 0
        var rejected = 0
        for voter in confState.voters {
            switch votes[voter] {
            case true?: granted += 1
            case false?: rejected += 1
            case nil: break
            }
        }
        if granted >= confState.quorum { return .won }
        if rejected > confState.voters.count - confState.quorum { return .lost }
        return .pending
    }

    private mutating func handleVoteRequest(_ message: RaftMessage) {
        let isPreVote = message.kind == .requestPreVote
        let canVote =
            vote == message.from || (vote == noNode && leader == noNode) || (isPreVote && message.term > term)
        let responseKind: RaftMessage.Kind = isPreVote ? .preVoteResponse : .voteResponse
        let upToDate = settings.mutation == .voteForStaleLog || log.isUpToDate(index: message.index, term: message.logTerm)
        if canVote && upToDate {
            // A granted pre-vote carries the term it was asked for, so the pre-candidate counts it.
            send(RaftMessage(kind: responseKind, from: id, to: message.from, term: isPreVote ? message.term : term))
            if isPreVote && role == .preCandidate && outranks(message) {
                // Two members that lost the leader at the same moment would each win the other's
                // pre-vote and split the real vote; the one with the shorter log (or, at equal
                // logs, the lower ID) gives way. Stopping a campaign only delays this member.
                becomeFollower(term: term, leader: noNode)
            }
            if !isPreVote {
                electionElapsed = 0
                vote = message.from
            }
        } else {
            send(RaftMessage(kind: responseKind, from: id, to: message.from, term: term, reject: true))
            if isPreVote && role == .preCandidate && votes[message.from] == nil {
                // The requester has lost the leader too, so it may have ignored this member's
                // pre-vote while it still counted on its leader's lease; it answers now. Without
                // this, two members that each refuse the other (one for its lease, the other for
                // a shorter log) both wait an election timeout.
                send(
                    RaftMessage(
                        kind: .requestPreVote, from: id, to: message.from, term: term + 1, logTerm: log.lastTerm,
                        index: log.lastIndex))
            }
        }
    }

    /// Whether the pre-candidate that sent `request` ranks above this one: a longer log, or an
    /// equal log and a higher ID.
    private func outranks(_ request: RaftMessage) -> Bool {
        if request.logTerm != log.lastTerm { return request.logTerm > log.lastTerm }
        if request.index != log.lastIndex { return request.index > log.lastIndex }
        return request.from > id
    }

    // MARK: - Leader

    private mutating func tickLeader() {
        heartbeatElapsed += 1
        electionElapsed += 1
        if electionElapsed >= settings.electionTicks {
            electionElapsed = 0
            if settings.checkQuorum && !checkQuorumActive() && settings.mutation != .ignoreCheckQuorum {
                becomeFollower(term: term, leader: noNode)
                return
            }
            leadTransferee = noNode
        }
        if heartbeatElapsed >= settings.heartbeatTicks {
            heartbeatElapsed = 0
            broadcastHeartbeat()
        }
    }

    /// Whether a quorum of voters was heard from since the last check; starts a new window.
    private mutating func checkQuorumActive() -> Bool {
        var active = 0
        for voter in confState.voters {
            if voter == id || progress[voter]?.recentActive == true { active += 1 }
        }
        for member in progress.keys { progress[member]!.recentActive = false }
        return active >= confState.quorum
    }

    private mutating func appendProposal(_ data: [UInt8], kind: LogEntry.Kind) throws(ProposalError) -> LogPosition {
        guard leadTransferee == noNode else { throw .transferInProgress }
        guard uncommittedBytes == 0 || uncommittedBytes + data.count <= settings.maxUncommittedBytes else {
            throw .tooManyUncommittedBytes
        }
        let entry = LogEntry(term: term, index: log.lastIndex + 1, kind: kind, data: data)
        log.append([entry])
        uncommittedBytes += data.count
        broadcastPending = true
        return LogPosition(term: term, index: entry.index)
    }

    private mutating func stepLeader(_ message: RaftMessage) {
        switch message.kind {
        case .propose:
            // A proposal forwarded to the leader of another term is dropped (its sender proves it
            // lost once an entry of a later term is applied); 0 comes from members that do not
            // name the term.
            guard message.logTerm == 0 || message.logTerm == term else { return }
            for entry in message.entries where leadTransferee == noNode {
                _ = try? appendProposal(entry.data, kind: .normal)
            }
        case .readIndex:
            handleReadRequest(context: message.context, from: message.from)
        case .transferLeader:
            transferLeadership(to: message.context)
        case .appendResponse:
            handleAppendResponse(message)
        case .heartbeatResponse:
            guard var peer = progress[message.from] else { return }
            peer.recentActive = true
            peer.probeSent = false
            if peer.state == .snapshot {
                // Chunks may have been lost: resend from what the follower confirmed.
                peer.snapshotSent = peer.snapshotAcked
            } else if peer.state == .replicate && peer.inflights.count >= settings.maxInflightMessages {
                // Appends may have been lost: free one slot so the next append either fills the
                // gap or draws a rejection that sends the follower back to probing.
                peer.inflights.removeFirst()
            }
            progress[message.from] = peer
            if peer.state == .snapshot {
                sendSnapshotChunks(to: message.from)
            } else if peer.match < log.lastIndex {
                sendAppend(to: message.from)
            }
            if !peer.isLearner {
                ackedReadRound[message.from] = max(ackedReadRound[message.from] ?? 0, message.context)
                releaseConfirmedReads()
            }
        case .snapshotResponse:
            guard var peer = progress[message.from] else { return }
            peer.recentActive = true
            guard peer.state == .snapshot, peer.pendingSnapshot == message.index else {
                progress[message.from] = peer
                return
            }
            let confirmed = message.rejectHint / UInt64(settings.maxSnapshotChunkBytes)
            if message.reject {
                peer.snapshotAcked = confirmed
                peer.snapshotSent = confirmed
            } else {
                peer.snapshotAcked = max(peer.snapshotAcked, confirmed)
                peer.snapshotSent = max(peer.snapshotSent, peer.snapshotAcked)
            }
            progress[message.from] = peer
            sendSnapshotChunks(to: message.from)
        default:
            break
        }
    }

    private mutating func handleAppendResponse(_ message: RaftMessage) {
        guard var peer = progress[message.from] else { return }
        peer.recentActive = true
        if message.reject {
            var hint = message.rejectHint
            if message.logTerm > 0 { hint = log.conflictHint(index: hint, term: message.logTerm).index }
            if peer.maybeDecrease(rejected: message.index, hint: hint) {
                if peer.state == .replicate { peer.becomeProbe() }
                progress[message.from] = peer
                sendAppend(to: message.from)
            } else {
                progress[message.from] = peer
            }
            return
        }
        let wasPaused = peer.isPaused(maxInflight: settings.maxInflightMessages)
        guard peer.maybeUpdate(message.index, evenBackwards: settings.mutation == .matchMovesBackwards) else {
            progress[message.from] = peer
            return
        }
        switch peer.state {
        case .probe:
            peer.becomeReplicate()
        case .snapshot where peer.match >= peer.pendingSnapshot:
            peer.becomeProbe()
            peer.becomeReplicate()
        case .snapshot, .replicate:
            break
        }
        progress[message.from] = peer
        if maybeCommit() {
            broadcastPending = true
        } else if wasPaused {
            sendAppend(to: message.from)
        }
        while sendAppend(to: message.from, sendIfEmpty: false) {}
        if message.from == leadTransferee && progress[message.from]?.match == log.lastIndex {
            send(RaftMessage(kind: .timeoutNow, from: id, to: message.from, term: term))
        }
    }

    /// Advances the commit index to the highest index stored on a quorum of voters, but only if
    /// that entry is of the current term (Raft §5.4.2). Returns whether it advanced.
    private mutating func maybeCommit() -> Bool {
        let voters = confState.voters
        guard !voters.isEmpty else { return false }
        let own = settings.mutation == .countOwnUnstoredEntries ? log.lastIndex : log.stableIndex
        let matches = voters.map { $0 == id ? own : (progress[$0]?.match ?? 0) }.sorted(by: >)
        let candidate = matches[confState.quorum - 1]
        guard candidate > log.committed else { return false }
        guard log.term(at: candidate) == term || settings.mutation == .commitOldTermByCounting else { return false }
        for index in (log.committed + 1)...candidate {
            uncommittedBytes = max(0, uncommittedBytes - (log.entry(at: index)?.data.count ?? 0))
        }
        log.commit(to: candidate)
        if !deferredReads.isEmpty && committedEntryInCurrentTerm {
            let reads = deferredReads
            deferredReads = []
            for read in reads { handleReadRequest(context: read.context, from: read.from) }
        }
        return true
    }

    private var committedEntryInCurrentTerm: Bool { log.term(at: log.committed) == term }

    /// Sends an append to `member` if flow control allows; returns whether a message went out.
    @discardableResult
    private mutating func sendAppend(to member: NodeID, sendIfEmpty: Bool = true) -> Bool {
        guard var peer = progress[member], !peer.isPaused(maxInflight: settings.maxInflightMessages) else { return false }
        let prevIndex = peer.next - 1
        guard let prevTerm = log.term(at: prevIndex) else {
            // The entries this follower needs were compacted away.
            guard let snapshot = latestSnapshot else { return false }
            guard !snapshot.data.isEmpty else {
                needsSnapshotData = true
                return false
            }
            peer.becomeSnapshot(snapshot)
            progress[member] = peer
            sendSnapshotChunks(to: member)
            return false
        }
        let entries = log.entries(from: peer.next, through: log.lastIndex, maxBytes: settings.maxBytesPerMessage)
        if entries.isEmpty && !sendIfEmpty { return false }
        send(
            RaftMessage(
                kind: .appendEntries, from: id, to: member, term: term, logTerm: prevTerm, index: prevIndex,
                entries: entries, commit: log.committed))
        switch peer.state {
        case .replicate:
            if let last = entries.last {
                peer.next = last.index + 1
                peer.inflights.append(last.index)
            }
        case .probe:
            peer.probeSent = true
        case .snapshot:
            break
        }
        progress[member] = peer
        return true
    }

    private mutating func sendSnapshotChunks(to member: NodeID) {
        guard var peer = progress[member], peer.state == .snapshot, let snapshot = peer.snapshotInTransfer else { return }
        let chunkSize = settings.maxSnapshotChunkBytes
        let total = snapshot.data.count
        let chunkCount = UInt64(max(1, (total + chunkSize - 1) / chunkSize))
        while peer.snapshotSent < chunkCount
            && peer.snapshotSent - peer.snapshotAcked < UInt64(settings.maxInflightSnapshotChunks)
        {
            let start = Int(peer.snapshotSent) * chunkSize
            let end = min(start + chunkSize, total)
            let chunk = SnapshotChunk(
                metadata: snapshot.metadata, offset: UInt64(start), data: Array(snapshot.data[start..<end]),
                isLast: peer.snapshotSent + 1 == chunkCount)
            send(RaftMessage(kind: .installSnapshot, from: id, to: member, term: term, snapshot: chunk))
            peer.snapshotSent += 1
        }
        progress[member] = peer
    }

    private mutating func broadcastAppend() {
        for member in progress.keys.sorted() { sendAppend(to: member) }
    }

    private mutating func broadcastHeartbeat() {
        if readRoundPending {
            readRound += 1
            readRoundPending = false
        }
        for member in progress.keys.sorted() {
            let commit = min(progress[member]!.match, log.committed)
            send(RaftMessage(kind: .heartbeat, from: id, to: member, term: term, commit: commit, context: readRound))
        }
    }

    private mutating func handleReadRequest(context: UInt64, from requester: NodeID) {
        if settings.mutation == .readWithoutQuorumCheck {
            respondToRead(PendingRead(context: context, from: requester, index: log.committed, round: 0))
            return
        }
        let read = PendingRead(context: context, from: requester, index: log.committed, round: readRound + 1)
        guard committedEntryInCurrentTerm else {
            // A new leader does not know the latest commit index until an entry of its term commits.
            deferredReads.append(read)
            return
        }
        if confState.voters == [id] {
            respondToRead(read)
            return
        }
        pendingReads.append(read)
        readRoundPending = true
    }

    /// Answers every pending read whose heartbeat round a quorum of voters has acknowledged.
    private mutating func releaseConfirmedReads() {
        guard !pendingReads.isEmpty, confState.voters.contains(id) else { return }
        let acknowledged = confState.voters.map { $0 == id ? readRound : (ackedReadRound[$0] ?? 0) }.sorted(by: >)
        let confirmedRound = acknowledged[confState.quorum - 1]
        let confirmed = pendingReads.prefix { $0.round <= confirmedRound }
        guard !confirmed.isEmpty else { return }
        pendingReads.removeFirst(confirmed.count)
        for read in confirmed { respondToRead(read) }
    }

    private mutating func respondToRead(_ read: PendingRead) {
        if read.from == id {
            readStates.append(ReadState(index: read.index, context: read.context))
        } else {
            send(RaftMessage(kind: .readIndexResponse, from: id, to: read.from, term: term, index: read.index, context: read.context))
        }
    }

    private mutating func applyConfChange(_ change: ConfChange) {
        confState = confState.applying(change)
        if change.kind == .removeNode {
            progress[change.node] = nil
            ackedReadRound[change.node] = nil
        } else if change.node != id {
            if progress[change.node] == nil {
                progress[change.node] = Progress(next: log.lastIndex + 1, isLearner: change.kind == .addLearner)
                progress[change.node]!.recentActive = true
            } else {
                progress[change.node]!.isLearner = change.kind == .addLearner
            }
        }
        guard role == .leader else { return }
        if change.kind == .removeNode && change.node == id && settings.mutation != .removedLeaderKeepsLeading {
            becomeFollower(term: term, leader: noNode)
            return
        }
        if change.kind == .removeNode && change.node == leadTransferee { leadTransferee = noNode }
        if maybeCommit() { broadcastPending = true }
        releaseConfirmedReads()
    }

    // MARK: - Candidate and follower

    private mutating func stepCandidate(_ message: RaftMessage, acceptingSnapshot accepts: (Snapshot) -> Bool) {
        switch message.kind {
        case .appendEntries, .heartbeat, .installSnapshot:
            // A leader of this term exists: stop campaigning and follow it.
            becomeFollower(term: message.term, leader: message.from)
            handleLeaderMessage(message, acceptingSnapshot: accepts)
        case .voteResponse where role == .candidate, .preVoteResponse where role == .preCandidate:
            if votes[message.from] == nil { votes[message.from] = !message.reject }
            switch tallyVotes() {
            case .won: role == .preCandidate ? campaign(.election) : becomeLeader()
            case .lost: becomeFollower(term: term, leader: noNode)
            case .pending: break
            }
        default:
            break
        }
    }

    private mutating func stepFollower(_ message: RaftMessage, acceptingSnapshot accepts: (Snapshot) -> Bool) {
        switch message.kind {
        case .propose, .readIndex, .transferLeader:
            guard leader != noNode, leader != message.from else { return }
            if message.kind == .propose && !settings.forwardProposals { return }
            var forwarded = message
            forwarded.to = leader
            send(forwarded)
        case .appendEntries, .heartbeat, .installSnapshot:
            electionElapsed = 0
            leader = message.from
            handleLeaderMessage(message, acceptingSnapshot: accepts)
        case .timeoutNow:
            if isPromotable { campaign(.transfer) }
        case .readIndexResponse:
            readStates.append(ReadState(index: message.index, context: message.context))
        default:
            break
        }
    }

    private mutating func handleLeaderMessage(_ message: RaftMessage, acceptingSnapshot accepts: (Snapshot) -> Bool) {
        switch message.kind {
        case .appendEntries: handleAppend(message)
        case .heartbeat: handleHeartbeat(message)
        default: handleSnapshot(message, acceptingSnapshot: accepts)
        }
    }

    private mutating func handleAppend(_ message: RaftMessage) {
        if message.index < log.committed {
            send(RaftMessage(kind: .appendResponse, from: id, to: message.from, term: term, index: log.committed))
            return
        }
        if let lastNew = log.maybeAppend(
            prevIndex: message.index, prevTerm: message.logTerm, leaderCommit: message.commit, entries: message.entries,
            truncatingSuffix: settings.mutation == .truncateOnStaleAppend)
        {
            send(RaftMessage(kind: .appendResponse, from: id, to: message.from, term: term, index: lastNew))
        } else {
            let hint = log.conflictHint(index: min(message.index, log.lastIndex), term: message.logTerm)
            send(
                RaftMessage(
                    kind: .appendResponse, from: id, to: message.from, term: term, logTerm: hint.term,
                    index: message.index, reject: true, rejectHint: hint.index))
        }
    }

    private mutating func handleHeartbeat(_ message: RaftMessage) {
        log.commit(to: min(message.commit, log.lastIndex))
        send(RaftMessage(kind: .heartbeatResponse, from: id, to: message.from, term: term, context: message.context))
    }

    private mutating func handleSnapshot(_ message: RaftMessage, acceptingSnapshot accepts: (Snapshot) -> Bool) {
        guard let chunk = message.snapshot else { return }
        let metadata = chunk.metadata
        let installsStale = settings.mutation == .installStaleSnapshot
        if metadata.index <= log.committed && !installsStale {
            incomingSnapshot = nil
            send(RaftMessage(kind: .appendResponse, from: id, to: message.from, term: term, index: log.committed))
            return
        }
        if chunk.offset == 0 { incomingSnapshot = Snapshot(metadata: metadata, data: []) }
        guard var incoming = incomingSnapshot, incoming.metadata == metadata,
            UInt64(incoming.data.count) == chunk.offset
        else {
            let have = incomingSnapshot?.metadata == metadata ? UInt64(incomingSnapshot!.data.count) : 0
            send(
                RaftMessage(
                    kind: .snapshotResponse, from: id, to: message.from, term: term, index: metadata.index, reject: true,
                    rejectHint: have))
            return
        }
        incoming.data.append(contentsOf: chunk.data)
        guard chunk.isLast else {
            incomingSnapshot = incoming
            send(
                RaftMessage(
                    kind: .snapshotResponse, from: id, to: message.from, term: term, index: metadata.index,
                    rejectHint: UInt64(incoming.data.count)))
            return
        }
        incomingSnapshot = nil
        if log.matchTerm(metadata.index, metadata.term) && !installsStale {
            // The log already holds the snapshot's last entry: just commit up to it.
            log.commit(to: metadata.index)
            send(RaftMessage(kind: .appendResponse, from: id, to: message.from, term: term, index: log.committed))
            return
        }
        guard accepts(incoming) else {
            // Start the transfer over: the leader resends from the first chunk.
            send(
                RaftMessage(
                    kind: .snapshotResponse, from: id, to: message.from, term: term, index: metadata.index, reject: true,
                    rejectHint: 0))
            return
        }
        // The next batch installs it: a batch in flight (being stored, applied or written)
        // finishes first, and until then the applied index stays that of the state machine.
        snapshotAwaitingBatch = (incoming, message.from, term)
    }

    private mutating func install(_ snapshot: Snapshot, from leader: NodeID) {
        log.restore(snapshot.metadata)
        unstableSnapshot = snapshot
        send(RaftMessage(kind: .appendResponse, from: id, to: leader, term: term, index: snapshot.metadata.index))
    }

    private mutating func send(_ message: RaftMessage) {
        messages.append(message)
    }
}
