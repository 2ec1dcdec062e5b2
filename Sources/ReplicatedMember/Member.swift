import LeaseClock
import RaftCore
import StateMachine

/// Identifies a client request within one member; the shell assigns them.
public typealias RequestID = UInt64

/// A request a client sends to a member.
public enum ClientRequest: Sendable, Hashable {
    /// A read; linearizable through ReadIndex unless `serializable` is set.
    case range(RangeRequest)
    /// A write or lease change that goes through the replicated log; with a session, it is
    /// applied at most once however often it is retried (``StateStore/apply(_:in:)``).
    case write(StateRequest, session: SessionStamp? = nil)
    /// Renews a lease (answered by the leader).
    case leaseKeepAlive(id: Int64)
    /// Reports a lease's remaining time (answered by the leader).
    case leaseTimeToLive(id: Int64, keys: Bool)
    /// Lists the leases.
    case leaseLeases
    /// A membership change (etcd's `MemberAdd`, `MemberRemove`, `MemberPromote`): proposed by
    /// the leader (forwarded to it from another member) and answered
    /// ``ClientResponse/confChangeApplied`` once this member has applied it.
    case confChange(ConfChange)
}

/// A member's answer to a ``ClientRequest``.
public enum ClientResponse: Sendable, Hashable {
    /// The result of a read.
    case range(RangeResponse)
    /// A read resolved from the key index whose values the shell reads from the backend, off
    /// the member, before it answers with ``range(_:)`` (see
    /// ``MemberConfiguration/maxValuesReadInPlace``).
    case pendingRange(PendingRange)
    /// A read-only transaction resolved from the key index, whose range values the shell reads
    /// off the member, as for ``pendingRange(_:)``, before it answers with
    /// `.write(.txn(_:))`.
    case pendingTxn(PendingTxn)
    /// The result of an applied write.
    case write(StateResponse)
    /// The lease's TTL after a keep-alive (0 when the lease does not exist, as etcd answers).
    case leaseKeepAlive(id: Int64, ttl: Int64)
    /// A lease's remaining and granted TTL (remaining -1 when it does not exist) and its keys.
    case leaseTimeToLive(id: Int64, remaining: Int64, granted: Int64, keys: [[UInt8]])
    /// The IDs of all leases.
    case leaseLeases([Int64])
    /// The member named by ``Member/moveLeader(to:id:)`` leads now.
    case leaderMoved(to: NodeID)
    /// The membership change is applied on this member.
    case confChangeApplied
    /// The request failed.
    case failure(MemberError)
}

/// Why a member did not propose a membership change.
public enum ConfChangeRefusal: Error, Sendable, Hashable {
    /// Raft refused the proposal.
    case proposal(ProposalError)
    /// The change promotes a learner that has not caught up to 90% of the leader's log.
    case learnerNotReady
}

/// Why a member could not serve a request, with etcd's message (the API layer, `EtcdMapping`,
/// gives each case etcd's gRPC code).
public enum MemberError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The state machine refused the request.
    case state(StateError)
    /// No leader is known.
    case noLeader
    /// This member is not the leader; the request must go to `leader`.
    case notLeader(leader: NodeID)
    /// Leadership changed before the request was committed; it was not applied.
    case leaderChanged
    /// The leader holds too many uncommitted proposals (it may have lost its quorum).
    case tooManyRequests
    /// The request may or may not have been applied: it waited past the request timeout
    /// (``MemberConfiguration/requestTimeoutMilliseconds``), or this member caught up from a
    /// snapshot that covers the request's place in the log, so it cannot tell.
    case timedOutDueToLeaderFailure
    /// The member named to lead is not a voter, or is this member.
    case badLeaderTransferee
    /// The member named to lead did not take over within two election timeouts.
    case leaderTransferTimeout
    /// A membership change is proposed but not yet applied; propose the next after it.
    case membershipChangePending
    /// The leader is handing leadership over and takes no membership change until that ends.
    case leaderTransferInProgress
    /// The membership change does not fit the current membership (`reason` says why).
    case invalidMembershipChange(reason: String)
    /// The change promotes a learner that has not caught up to 90% of the leader's log.
    case learnerNotReady

    /// etcd's exact message for this error.
    public var message: String {
        switch self {
        case .state(let error): error.message
        case .noLeader: "etcdserver: no leader"
        case .notLeader: "etcdserver: not leader"
        case .leaderChanged: "etcdserver: leader changed"
        case .tooManyRequests: "etcdserver: too many requests"
        case .timedOutDueToLeaderFailure: "etcdserver: request timed out, possibly due to previous leader failure"
        case .badLeaderTransferee: "etcdserver: bad leader transferee"
        case .leaderTransferTimeout: "etcdserver: request timed out, leader transfer took too long"
        case .membershipChangePending: "etcdserver: \(ProposalError.confChangePending)"
        case .leaderTransferInProgress: "etcdserver: \(ProposalError.transferInProgress)"
        case .invalidMembershipChange(let reason): "etcdserver: \(reason)"
        case .learnerNotReady: "etcdserver: can only promote a learner member which is in sync with leader"
        }
    }

    public var description: String { message }
}

/// How a member behaves.
public struct MemberConfiguration: Sendable {
    /// The Raft settings (identity, timeouts, PreVote, CheckQuorum…).
    public var raft: RaftSettings
    /// The length of one tick in milliseconds (etcd's `--heartbeat-interval`).
    public var tickMilliseconds: Int64 = 100
    /// The longest encoded client write accepted as a log entry: twice `--max-request-bytes`
    /// plus 1 MiB, room for any request within the limit (whose size counts keys and values
    /// only) with the encoding's per-operation overhead. Longer ones fail as too large.
    public var maxEntryBytes: Int { 2 * store.maxRequestBytes + (1 << 20) }
    /// The most bytes of entries or snapshot data one Raft message carries: the peer transport
    /// accepts frames of this plus headroom.
    public var largestMessagePayload: Int { max(raft.maxSnapshotChunkBytes, raft.maxBytesPerMessage, maxEntryBytes) }
    /// Applied entries between state-machine snapshots (etcd's `--snapshot-count`); 0 never.
    public var snapshotCount: UInt64 = 10_000
    /// Log entries kept behind a snapshot for slow followers.
    public var retainedEntries: UInt64 = 5_000
    /// State-machine limits.
    public var store = StateStore.Configuration()
    /// How far the commit index may run ahead of the applied index before client writes are
    /// refused with "too many requests" (etcd's `maxGapBetweenApplyAndCommitIndex`, 5,000): the
    /// apply stage is behind, and accepting more would only queue them in memory.
    public var maxUnappliedEntries: UInt64 = 5_000
    /// How long a client write waits for a leader when none is known (or while leadership is
    /// handed over) before it fails with "no leader"; nil for two election timeouts, 0 to fail
    /// at once (as etcd does).
    public var leaderWaitMilliseconds: Int64?
    /// How often the leader checkpoints remaining lease TTLs, in milliseconds.
    public var leaseCheckpointMilliseconds: Int64 = 300_000
    /// How the leader compacts the key space's history on its own; nil for never (etcd's default).
    public var autoCompaction: AutoCompaction?
    /// Distinguishes this start of the member from its earlier ones (request identifiers
    /// restart with the process). The shell must give every start a different value, for
    /// example a random number.
    public var incarnation: UInt64 = 0
    /// The members this one was started with (`--initial-cluster`): it accepts messages from
    /// them until it has applied its own addition to the cluster (while it joins with an empty
    /// log, or catches up on the founding entries). See ``Member/recognizes(_:)``.
    public var initialMembers: Set<NodeID> = []
    /// Whether the member encodes the snapshot a lagging follower needs itself, from its store,
    /// when Raft asks for it (the simulator and tests). A shell that sets this to false builds
    /// it elsewhere (the server: from a pinned RocksDB snapshot, off the member loop) and hands
    /// it over with ``Member/provideSnapshot(_:)`` when ``Member/needsSnapshotData`` is true.
    public var encodesSnapshotData = true
    /// The backend quota in bytes (`--quota-backend-bytes`): once the shell reports a backend
    /// larger than this (``Member/noteBackendSize(_:)``), writes that add data are refused with
    /// `etcdserver: mvcc: database space exceeded` and the member raises the NOSPACE alarm.
    /// `nil` for no quota.
    public var quotaBytes: Int64?
    /// How long a request that waits for the log or a leadership confirmation may wait: then
    /// the member forgets it (``Member/abandon(_:)``) and answers etcd's "request timed out,
    /// possibly due to previous leader failure"; a copy already in the log may still apply.
    /// `nil` for no limit. The server uses etcd's request timeout, 5 s plus two election
    /// timeouts.
    public var requestTimeoutMilliseconds: Int64?

    /// etcd's request timeout for a cluster with this election timeout: 5 s plus two election
    /// timeouts (`ReqTimeout` in etcd's server configuration).
    public static func etcdRequestTimeout(electionMilliseconds: Int64) -> Int64 {
        5_000 + 2 * electionMilliseconds
    }
    /// The name the member publishes in the member list with ``publishedClientURLs`` (etcd's
    /// `publish` of `--name` and `--advertise-client-urls`): once it is a member and a leader is
    /// known, it proposes them, and again every election timeout until its record carries
    /// them. `nil` publishes nothing.
    public var publishedName: String?
    /// The client URLs the member publishes with ``publishedName``.
    public var publishedClientURLs: [String] = []
    /// The most values a range read may read from the backend while the member serves it; a
    /// range that needs more is answered with ``ClientResponse/pendingRange(_:)``, and the shell
    /// finishes it elsewhere (the server: on a thread pool, from a RocksDB snapshot it pins
    /// when it gets the answer, before the member applies anything more). `nil` for no limit
    /// (the simulator and tests read every value in place).
    public var maxValuesReadInPlace: Int?
    /// A deliberately broken rule, used only to prove that the simulator's checker catches it.
    @_spi(Testing) public var mutation: MemberMutation?

    /// Creates a configuration for member `id`; Raft proposals are forwarded to the leader.
    public init(id: NodeID) {
        raft = RaftSettings(id: id)
        raft.forwardProposals = true
    }

    /// The election timeout in milliseconds.
    public var electionMilliseconds: Int64 { Int64(raft.electionTicks) * tickMilliseconds }

    /// The shortest lease TTL in seconds: 1.5 election timeouts, rounded up, as etcd derives it
    /// (2 s with the default 100 ms ticks and 10-tick elections). Shorter grants are raised to it.
    public var minimumLeaseTTL: Int64 { (3 * electionMilliseconds / 2 + 999) / 1_000 }

    /// The state machine's configuration, with the lease TTL minimum derived from the election
    /// timeout. Every member of a cluster must use the same one (it decides granted TTLs).
    public var storeConfiguration: StateStore.Configuration {
        var configuration = store
        configuration.minLeaseTTL = minimumLeaseTTL
        return configuration
    }
}

/// A deliberately broken member rule. These exist only so tests can show that the simulator's
/// checkers find real violations; production configurations never set one.
@_spi(Testing) public enum MemberMutation: String, Sendable, Hashable, CaseIterable {
    /// Renew a lease on a keep-alive without first confirming leadership with a quorum, so a
    /// deposed leader that does not know it yet can promise a TTL the new leader will not honour.
    case renewLeaseWithoutConfirmingLeadership
    /// Apply writes that name a client session as if they named none, so a retried write is
    /// applied again (exactly-once writes switched off).
    case applySessionWritesWithoutDeduplication
    /// Write the applied index in its own batch, ahead of the state-machine changes it covers
    /// (``MemberStorage/mutation``): a crash between the two loses applied changes for good.
    case writeAppliedIndexApart
    /// Read stored records without verifying their checksums, so a member starts from a damaged
    /// disk (applied by the simulator when it opens a member's storage).
    case acceptDamagedRecords
    /// Skip one revision after each window of a watch's catch-up from history
    /// (``WatchCursor/skipsRevisionAfterCatchUp``, set by the simulator on its watchers' cursors).
    case watchSkipsRevisionAfterCatchUp
    /// Serve every read-only transaction from the member's own state, as if its ranges were
    /// all serializable: a member that lost its leadership, or a follower behind, answers a
    /// linearizable multi-key read with stale data.
    case serveReadOnlyTxnWithoutReadIndex
}

/// What a member finds in durable storage when it starts.
public struct RecoveredState: Sendable {
    /// The Raft log, hard state and snapshot.
    public var raft: PersistentState
    /// The state machine as of `raft.appliedIndex`.
    public var store: StateStore

    /// Creates recovered state.
    public init(raft: PersistentState, store: StateStore) {
        self.raft = raft
        self.store = store
    }
}

/// Changes to make durable after a batch was applied: the state machine's mutations and the
/// applied index, written together in one atomic batch.
public struct StateWrite: Sendable {
    /// When true, every state-machine key is replaced (a snapshot was installed).
    public var replacesState = false
    /// The mutations, in order.
    public var mutations: [BackendMutation] = []
    /// The applied index after these mutations.
    public var appliedIndex: LogIndex = 0
    /// The hard state of a batch that only moved the commit index (``Ready/mustSync`` false):
    /// it was not written in step 1 of the batch, and goes in this write, so the batch never
    /// waits for the storage stage before it applies. The stored commit index never falls
    /// behind the stored applied index.
    public var hardState: HardState?
}

/// What the shell must do after the entries of a batch are durable.
public struct BatchOutput: Sendable {
    /// Messages to send now: the Ready's ``Ready/messages``. A shell may instead send those
    /// as soon as the batch is durable, before ``Member/finishBatch()`` applies it (the
    /// server and the simulator do, so a follower's acknowledgement never waits for its
    /// apply); it then does not send these again.
    public var messages: [RaftMessage] = []
    /// State-machine changes and applied index to write in one atomic batch.
    public var stateWrite = StateWrite()
    /// A new snapshot to store; the log up to `compactedThrough` may then be deleted.
    public var snapshot: Snapshot?
    /// The index through which the log was compacted in memory (delete stored entries up to it).
    public var compactedThrough: LogIndex?
    /// Answers to deliver to clients.
    public var responses: [(RequestID, ClientResponse)] = []
    /// The entries the batch applied, in order: the Ready's committed entries, then those whose
    /// commit was learned while the batch was stored (``RaftNode/takeCommittedEntries()``).
    public var appliedEntries: [LogEntry] = []
    /// For each answered write proposed here, the log index it was applied at.
    public var appliedAt: [RequestID: LogIndex] = [:]
    /// Leases revoked because they expired (not by a client), as applied in this batch.
    public var expiredLeases: [Int64] = []
    /// Compaction revisions the leader's auto-compaction proposed, as applied in this batch.
    public var autoCompactions: [Int64] = []
    /// Whether a member's peer URLs changed in this batch (`member update`): the shell must
    /// reach that member at its new address.
    public var peerURLsChanged = false
    /// Watch events produced by applied writes, in revision order.
    public var events: [Event] = []
    /// Auth requests applied in this batch that change state (including authentications, which
    /// carry the simple token every member must learn), in order.
    public var authChanges: [AuthRequest] = []
}

/// One member of a Statehouse cluster: the Raft core, the MVCC state machine with its leases,
/// and the bookkeeping of client requests — deterministic and free of I/O.
///
/// A shell (the server, the simulator, a test) feeds it client requests, peer messages and
/// ticks, and runs batches: ``startBatch()`` returns the Raft ``Ready`` whose entries, hard state
/// and snapshot the shell must make durable, and whose leader messages it sends at once (see
/// ``Ready/leaderMessages``); then ``finishBatch()`` applies committed entries and
/// returns messages to send, the state write to persist (mutations and applied index together),
/// and client responses.
public struct Member: Sendable {
    /// The configuration.
    public let configuration: MemberConfiguration
    /// The Raft core.
    public private(set) var raft: RaftNode
    /// The applied state.
    public private(set) var store: StateStore
    /// Milliseconds of logical time, counted in ticks.
    public private(set) var now: Int64 = 0

    var leases: LeaseClock
    var pendingReady: Ready?
    /// Writes proposed through this member, by request, with their log position when known.
    var proposals: [RequestID: LogPosition?] = [:]
    /// The encoded entries of client writes proposed here and not yet answered, for proposing
    /// again when the first proposal provably cannot commit.
    var proposedEntries: [RequestID: [UInt8]] = [:]
    /// Writes forwarded to a leader, by request: the term they were forwarded in.
    var forwardedTerms: [RequestID: Term] = [:]
    /// Client writes waiting for a leader (none known, or leadership being transferred), in
    /// arrival order, with the logical time after which they fail with "no leader".
    var parked: [(id: RequestID, deadline: Int64)] = []
    /// Answers produced outside a batch (parked writes that timed out), delivered with the next.
    var pendingResponses: [(RequestID, ClientResponse)] = []
    /// When each request waiting for an answer times out (logical time, see
    /// ``MemberConfiguration/requestTimeoutMilliseconds``).
    var requestDeadlines: [RequestID: Int64] = [:]
    /// Requests forwarded to a leader (``LeaderRequest``), by the client's request ID (their
    /// handle): the member they went to.
    var forwardedRequests: [RequestID: NodeID] = [:]
    /// Requests this leader serves for other members, by its own request ID: the member and its
    /// handle.
    var servedForwards: [RequestID: (peer: NodeID, handle: UInt64)] = [:]
    var nextServedForwardID = Member.firstServedForwardID
    /// Forwards and replies waiting for ``takeForwardMessages()``.
    var outgoingForwardMessages: [(to: NodeID, message: ForwardMessage)] = []
    /// Leader moves waiting for their target to lead (``moveLeader(to:id:)``), with the
    /// logical time after which they fail.
    var leaderMoves: [(id: RequestID, target: NodeID, deadline: Int64)] = []
    /// Membership changes this leader proposed for a client, by request: their log positions.
    var membershipChanges: [RequestID: LogPosition] = [:]
    /// A request waiting for a ReadIndex confirmation, or for the entries committed before it
    /// to be applied.
    enum PendingRead: Sendable {
        case range(RequestID, RangeRequest)
        /// A read-only transaction, possibly with the credentials it is made with.
        case txn(RequestID, StateRequest)
        case keepAlive(RequestID, lease: Int64)
        case timeToLive(RequestID, lease: Int64, keys: Bool)
        /// A membership change the leader applied, answered once this member applied it too.
        case membershipApplied(RequestID)

        var requestID: RequestID {
            switch self {
            case .range(let id, _), .txn(let id, _), .keepAlive(let id, _), .timeToLive(let id, _, _), .membershipApplied(let id): id
            }
        }
    }
    var reads: [UInt64: PendingRead] = [:]
    /// Requests served once the applied index reaches `index` (a confirmed read index, or the
    /// commit index when a leader got a time-to-live request).
    var readsAwaitingApply: [(index: LogIndex, read: PendingRead)] = []
    /// Keep-alives waiting for their checkpoint clear to commit: lease and TTL to answer.
    var keepAlives: [RequestID: (lease: Int64, ttl: Int64)] = [:]
    var nextReadContext: UInt64 = 1
    var lastSnapshotIndex: LogIndex
    var wasLeader = false
    var autoCompactor: AutoCompactor?
    /// When the member last proposed its published attributes (logical time).
    var lastPublished: Int64?

    /// Creates a member from recovered state.
    public init(configuration: MemberConfiguration, recovered: RecoveredState) {
        self.configuration = configuration
        raft = RaftNode(settings: configuration.raft, state: recovered.raft)
        store = recovered.store
        lastSnapshotIndex = recovered.raft.snapshot?.metadata.index ?? 0
        leases = LeaseClock(
            configuration: LeaseClock.Configuration(
                minTTL: configuration.minimumLeaseTTL, checkpointInterval: configuration.leaseCheckpointMilliseconds))
        autoCompactor = configuration.autoCompaction.map { AutoCompactor(policy: $0, now: 0) }
    }

    /// This member's identifier.
    public var id: NodeID { raft.id }
    /// The index of the last applied entry.
    public var appliedIndex: LogIndex { raft.appliedIndex }

    // MARK: - Inputs

    /// Accepts a client request. Returns the answer at once when it needs neither the log nor a
    /// leadership confirmation (a serializable read, time-to-live on a leader that has applied
    /// what is committed, the lease list, an error), or
    /// nil when the answer will come in a later ``BatchOutput``: at the latest, etcd's timeout
    /// error once ``MemberConfiguration/requestTimeoutMilliseconds`` have passed.
    public mutating func submit(_ request: ClientRequest, id requestID: RequestID) -> ClientResponse? {
        let answer = accept(request, id: requestID)
        if answer == nil, let timeout = configuration.requestTimeoutMilliseconds { requestDeadlines[requestID] = now + timeout }
        return answer
    }

    private mutating func accept(_ request: ClientRequest, id requestID: RequestID) -> ClientResponse? {
        switch request {
        case .range(let range) where range.serializable:
            return serveRange(range)
        case .range(let range):
            return confirmLeadership(for: .range(requestID, range))
        case .write(let write, session: nil) where Self.readOnlyTxn(in: write) != nil:
            // etcd serves a transaction that writes nothing as a read, without the log: at
            // once when its ranges are all serializable, otherwise after a ReadIndex round.
            // (With a session it goes through the log, where the session table records it.)
            let txn = Self.readOnlyTxn(in: write)!
            if txn.isSerializable || configuration.mutation == .serveReadOnlyTxnWithoutReadIndex {
                return serveReadOnlyTxn(write)
            }
            return confirmLeadership(for: .txn(requestID, write))
        case .write(let write, let session):
            do throws(StateError) {
                try StateStore.validate(write, configuration: configuration.storeConfiguration)
            } catch {
                return .failure(.state(error))
            }
            // A retried session write the table remembers gets its first answer, quota or not.
            if StateStore.addsData(write) && (store.isOutOfSpace || exceedsQuota) && !store.remembers(session) {
                return .failure(.state(.noSpace))
            }
            let entry = Envelope(
                origin: id, incarnation: configuration.incarnation, request: requestID, session: session, body: write
            ).encoded()
            // Bounds every entry, so that the peer transport's frame limit can fit any append.
            guard entry.count <= configuration.maxEntryBytes else { return .failure(.state(.requestTooLarge)) }
            guard raft.commitIndex <= raft.appliedIndex + configuration.maxUnappliedEntries else {
                return .failure(.tooManyRequests)
            }
            proposedEntries[requestID] = entry
            return proposeWrite(requestID)
        case .leaseKeepAlive(let lease):
            guard raft.role == .leader else { return forwardToLeader(.keepAlive(id: lease), id: requestID) }
            // Renew only once a quorum confirms this member still leads: a deposed leader that
            // does not know it yet must not promise a TTL that the new leader will not honour.
            // This also fences expiry revokes left in the log by a previous leader (etcd
            // #16822): a new leader confirms nothing before an entry of its own term commits, and
            // committed entries are applied before renewals, so such a revoke lands first and the
            // renewal answers TTL 0.
            if configuration.mutation == .renewLeaseWithoutConfirmingLeadership {
                var output = BatchOutput()
                renew(lease, for: requestID, into: &output)
                return output.responses.first?.1
            }
            return confirmLeadership(for: .keepAlive(requestID, lease: lease))
        case .leaseTimeToLive(let lease, let withKeys):
            guard raft.role == .leader else { return forwardToLeader(.timeToLive(id: lease, keys: withKeys), id: requestID) }
            // A grant or revoke the client saw answered on another member is committed, but this
            // leader may not have applied it yet: answer once it has (as etcd waits for its
            // applied index before answering lease requests).
            guard raft.appliedIndex >= raft.commitIndex else {
                readsAwaitingApply.append((raft.commitIndex, .timeToLive(requestID, lease: lease, keys: withKeys)))
                return nil
            }
            return timeToLive(of: lease, keys: withKeys)
        case .leaseLeases:
            return .leaseLeases(store.leases().map(\.id))
        case .confChange(let change):
            guard raft.role == .leader else { return forwardToLeader(.confChange(change), id: requestID) }
            do throws(ConfChangeRefusal) {
                membershipChanges[requestID] = try proposeConfChange(change)
                return nil
            } catch {
                return .failure(Self.memberError(error))
            }
        }
    }

    /// The client error for a membership change the member did not propose.
    static func memberError(_ refusal: ConfChangeRefusal) -> MemberError {
        switch refusal {
        case .learnerNotReady: .learnerNotReady
        case .proposal(.notLeader(let leader)): leader == noNode ? .noLeader : .notLeader(leader: leader)
        case .proposal(.confChangePending): .membershipChangePending
        case .proposal(.transferInProgress): .leaderTransferInProgress
        case .proposal(.invalidConfChange(let reason)): .invalidMembershipChange(reason: reason)
        case .proposal(.tooManyUncommittedBytes): .tooManyRequests
        }
    }

    /// Proposes the client write `requestID` (its entry is in `proposedEntries`); with no leader
    /// known, or while leadership is being transferred, parks it until there is one (at most
    /// two election timeouts). Returns an answer only when the write fails at once.
    private mutating func proposeWrite(_ requestID: RequestID) -> ClientResponse? {
        guard let entry = proposedEntries[requestID] else { return nil }
        do {
            if let position = try raft.propose(entry) {
                proposals[requestID] = .some(position)
            } else {
                proposals[requestID] = .some(nil)
                forwardedTerms[requestID] = raft.term
            }
            return nil
        } catch {
            switch error {
            case .notLeader(let leader) where leader != noNode:
                proposedEntries[requestID] = nil
                return .failure(.notLeader(leader: leader))
            case .notLeader, .transferInProgress:
                let wait = configuration.leaderWaitMilliseconds ?? 2 * configuration.electionMilliseconds
                guard wait > 0 else {
                    proposedEntries[requestID] = nil
                    return .failure(error == .transferInProgress ? .leaderChanged : .noLeader)
                }
                if !parked.contains(where: { $0.id == requestID }) { parked.append((requestID, now + wait)) }
                return nil
            case .tooManyUncommittedBytes:
                proposedEntries[requestID] = nil
                return .failure(.tooManyRequests)
            case .confChangePending, .invalidConfChange:
                proposedEntries[requestID] = nil
                return .failure(.leaderChanged)
            }
        }
    }

    /// Proposes the parked writes once a leader is known; fails those past their deadline.
    private mutating func proposeParked() {
        guard !parked.isEmpty else { return }
        let waiting = parked
        parked = []
        for (requestID, deadline) in waiting {
            if raft.leader == noNode && now > deadline {
                proposedEntries[requestID] = nil
                answerLater(requestID, .failure(.noLeader))
            } else if raft.leader == noNode {
                parked.append((requestID, deadline))
            } else if let failure = proposeWrite(requestID) {
                answerLater(requestID, failure)
            }
        }
    }

    /// Proposes again the forwarded writes that provably cannot commit any more (see
    /// ``RaftNode/forwardedProposalIsLost(term:)``): their leader lost its term before
    /// appending or committing them.
    private mutating func reproposeLostForwards() {
        let lost = forwardedTerms.filter { raft.forwardedProposalIsLost(term: $0.value) }.keys.sorted()
        for requestID in lost {
            forwardedTerms[requestID] = nil
            proposals[requestID] = nil
            if let failure = proposeWrite(requestID) { answerLater(requestID, failure) }
        }
    }

    /// Forgets request `requestID`, whose client stopped waiting: it is no longer proposed
    /// again or answered. A copy already in the log may still apply.
    public mutating func abandon(_ requestID: RequestID) {
        parked.removeAll { $0.id == requestID }
        proposedEntries[requestID] = nil
        forwardedTerms[requestID] = nil
        proposals[requestID] = nil
        keepAlives[requestID] = nil
        requestDeadlines[requestID] = nil
        forwardedRequests[requestID] = nil
        membershipChanges[requestID] = nil
        reads = reads.filter { $0.value.requestID != requestID }
        readsAwaitingApply.removeAll { $0.read.requestID == requestID }
    }

    /// Abandons the requests that have waited ``MemberConfiguration/requestTimeoutMilliseconds``
    /// and answers them with etcd's timeout error (see ``takeAnswers()``). A request already
    /// answered has no deadline left (``answerLater(_:_:)`` and ``finishBatch()`` clear it).
    private mutating func expireRequests() {
        guard !requestDeadlines.isEmpty else { return }
        let expired = requestDeadlines.filter { $0.value < now }.keys.sorted()
        for requestID in expired {
            abandon(requestID)
            answerLater(requestID, .failure(.timedOutDueToLeaderFailure))
        }
    }

    /// Queues an answer produced outside a batch: the shell takes it with
    /// ``takeAnswers()``, or it goes out with the next batch.
    mutating func answerLater(_ requestID: RequestID, _ response: ClientResponse) {
        requestDeadlines[requestID] = nil
        pendingResponses.append((requestID, response))
    }

    /// Answers produced since the last batch outside one: writes that found no leader in time,
    /// requests that timed out, leader moves, replies to forwarded lease requests. A shell that
    /// takes them after each input answers them without waiting for a batch (which waits for
    /// the disk); otherwise they go out with the next.
    public mutating func takeAnswers() -> [(RequestID, ClientResponse)] {
        var answers = pendingResponses
        pendingResponses = []
        routeServedForwards(&answers)
        return answers
    }

    /// Starts a ReadIndex round for a request that needs the leader confirmed by a quorum.
    mutating func confirmLeadership(for read: PendingRead) -> ClientResponse? {
        let context = nextReadContext
        nextReadContext += 1
        do {
            try raft.readIndex(context: context)
            reads[context] = read
            return nil
        } catch {
            return .failure(.noLeader)
        }
    }

    /// A lease's remaining and granted TTL (remaining -1 when it does not exist), and its keys.
    private func timeToLive(of lease: Int64, keys: Bool) -> ClientResponse {
        guard let record = store.lease(lease), let remaining = leases.remainingTTL(id: lease, now: now) else {
            return .leaseTimeToLive(id: lease, remaining: -1, granted: 0, keys: [])
        }
        return .leaseTimeToLive(id: lease, remaining: remaining, granted: record.ttl, keys: keys ? store.keys(attachedTo: lease) : [])
    }

    /// Renews a lease on a leader whose leadership a quorum just confirmed.
    private mutating func renew(_ lease: Int64, for requestID: RequestID, into output: inout BatchOutput) {
        guard raft.role == .leader else {
            output.responses.append((requestID, .failure(.leaderChanged)))
            return
        }
        guard let ttl = leases.renew(id: lease, now: now) else {
            output.responses.append((requestID, .leaseKeepAlive(id: lease, ttl: 0)))
            return
        }
        guard leases.needsCheckpointClear(id: lease) else {
            output.responses.append((requestID, .leaseKeepAlive(id: lease, ttl: ttl)))
            return
        }
        // The lease has a replicated remaining TTL from an earlier checkpoint. Answer only once
        // clearing it is committed, or a new leader could restart the lease from that shorter
        // value and expire it before `ttl` has passed since this answer.
        let clear = StateRequest.leaseCheckpoint(LeaseCheckpointRequest(checkpoints: leases.checkpointsDue(now: now)))
        do {
            proposals[requestID] = .some(
                try raft.propose(Envelope(origin: id, incarnation: configuration.incarnation, request: requestID, body: clear).encoded()))
            keepAlives[requestID] = (lease, ttl)
        } catch {
            output.responses.append((requestID, .failure(.leaderChanged)))
        }
    }

    /// Processes a message from a peer, unless its sender is not a member; a snapshot that could
    /// not be installed is refused before anything of it is stored (see ``PeerMessageVerdict``).
    @discardableResult
    public mutating func step(_ message: RaftMessage) -> PeerMessageVerdict {
        guard recognizes(message.from) else { return .unknownSender }
        let configuration = configuration
        var refusal: String?
        raft.step(message) { snapshot in
            do {
                _ = try Self.restoredState(from: snapshot, configuration: configuration)
                return true
            } catch {
                refusal = "\(error)"
                return false
            }
        }
        provideSnapshotIfNeeded()
        proposeParked()
        answerLeaderMoves()
        return refusal.map(PeerMessageVerdict.invalidSnapshot) ?? .accepted
    }

    /// Advances logical time by one tick. On the leader this expires leases, checkpoints their
    /// remaining TTLs and compacts history (``MemberConfiguration/autoCompaction``) by proposing
    /// through Raft.
    public mutating func tick() {
        now += configuration.tickMilliseconds
        raft.tick()
        expireRequests()
        answerLeaderMoves()
        provideSnapshotIfNeeded()
        proposeParked()
        if let target = autoCompactor?.advance(
            now: now, revision: store.currentRevision, compacted: store.compactedRevision, isLeader: raft.role == .leader)
        {
            proposeInternal(.compaction(CompactionRequest(revision: target)))
        }
        publishAttributesIfNeeded()
        guard raft.role == .leader else { return }
        for lease in leases.expired(now: now) {
            proposeInternal(.leaseRevoke(LeaseRevokeRequest(id: lease)))
        }
        let checkpoints = leases.checkpointsDue(now: now)
        if !checkpoints.isEmpty { proposeInternal(.leaseCheckpoint(LeaseCheckpointRequest(checkpoints: checkpoints))) }
    }

    /// Proposes ``MemberConfiguration/publishedName`` and its client URLs when the member list
    /// does not carry them yet: once this member is in it and a leader is known, at most once
    /// per election timeout (a proposal lost with a leader is made again).
    private mutating func publishAttributesIfNeeded() {
        let clientURLs = configuration.publishedClientURLs
        guard let name = configuration.publishedName, let record = store.member(id), raft.leader != noNode,
            record.name != name || record.clientURLs != clientURLs
        else { return }
        if let last = lastPublished, now < last + configuration.electionMilliseconds { return }
        lastPublished = now
        proposeInternal(.publishMember(MemberAttributesRequest(id: id, name: name, clientURLs: clientURLs)))
    }

    private mutating func proposeInternal(_ request: StateRequest) {
        _ = try? raft.propose(Envelope(origin: noNode, incarnation: 0, request: 0, body: request).encoded())
    }

    /// The size of the backend the shell last reported (``noteBackendSize(_:)``).
    public private(set) var backendBytes: Int64 = 0

    /// Whether the last reported backend size is over ``MemberConfiguration/quotaBytes``.
    var exceedsQuota: Bool { configuration.quotaBytes.map { backendBytes > $0 } ?? false }

    /// Tells the member how large its backend is now (the shell measures it, every ten ticks on
    /// a server). Past the quota, writes that add data are refused, and the member proposes the
    /// NOSPACE alarm while a leader is known and the alarm is not yet raised, as etcd does.
    ///
    /// - Returns: Whether it proposed the alarm (the shell logs it).
    @discardableResult
    public mutating func noteBackendSize(_ bytes: Int64) -> Bool {
        backendBytes = bytes
        guard exceedsQuota, !store.isOutOfSpace, raft.leader != noNode else { return false }
        proposeInternal(.alarm(AlarmRequest(action: .activate, memberID: id, alarm: .noSpace)))
        return true
    }

    /// Proposes a membership change (leader only); see ``RaftNode/proposeConfChange(_:)``.
    /// Promoting a learner is refused unless it has caught up to 90% of the leader's log, as
    /// etcd refuses it.
    public mutating func proposeConfChange(_ change: ConfChange) throws(ConfChangeRefusal) -> LogPosition {
        if change.kind == .addVoter, raft.role == .leader, store.member(change.node)?.isLearner == true {
            let match = raft.matchIndex(of: change.node) ?? 0
            guard match > 0, match * 10 >= raft.commitIndex * 9 else { throw .learnerNotReady }
        }
        do {
            return try raft.proposeConfChange(change)
        } catch {
            throw .proposal(error)
        }
    }

    /// Hands leadership to `target`; see ``RaftNode/transferLeadership(to:)``. Nothing answers;
    /// ``moveLeader(to:id:)`` is the request a client waits on.
    public mutating func transferLeadership(to target: NodeID) {
        raft.transferLeadership(to: target)
    }

    /// Hands leadership to `target` for request `requestID` (etcd's `MoveLeader`): answered
    /// ``ClientResponse/leaderMoved(to:)`` once this member sees `target` lead, or
    /// ``MemberError/leaderTransferTimeout`` if it does not within two election timeouts. Only
    /// the leader moves leadership; `target` must be another voter.
    public mutating func moveLeader(to target: NodeID, id requestID: RequestID) -> ClientResponse? {
        // etcd answers "not leader" on any other member, leader known or not.
        guard raft.role == .leader else { return .failure(.notLeader(leader: raft.leader)) }
        guard raft.confState.voters.contains(target), target != id else { return .failure(.badLeaderTransferee) }
        raft.transferLeadership(to: target)
        leaderMoves.append((requestID, target, now + 2 * configuration.electionMilliseconds))
        return nil
    }

    /// Answers the leader moves whose target leads now, or whose time is up.
    private mutating func answerLeaderMoves() {
        guard !leaderMoves.isEmpty else { return }
        let moves = leaderMoves
        leaderMoves = []
        for move in moves {
            if raft.leader == move.target {
                answerLater(move.id, .leaderMoved(to: move.target))
            } else if now > move.deadline {
                answerLater(move.id, .failure(.leaderTransferTimeout))
            } else {
                leaderMoves.append(move)
            }
        }
    }

    /// Tells the member that `peer`'s connection to it closed; see ``RaftNode/peerConnectionLost(_:)``.
    public mutating func peerConnectionLost(_ peer: NodeID) {
        raft.peerConnectionLost(peer)
    }

    /// Starts an election now.
    public mutating func campaign() {
        raft.campaign()
    }

    // MARK: - Batches

    /// Whether ``startBatch()`` has work.
    public var hasBatch: Bool { raft.hasReady || !pendingResponses.isEmpty }

    /// Starts a batch: send the returned leader messages, make its entries, hard state and
    /// snapshot durable, then call ``finishBatch()``.
    ///
    /// While the batch is being made durable the shell may go on calling ``tick()``,
    /// ``step(_:)``, ``submit(_:id:)`` and the other inputs, sending what
    /// ``takeImmediateMessages()`` returns after each: a slow fsync then delays no heartbeat,
    /// heartbeat answer or read confirmation. What the inputs ask to store waits for the next
    /// batch, which starts only after this one is finished.
    public mutating func startBatch() -> Ready {
        precondition(pendingReady == nil, "startBatch() twice")
        let ready = raft.ready()
        pendingReady = ready
        return ready
    }

    /// Finishes the batch whose entries are now durable: applies the snapshot and committed
    /// entries, confirms reads, and returns what to send, write and answer.
    public mutating func finishBatch() -> BatchOutput {
        guard let ready = pendingReady else { preconditionFailure("finishBatch() without startBatch()") }
        pendingReady = nil
        var output = BatchOutput(messages: ready.messages)
        if !ready.mustSync { output.stateWrite.hardState = ready.hardState }
        output.responses = pendingResponses
        pendingResponses = []
        if let snapshot = ready.snapshot { install(snapshot, into: &output) }
        for entry in ready.committedEntries { apply(entry, into: &output) }
        raft.advance(ready)
        // Entries whose commit this member learned while the batch was being stored, and which
        // the batch stored: applied now rather than in a batch of their own.
        let late = raft.takeCommittedEntries()
        for entry in late { apply(entry, into: &output) }
        output.appliedEntries = ready.committedEntries + late
        output.stateWrite.appliedIndex = output.appliedEntries.last?.index ?? ready.snapshot?.metadata.index ?? raft.appliedIndex
        if let softState = ready.softState { leadershipChanged(to: softState, output: &output) }
        for readState in ready.readStates {
            // Served once the entries committed before the confirmation are applied: a keep-alive
            // then renews a lease whose grant (or revoke) the client may have seen answered.
            if let read = reads.removeValue(forKey: readState.context) { readsAwaitingApply.append((readState.index, read)) }
        }
        serveConfirmedReads(into: &output)
        reproposeLostForwards()
        proposeParked()
        answerLeaderMoves()
        output.responses += pendingResponses
        pendingResponses = []
        for (requestID, _) in output.responses { requestDeadlines[requestID] = nil }
        routeServedForwards(&output.responses)
        maybeSnapshot(into: &output)
        provideSnapshotIfNeeded()
        return output
    }

    /// The messages that may leave at once, while a batch is being made durable (see
    /// ``RaftNode/takeImmediateMessages()``); the rest leave with a later batch.
    public mutating func takeImmediateMessages() -> [RaftMessage] {
        raft.takeImmediateMessages()
    }

    /// Tells the member that the shell has written the state write of the last ``BatchOutput``
    /// (``MemberStorage/write(_:)``): the values it carried leave memory, and are read back from
    /// storage when needed. A shell that never calls it keeps every value in memory.
    public mutating func stateWritten() {
        store.releaseDurableValues()
    }

    /// Gives the Raft core the current state as a snapshot when a follower needs one (unless
    /// the shell builds it, ``MemberConfiguration/encodesSnapshotData``).
    private mutating func provideSnapshotIfNeeded() {
        guard raft.needsSnapshotData, configuration.encodesSnapshotData else { return }
        raft.provideSnapshot(Snapshot(metadata: raft.appliedSnapshotMetadata, data: SnapshotCodec.encodeChecksummed(store.backendPairs())))
    }

    /// Whether a lagging follower needs a snapshot whose data the shell must build: the state at
    /// ``snapshotMetadata`` or later, encoded with ``SnapshotCodec/encodeChecksummed(_:)``.
    public var needsSnapshotData: Bool { raft.needsSnapshotData }

    /// The metadata of a snapshot of the state as applied now (index, term, membership).
    public var snapshotMetadata: SnapshotMetadata { raft.appliedSnapshotMetadata }

    /// Hands Raft a snapshot built by the shell (``MemberConfiguration/encodesSnapshotData``
    /// false) for followers behind the compacted log. Returns false, and changes nothing, when
    /// the snapshot is older than the latest one the member took meanwhile: build it again.
    @discardableResult
    public mutating func provideSnapshot(_ snapshot: Snapshot) -> Bool {
        guard snapshot.metadata.index >= (raft.latestSnapshot?.metadata.index ?? 0), snapshot.metadata.index <= raft.appliedIndex
        else { return false }
        raft.provideSnapshot(snapshot)
        return true
    }

    private mutating func install(_ snapshot: Snapshot, into output: inout BatchOutput) {
        do {
            let (pairs, fresh) = try Self.restoredState(from: snapshot, configuration: configuration)
            var restored = fresh
            // The pairs are in memory until the shell writes them with this batch.
            if let reader = store.backendReader { restored.readValues(from: reader) }
            store = restored
            output.stateWrite.replacesState = true
            output.stateWrite.mutations = pairs.map { .put(key: $0.0, value: $0.1) }
            lastSnapshotIndex = snapshot.metadata.index
            // Proposals the snapshot may contain will never be applied here one by one: whether
            // they took effect is unknown (forwarded ones have no known position at all).
            for requestID in proposals.keys.sorted() {
                guard proposals[requestID]!.map({ $0.index <= snapshot.metadata.index }) ?? true else { continue }
                proposals[requestID] = nil
                proposedEntries[requestID] = nil
                forwardedTerms[requestID] = nil
                keepAlives[requestID] = nil
                output.responses.append((requestID, .failure(.timedOutDueToLeaderFailure)))
            }
            for requestID in membershipChanges.keys.sorted() where membershipChanges[requestID]!.index <= snapshot.metadata.index {
                membershipChanges[requestID] = nil
                output.responses.append((requestID, .failure(.timedOutDueToLeaderFailure)))
            }
            if raft.role == .leader { leases.promote(leases: store.leases(), now: now, extend: configuration.electionMilliseconds) }
        } catch {
            // step(_:) checked this snapshot before Raft accepted it, so it cannot fail here.
            preconditionFailure("snapshot at \(snapshot.metadata.index) was checked but does not install: \(error)")
        }
    }

    private mutating func apply(_ entry: LogEntry, into output: inout BatchOutput) {
        defer { failDisplacedProposals(at: LogPosition(term: entry.term, index: entry.index), into: &output) }
        if !membershipChanges.isEmpty { answerMembershipChanges(at: entry, into: &output) }
        if entry.kind == .confChange, let change = ConfChange(decoding: entry.data) {
            output.stateWrite.mutations.append(contentsOf: store.applyMembership(Self.membershipChange(change)))
            return
        }
        guard entry.kind == .normal, !entry.data.isEmpty, let envelope = Envelope(decoding: entry.data) else { return }
        let applied: Applied<SessionResult>
        if let session = envelope.session, configuration.mutation != .applySessionWritesWithoutDeduplication {
            applied = store.apply(envelope.body, in: session)
        } else {
            do throws(StateError) {
                let outcome = try store.apply(envelope.body)
                applied = Applied(response: .success(outcome.response), mutations: outcome.mutations, events: outcome.events)
            } catch {
                applied = Applied(response: .failure(error))
            }
        }
        output.stateWrite.mutations.append(contentsOf: applied.mutations)
        output.events.append(contentsOf: applied.events)
        var response: ClientResponse
        switch applied.response {
        case .success(let result):
            let body = envelope.body.withoutCredentials
            noteLeaseChanges(body, response: result)
            if case .updateMemberPeerURLs = body { output.peerURLsChanged = true }
            if case .auth(let change) = body, !change.isReadOnly { output.authChanges.append(change) }
            response = .write(result)
            if envelope.origin == noNode {
                switch envelope.body {
                case .leaseRevoke(let revoke): output.expiredLeases.append(revoke.id)
                case .compaction(let compaction): output.autoCompactions.append(compaction.revision)
                default: break
                }
            }
        case .failure(let error):
            response = .failure(.state(error))
        }
        // Answer only our own proposal of this start, and only from the entry at the position it
        // was proposed at (when known): an entry from an earlier start, or one that took the
        // slot, carries someone else's result.
        guard envelope.origin == id, envelope.incarnation == configuration.incarnation,
            let proposed = proposals[envelope.request],
            proposed.map({ $0.term == entry.term && $0.index == entry.index }) ?? true
        else { return }
        proposals[envelope.request] = nil
        proposedEntries[envelope.request] = nil
        forwardedTerms[envelope.request] = nil
        if let keepAlive = keepAlives.removeValue(forKey: envelope.request) {
            response = .leaseKeepAlive(id: keepAlive.lease, ttl: keepAlive.ttl)
        }
        output.responses.append((envelope.request, response))
        output.appliedAt[envelope.request] = entry.index
    }

    /// Answers the membership changes proposed here at `entry`'s index: applied if `entry` is
    /// the proposed one (same term), else they can never apply and fail with "leader changed".
    private mutating func answerMembershipChanges(at entry: LogEntry, into output: inout BatchOutput) {
        for requestID in membershipChanges.keys.sorted() {
            guard let position = membershipChanges[requestID], position.index <= entry.index else { continue }
            membershipChanges[requestID] = nil
            let applied = position.index == entry.index && position.term == entry.term && entry.kind == .confChange
            output.responses.append((requestID, applied ? .confChangeApplied : .failure(.leaderChanged)))
        }
    }

    /// The state machine's view of a Raft membership change; a context that does not decode
    /// leaves the member without attributes (they are informational only).
    static func membershipChange(_ change: ConfChange) -> MembershipChange {
        switch change.kind {
        case .addVoter:
            return .addVoter(
                (try? ClusterMember(id: change.node, attributes: change.context, isLearner: false)) ?? ClusterMember(id: change.node))
        case .addLearner:
            return .addLearner(
                (try? ClusterMember(id: change.node, attributes: change.context, isLearner: true))
                    ?? ClusterMember(id: change.node, isLearner: true))
        case .removeNode:
            return .remove(id: change.node)
        }
    }

    /// A proposal whose index was taken by another entry can never commit: a client write is
    /// proposed again (it is pending until the batch ends: ``finishBatch()`` proposes it), anything
    /// else fails with "leader changed".
    private mutating func failDisplacedProposals(at position: LogPosition, into output: inout BatchOutput) {
        for requestID in proposals.keys.sorted() {
            guard let proposed = proposals[requestID]!, proposed.index <= position.index else { continue }
            proposals[requestID] = nil
            if proposedEntries[requestID] != nil && keepAlives[requestID] == nil {
                parked.append((requestID, now + (configuration.leaderWaitMilliseconds ?? 2 * configuration.electionMilliseconds)))
                continue
            }
            keepAlives[requestID] = nil
            output.responses.append((requestID, .failure(.leaderChanged)))
        }
    }

    private mutating func noteLeaseChanges(_ request: StateRequest, response: StateResponse) {
        switch (request, response) {
        case (.leaseGrant, .leaseGrant(let granted)):
            if let lease = store.lease(granted.id) { leases.granted(lease, now: now) }
        case (.leaseRevoke(let revoke), _):
            leases.revoked(id: revoke.id)
        case (.leaseCheckpoint(let checkpoint), _):
            leases.checkpointed(checkpoint.checkpoints)
        default:
            break
        }
    }

    private mutating func leadershipChanged(to softState: SoftState, output: inout BatchOutput) {
        let isLeader = softState.role == .leader
        if isLeader && !wasLeader {
            leases.promote(leases: store.leases(), now: now, extend: configuration.electionMilliseconds)
        } else if !isLeader && wasLeader {
            leases.demote()
        }
        wasLeader = isLeader
        // Reads waiting for confirmation went to a leader that is gone (a leader drops its
        // pending reads when it steps down): answer them so clients retry.
        for context in reads.keys.sorted() {
            output.responses.append((reads.removeValue(forKey: context)!.requestID, .failure(.leaderChanged)))
        }
    }

    private mutating func serveConfirmedReads(into output: inout BatchOutput) {
        var waiting: [(index: LogIndex, read: PendingRead)] = []
        for (index, read) in readsAwaitingApply {
            guard index <= raft.appliedIndex else {
                waiting.append((index, read))
                continue
            }
            switch read {
            case .range(let requestID, let request): output.responses.append((requestID, serveRange(request)))
            case .txn(let requestID, let request): output.responses.append((requestID, serveReadOnlyTxn(request)))
            case .keepAlive(let requestID, let lease): renew(lease, for: requestID, into: &output)
            case .timeToLive(let requestID, let lease, let keys):
                output.responses.append((requestID, raft.role == .leader ? timeToLive(of: lease, keys: keys) : .failure(.leaderChanged)))
            case .membershipApplied(let requestID): output.responses.append((requestID, .confChangeApplied))
            }
        }
        readsAwaitingApply = waiting
    }

    private func serveRange(_ request: RangeRequest) -> ClientResponse {
        do throws(StateError) {
            let pending = try store.planRange(request)
            if let limit = configuration.maxValuesReadInPlace, pending.unreadValueCount > limit { return .pendingRange(pending) }
            return .range(pending.finish(reading: store.backendReader))
        } catch {
            return .failure(.state(error))
        }
    }

    /// The transaction `request` holds (possibly with credentials) when it writes nothing.
    static func readOnlyTxn(in request: StateRequest) -> TxnRequest? {
        switch request {
        case .txn(let txn) where txn.isReadOnly: txn
        case .authorized(_, let inner): readOnlyTxn(in: inner)
        default: nil
        }
    }

    /// Serves a read-only transaction (``readOnlyTxn(in:)``) from the state as applied now,
    /// checking its credentials first; its ranges' values are read as ``serveRange(_:)`` reads
    /// them.
    private func serveReadOnlyTxn(_ request: StateRequest) -> ClientResponse {
        do throws(StateError) {
            if case .authorized(let credentials, let inner) = request { try store.checkPermission(credentials, for: inner) }
            let pending = try store.planReadOnlyTxn(Self.readOnlyTxn(in: request)!)
            if let limit = configuration.maxValuesReadInPlace, pending.unreadValueCount > limit { return .pendingTxn(pending) }
            return .write(.txn(pending.finish(reading: store.backendReader)))
        } catch {
            return .failure(.state(error))
        }
    }

    private mutating func maybeSnapshot(into output: inout BatchOutput) {
        let applied = raft.appliedIndex
        guard configuration.snapshotCount > 0, applied >= lastSnapshotIndex + configuration.snapshotCount else { return }
        // Only metadata: the state at this index is written in the same batch as the snapshot
        // record, so the log can go. The data is encoded when a follower needs it
        // (provideSnapshotIfNeeded), as etcd sends its backend rather than storing a copy.
        let snapshot = Snapshot(metadata: raft.appliedSnapshotMetadata, data: [])
        raft.compact(with: snapshot, retainingEntries: configuration.retainedEntries)
        lastSnapshotIndex = applied
        output.snapshot = snapshot
        output.compactedThrough = applied > configuration.retainedEntries ? applied - configuration.retainedEntries : nil
    }
}
