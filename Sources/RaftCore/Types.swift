import Primitives

/// Identifies a member of a Raft group. Zero means "no node".
public typealias NodeID = UInt64

/// A Raft term. Terms only grow; zero is the term before any election.
public typealias Term = UInt64

/// A position in the replicated log. The first entry has index 1; zero means "before the log".
public typealias LogIndex = UInt64

/// The sentinel meaning "no node", used for an unknown leader or an unset vote.
public let noNode: NodeID = 0

/// One entry of the replicated log.
public struct LogEntry: Sendable, Hashable {
    /// What an entry carries.
    public enum Kind: UInt8, Sendable, Hashable {
        /// Opaque application data (an empty one is the no-op a new leader appends).
        case normal = 0
        /// An encoded ``ConfChange``; it takes effect when it is applied.
        case confChange = 1
    }

    /// The term of the leader that created the entry.
    public var term: Term
    /// The entry's position in the log.
    public var index: LogIndex
    /// Whether the data is application data or a membership change.
    public var kind: Kind
    /// The payload.
    public var data: [UInt8]

    /// Creates an entry.
    public init(term: Term, index: LogIndex, kind: Kind = .normal, data: [UInt8] = []) {
        self.term = term
        self.index = index
        self.kind = kind
        self.data = data
    }

    /// The number of bytes the entry counts for in size limits.
    public var byteSize: Int { data.count + 24 }
}

/// The part of a member's state that must be durable before it answers anyone.
public struct HardState: Sendable, Hashable {
    /// The latest term this member has seen.
    public var term: Term
    /// The candidate this member voted for in `term`, or ``noNode``.
    public var vote: NodeID
    /// The highest log index known to be committed.
    public var commit: LogIndex

    /// Creates a hard state.
    public init(term: Term = 0, vote: NodeID = noNode, commit: LogIndex = 0) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }
}

/// The membership of a group: who votes and who only replicates.
public struct ConfState: Sendable, Hashable {
    /// Members whose votes and acknowledgements count toward quorums, sorted ascending.
    public var voters: [NodeID]
    /// Non-voting members that receive the log, sorted ascending.
    public var learners: [NodeID]

    /// Creates a membership.
    public init(voters: [NodeID] = [], learners: [NodeID] = []) {
        self.voters = voters.sorted()
        self.learners = learners.sorted()
    }

    /// Whether `id` is a voter or a learner.
    public func contains(_ id: NodeID) -> Bool {
        voters.contains(id) || learners.contains(id)
    }

    /// The voters and learners, sorted ascending.
    public var members: [NodeID] { (voters + learners).sorted() }

    /// The number of voters that forms a majority.
    public var quorum: Int { voters.count / 2 + 1 }
}

/// A single-member change of the group's membership.
///
/// Changes are applied one at a time: a leader accepts a new change only after it has applied
/// the previous one and an entry of its own term (Ongaro's fix for single-server changes).
public struct ConfChange: Sendable, Hashable {
    /// The kind of change.
    public enum Kind: UInt8, Sendable, Hashable {
        /// Adds a voter, or promotes an existing learner to voter.
        case addVoter = 0
        /// Adds a non-voting learner.
        case addLearner = 1
        /// Removes a voter or learner (a leader that removes itself steps down).
        case removeNode = 2
    }

    /// What to do.
    public var kind: Kind
    /// The member it is done to.
    public var node: NodeID
    /// Opaque data for the application (for example the member's addresses).
    public var context: [UInt8]

    /// Creates a change.
    public init(_ kind: Kind, node: NodeID, context: [UInt8] = []) {
        self.kind = kind
        self.node = node
        self.context = context
    }

    /// Returns this change as entry data.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.append(kind.rawValue)
        out.appendLittleEndian(node)
        out.appendUInt32LengthPrefixed(context)
        return out
    }

    /// Decodes a change from entry data, or returns nil if the data is malformed.
    public init?(decoding bytes: [UInt8]) {
        var reader = ByteReader(bytes)
        guard let raw = try? reader.readByte(), let kind = Kind(rawValue: raw),
            let node = try? reader.readLittleEndianUInt64(), let context = try? reader.readUInt32LengthPrefixed(),
            reader.isAtEnd
        else { return nil }
        self.init(kind, node: node, context: context)
    }
}

/// Where a snapshot sits in the log, and the membership at that point.
public struct SnapshotMetadata: Sendable, Hashable {
    /// The last log index the snapshot covers.
    public var index: LogIndex
    /// The term of the entry at `index`.
    public var term: Term
    /// The membership after applying everything up to `index`.
    public var confState: ConfState

    /// Creates snapshot metadata.
    public init(index: LogIndex, term: Term, confState: ConfState) {
        self.index = index
        self.term = term
        self.confState = confState
    }
}

/// A state-machine snapshot: its metadata and the application's opaque bytes.
public struct Snapshot: Sendable, Hashable {
    /// Where the snapshot sits in the log.
    public var metadata: SnapshotMetadata
    /// The state machine's serialized state at `metadata.index`.
    public var data: [UInt8]

    /// Creates a snapshot.
    public init(metadata: SnapshotMetadata, data: [UInt8]) {
        self.metadata = metadata
        self.data = data
    }
}

/// One piece of a snapshot in transit from a leader to a follower.
public struct SnapshotChunk: Sendable, Hashable {
    /// The snapshot this chunk belongs to.
    public var metadata: SnapshotMetadata
    /// The byte offset of `data` within the snapshot's data.
    public var offset: UInt64
    /// The bytes of this chunk.
    public var data: [UInt8]
    /// Whether this chunk ends the snapshot.
    public var isLast: Bool

    /// Creates a chunk.
    public init(metadata: SnapshotMetadata, offset: UInt64, data: [UInt8], isLast: Bool) {
        self.metadata = metadata
        self.offset = offset
        self.data = data
        self.isLast = isLast
    }
}

/// A message between members of a group.
///
/// One flat type serves every kind, as in etcd-io/raft, so that a transport encodes one shape.
/// Which fields matter depends on ``kind``; each case documents its fields.
public struct RaftMessage: Sendable, Hashable {
    /// The kinds of message.
    public enum Kind: UInt8, Sendable, Hashable, CaseIterable {
        /// Leader → follower. `index`/`logTerm`: the entry before `entries`; `commit`: the leader's commit.
        case appendEntries = 0
        /// Follower → leader. Accepted: `index` is the follower's last matching index. Rejected:
        /// `index` is the rejected `index`, `rejectHint`/`logTerm` point where to retry.
        case appendResponse = 1
        /// Candidate → voter. `index`/`logTerm`: the candidate's last entry; `context` 1 marks a
        /// leader transfer, which voters grant even while they hear from a leader.
        case requestVote = 2
        /// Voter → candidate. `reject` says whether the vote was granted.
        case voteResponse = 3
        /// Pre-candidate → voter, for the term the sender would campaign in (`term`); changes no state.
        case requestPreVote = 4
        /// Voter → pre-candidate.
        case preVoteResponse = 5
        /// Leader → follower. `commit`: the commit index the follower may adopt; `context`: the
        /// leader's read-confirmation round.
        case heartbeat = 6
        /// Follower → leader, echoing `context`.
        case heartbeatResponse = 7
        /// Leader → follower: `snapshot` holds one chunk of a snapshot.
        case installSnapshot = 8
        /// Follower → leader: `index` is the snapshot's index and `rejectHint` the next byte
        /// offset the follower expects (`reject` when a chunk arrived out of order).
        case snapshotResponse = 9
        /// Leader → transfer target: campaign now.
        case timeoutNow = 10
        /// Follower → leader: confirm a linearizable read; `context` is the requester's identifier.
        case readIndex = 11
        /// Leader → follower: `index` is the read index for the request `context`.
        case readIndexResponse = 12
        /// Follower → leader: a forwarded proposal in `entries`.
        case propose = 13
        /// Follower → leader: transfer leadership to the member in `context`.
        case transferLeader = 14
    }

    /// What the message is.
    public var kind: Kind
    /// The sender.
    public var from: NodeID
    /// The recipient.
    public var to: NodeID
    /// The sender's term (for a pre-vote request, the term it would campaign in).
    public var term: Term
    /// A log term; its meaning depends on ``kind``.
    public var logTerm: Term
    /// A log index; its meaning depends on ``kind``.
    public var index: LogIndex
    /// Entries carried by the message.
    public var entries: [LogEntry]
    /// A commit index.
    public var commit: LogIndex
    /// Whether the request was refused.
    public var reject: Bool
    /// Where a refused request should be retried.
    public var rejectHint: UInt64
    /// A request identifier; its meaning depends on ``kind``.
    public var context: UInt64
    /// A snapshot chunk, for ``Kind/installSnapshot``.
    public var snapshot: SnapshotChunk?

    /// Creates a message.
    public init(
        kind: Kind, from: NodeID, to: NodeID, term: Term, logTerm: Term = 0, index: LogIndex = 0,
        entries: [LogEntry] = [], commit: LogIndex = 0, reject: Bool = false, rejectHint: UInt64 = 0,
        context: UInt64 = 0, snapshot: SnapshotChunk? = nil
    ) {
        self.kind = kind
        self.from = from
        self.to = to
        self.term = term
        self.logTerm = logTerm
        self.index = index
        self.entries = entries
        self.commit = commit
        self.reject = reject
        self.rejectHint = rejectHint
        self.context = context
        self.snapshot = snapshot
    }
}

/// A confirmed linearizable read: serve it once the state machine has applied `index`.
public struct ReadState: Sendable, Hashable {
    /// The commit index at the time the read was confirmed.
    public var index: LogIndex
    /// The identifier the caller passed to ``RaftNode/readIndex(context:)``.
    public var context: UInt64

    /// Creates a read state.
    public init(index: LogIndex, context: UInt64) {
        self.index = index
        self.context = context
    }
}

/// A member's role.
public enum RaftRole: String, Sendable, Hashable {
    /// Follows a leader, or waits for one.
    case follower
    /// Asks for pre-votes before starting a real election (PreVote).
    case preCandidate
    /// Asks for votes in a new term.
    case candidate
    /// Replicates the log and decides commits.
    case leader
}

/// Volatile state the shell may want to observe; reported in ``Ready`` when it changes.
public struct SoftState: Sendable, Hashable {
    /// The current leader, or ``noNode``.
    public var leader: NodeID
    /// This member's role.
    public var role: RaftRole
}

/// Why a proposal, read or membership change was not accepted.
public enum ProposalError: Error, Sendable, Hashable, CustomStringConvertible {
    /// This member is not the leader; `leader` is the one it knows of, or ``noNode``.
    case notLeader(leader: NodeID)
    /// The leader is handing leadership over and accepts nothing until that ends.
    case transferInProgress
    /// A membership change is still being applied; propose the next after it.
    case confChangePending
    /// The membership change is not valid for the current membership.
    case invalidConfChange(String)
    /// Too many bytes are proposed but not yet committed (the group may have lost its quorum).
    case tooManyUncommittedBytes

    public var description: String {
        switch self {
        case .notLeader(let leader):
            leader == noNode ? "not leader, no leader is known" : "not leader, leader is \(leader)"
        case .transferInProgress: "leadership transfer in progress"
        case .confChangePending: "a membership change is still pending"
        case .invalidConfChange(let reason): "invalid membership change: \(reason)"
        case .tooManyUncommittedBytes: "too many uncommitted bytes"
        }
    }
}

/// The position of a proposed entry: it is committed when the entry at `index` has `term`.
public struct LogPosition: Sendable, Hashable {
    /// The entry's term.
    public var term: Term
    /// The entry's index.
    public var index: LogIndex

    /// Creates a position.
    public init(term: Term, index: LogIndex) {
        self.term = term
        self.index = index
    }
}

extension RaftMessage {
    /// Whether the entries of an append are shaped as a leader sends them: consecutive indexes
    /// right after `index`, with terms that never decrease, from `logTerm` up to the sender's
    /// term. Any other message kind passes. A node drops an append that fails this check, as no
    /// leader sends one.
    public var hasConsistentEntries: Bool {
        guard kind == .appendEntries else { return true }
        var expectedIndex = index
        var lowestTerm = logTerm
        for entry in entries {
            guard expectedIndex < LogIndex.max, entry.index == expectedIndex + 1, entry.term >= lowestTerm, entry.term <= term
            else { return false }
            expectedIndex = entry.index
            lowestTerm = entry.term
        }
        return true
    }
}
