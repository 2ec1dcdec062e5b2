/// How a ``RaftNode`` behaves. Times are counted in ticks: the shell calls ``RaftNode/tick()``
/// at a fixed interval (the server's heartbeat interval), so no clock enters the core.
public struct RaftSettings: Sendable, Hashable {
    /// This member's identifier (never ``noNode``).
    public var id: NodeID
    /// Ticks without hearing from a leader before a follower starts an election. The actual
    /// timeout is drawn from `electionTicks..<2*electionTicks` for each election.
    public var electionTicks: Int = 10
    /// Ticks between a leader's heartbeats. Must be less than `electionTicks`.
    public var heartbeatTicks: Int = 1
    /// Whether a member asks for pre-votes before disrupting the group with a new term (§9.6).
    public var preVote: Bool = true
    /// Whether a leader steps down after an election timeout without hearing from a quorum, and
    /// voters that hear from a live leader refuse to vote for others.
    public var checkQuorum: Bool = true
    /// Whether followers forward proposals to the leader instead of refusing them.
    public var forwardProposals: Bool = false
    /// The most entry bytes in one append message (at least one entry is always sent).
    public var maxBytesPerMessage: Int = 1 << 20
    /// The most append messages in flight to one follower in the replicate state.
    public var maxInflightMessages: Int = 256
    /// The most bytes of one snapshot chunk.
    public var maxSnapshotChunkBytes: Int = 1 << 20
    /// The most snapshot chunks in flight to one follower.
    public var maxInflightSnapshotChunks: Int = 4
    /// The most bytes of proposals the leader holds uncommitted before refusing new ones.
    public var maxUncommittedBytes: Int = 64 << 20
    /// The seed of the generator that draws election timeouts.
    public var randomSeed: UInt64 = 0

    /// A deliberately broken rule, used only to prove that the simulator's checker catches it.
    @_spi(Testing) public var mutation: RaftMutation?

    /// Creates settings for member `id` with defaults for everything else.
    public init(id: NodeID) {
        self.id = id
        self.randomSeed = id
    }

    /// Returns a message naming what is wrong with these settings, or nil if they are valid.
    public func validationError() -> String? {
        if id == noNode { return "id must not be 0" }
        if heartbeatTicks < 1 { return "heartbeatTicks must be at least 1" }
        if electionTicks <= heartbeatTicks { return "electionTicks must be greater than heartbeatTicks" }
        if maxInflightMessages < 1 { return "maxInflightMessages must be at least 1" }
        if maxSnapshotChunkBytes < 1 || maxInflightSnapshotChunks < 1 { return "snapshot chunking limits must be positive" }
        return nil
    }
}

/// A deliberately broken Raft rule. These exist only so tests can show that the simulator's
/// checkers find real violations; production settings never set one.
@_spi(Testing) public enum RaftMutation: String, Sendable, Hashable, CaseIterable {
    /// Commit an entry of an earlier term by counting replicas (breaks Raft §5.4.2, "Figure 8").
    case commitOldTermByCounting
    /// Never make the vote durable: a restarted member may vote twice in one term.
    case forgetVoteOnRestart
    /// Answer read-index requests at once, without confirming leadership with a quorum.
    case readWithoutQuorumCheck
    /// Persist the term of the last log entry instead of the current term: a restarted member
    /// forgets the terms it saw (and may vote again in one).
    case forgetTermOnRestart
    /// On an append whose entries all match, drop the entries after them (a stale or reordered
    /// append then removes entries the member already acknowledged).
    case truncateOnStaleAppend
    /// Accept appends from a leader of an earlier term as if it were the current one.
    case acceptStaleTermAppend
    /// Grant votes (and pre-votes) without the election restriction (§5.4.1): a candidate whose
    /// log is less up to date may win.
    case voteForStaleLog
    /// Raise the term when starting a pre-election, as a plain election does.
    case preVoteBumpsTerm
    /// Install a received snapshot even when it is older than the commit index or the log
    /// already holds its last entry (the applied index moves back, newer entries are dropped).
    case installStaleSnapshot
    /// Take every acknowledgement's index as the follower's match and next index, even when a
    /// reordered older reply lowers them.
    case matchMovesBackwards
    /// Never step down for lack of a quorum (CheckQuorum on, but its leader side ignored).
    case ignoreCheckQuorum
    /// A leader that applies its own removal keeps leading.
    case removedLeaderKeepsLeading
    /// Accept a membership change while an earlier one is not yet applied (two changes in
    /// flight, each judged against a configuration the other is about to change).
    case concurrentConfChanges
    /// Send acknowledgements of entries and votes while the batch that stores them is still in
    /// flight (a crash then loses what the member promised).
    case acknowledgeBeforeStoring
    /// A leader counts its own log toward a commit up to its last entry, stored or not (etcd
    /// #14370's single-member bug, in any group size).
    case countOwnUnstoredEntries
}
