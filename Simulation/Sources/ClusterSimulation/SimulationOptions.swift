import Primitives
@_spi(Testing) import RaftCore
@_spi(Testing) import ReplicatedMember

/// Everything that shapes one simulated run. ``init(seed:nodeCount:)`` draws the fault mix from the
/// seed itself ("swarm" testing, as TigerBeetle's VOPR does), so a sweep covers calm runs and
/// hostile ones; tests may then override any field.
///
/// Times are microseconds of simulated time.
public struct SimulationOptions: Sendable, Hashable {
    /// The seed every random choice of the run derives from.
    public var seed: UInt64
    /// Members of the founding group (3 or 5 in the sweeps).
    public var nodeCount: Int
    /// Length of one tick (the heartbeat interval).
    public var tickInterval: UInt64 = 100_000
    /// Election timeout in ticks.
    public var electionTicks: Int = 10
    /// Heartbeat interval in ticks (below half the election timeout).
    public var heartbeatTicks: Int = 1
    /// Most unacknowledged appends a leader keeps in flight to one follower.
    public var maxInflightMessages: Int = 16
    /// How often the leader checkpoints remaining lease TTLs, in milliseconds (nil: the
    /// member's default, five minutes, which no run reaches).
    public var leaseCheckpointMilliseconds: Int64?
    /// Probability that a batch's fsync stalls (20 ms to 1 s longer than drawn).
    public var fsyncStallRate = 0.0
    /// Probability per fault action that a running member's clock jumps by 1–3 ticks: forward
    /// (it processes them at once) or, as often, backward (its next ticks wait). The lease check
    /// allows for the forward jumps.
    public var clockJumpRate = 0.0
    /// How far each member's clock may run fast or slow, as a fraction (0.05 = ±5%).
    public var clockSkew: Double = 0.05
    /// Raft settings switches.
    public var preVote = true
    /// See ``RaftSettings/checkQuorum``.
    public var checkQuorum = true
    /// See ``RaftSettings/forwardProposals``.
    public var forwardProposals = false
    /// See ``MemberConfiguration/leaderWaitMilliseconds`` (nil: the default).
    public var leaderWaitMilliseconds: Int64?
    /// A deliberately broken rule, to prove the checker catches it.
    @_spi(Testing) public var mutation: RaftMutation?
    /// A deliberately broken member rule, to prove the checker catches it.
    @_spi(Testing) public var memberMutation: MemberMutation?
    /// A deliberate bug in the simulated clients' recipes (testing only).
    @_spi(Testing) public var clientMutation: ClientMutation?

    // Network.
    /// Smallest one-way message delay.
    public var minDelay: UInt64 = 100
    /// Largest one-way message delay (reordering follows from the spread).
    public var maxDelay: UInt64 = 5_000
    /// Probability a message is lost.
    public var dropRate = 0.0
    /// Probability a message is delivered twice.
    public var duplicateRate = 0.0
    /// Most entry bytes per append message (a tiny value sends one entry per message, which
    /// lets acknowledgements of old-term entries arrive before the new leader's own entry).
    public var maxBytesPerMessage = 4_096

    // Disk.
    /// Smallest time to make a batch durable (fsync).
    public var minSyncLatency: UInt64 = 200
    /// Largest time to make a batch durable.
    public var maxSyncLatency: UInt64 = 3_000
    /// Time to apply committed entries.
    public var applyLatency: UInt64 = 100

    // Faults during the fault phase.
    /// Simulated length of the fault phase.
    public var faultPhaseDuration: UInt64 = 10_000_000
    /// Mean time between fault actions (crash, partition, pause, heal…); 0 disables faults.
    public var meanTimeBetweenFaults: UInt64 = 700_000
    /// Whether faults may take down or cut off a majority at once (quorum loss).
    public var allowQuorumLoss = true
    /// Relative weights of fault kinds: crash, partition, asymmetric partition, pause, quick
    /// restart (a crash followed by a restart within milliseconds, as a supervisor would do),
    /// and membership change (add a learner, promote it, remove a voter; 0 unless drawn).
    public var faultWeights: [Int] = [3, 3, 2, 1, 2, 0]

    // Log compaction.
    /// Applied entries between snapshots on each member; 0 disables snapshots.
    public var snapshotInterval: UInt64 = 50
    /// Entries kept behind a snapshot.
    public var retainedEntries: UInt64 = 5
    /// Snapshot chunk size (small, so that transfers take several chunks).
    public var snapshotChunkBytes: Int = 8_192
    /// The leader's auto-compaction of history, if any (drawn for some seeds).
    public var autoCompaction: AutoCompaction?

    // Disk faults.
    /// Torn writes, fsync errors, full disks, bit flips, lost and misdirected writes, if any
    /// (drawn for some seeds; see ``StorageFaultRates``).
    public var storageFaults: StorageFaultRates?

    // Workload.
    /// Mean pause of each client between getting an answer and sending its next request
    /// (puts, linearizable gets, deletes and compare-and-swaps on a few keys); 0 disables the
    /// background clients.
    public var clientThinkTime: UInt64 = 5_000
    /// Probability of a leadership transfer per fault action.
    public var transferRate = 0.1
    /// The client network: each request and each answer takes up to this long (uniformly
    /// drawn, in microseconds) between a client and a member; 0 delivers them at once.
    public var clientMaxDelay: UInt64 = 0
    /// The client network: probability that a request or an answer is lost during the fault
    /// phase (the client then times out, with an unknown outcome).
    public var clientLossRate = 0.0
    /// How long a client waits before calling an outcome unknown.
    public var requestTimeout: UInt64 = 2_000_000
    /// How long a member lets a request wait before it answers etcd's timeout error and
    /// forgets the request (``MemberConfiguration/requestTimeoutMilliseconds``), in microseconds
    /// of the member's clock: shorter than the client's patience, so members answer timeouts as
    /// etcd's server does.
    public var memberRequestTimeout: UInt64 = 1_500_000
    /// How long after its first attempt a client keeps retrying a request that members refused
    /// before proposing it (not leader, no leader, down), or a read that got no answer.
    public var clientRetryBudget: UInt64 = 4_000_000
    /// Whether the key/value clients write in write sessions and retry writes whose outcome is
    /// unknown (exactly-once writes). Without, they write as etcd's clients do: an unknown
    /// outcome stays unknown, and every write's interval ends at its first attempt's answer.
    public var writeSessions = true
    /// Without write sessions: whether clients send a put whose outcome is unknown again (once),
    /// as an application retrying a timeout does. The put may then apply twice; the history
    /// counts the earlier attempt as a write of its own that may have taken effect.
    public var retriesUnknownWrites = false
    /// The one-character prefix of every value the key/value clients write (`v1`, `v2`, …). Two
    /// runs that differ only in it send the same messages at the same times with different
    /// bytes: the determinism tests use it to show the trace hash covers message payloads.
    @_spi(Testing) public var valuePrefix: Character = "v"

    /// Whether each read's index is compared with the writes acknowledged before it began.
    /// Turning it off leaves stale reads to the linearizability checker alone (to prove it).
    public var checksReadIndexes = true

    /// Whether the checker also tests Raft's rules directly where it can (a restarted member
    /// against what it had synced, the leader commit rule, lease renewals only by a confirmed
    /// leader). Turning it off leaves such bugs to the checks of their consequences (election
    /// safety, leader completeness, lease safety), which scripted scenarios prove that way.
    public var checksProtocolRules = true
    /// The linearizability checker's step budget per key; a key whose search runs out of it
    /// fails the run.
    public var linearizabilityStepBudget = 20_000_000

    // Liveness.
    /// After the faults heal, how long the group has to elect a leader, commit a fresh write
    /// and bring every member up to date.
    public var livenessBound: UInt64 = 20_000_000

    /// Creates options for `seed`, drawing the fault mix from it.
    public init(seed: UInt64, nodeCount: Int? = nil) {
        self.seed = seed
        var rng = SeededGenerator(seed: seed ^ 0x5EED_0F_F4_17)
        self.nodeCount = nodeCount ?? (rng.chance(0.5) ? 3 : 5)
        dropRate = [0, 0, 0.01, 0.05, 0.15][Int(rng.next(below: 5))]
        duplicateRate = [0, 0.01, 0.05][Int(rng.next(below: 3))]
        maxDelay = [1_000, 5_000, 20_000, 60_000][Int(rng.next(below: 4))]
        maxSyncLatency = [500, 3_000, 10_000][Int(rng.next(below: 3))]
        meanTimeBetweenFaults = [500_000, 1_000_000, 2_000_000][Int(rng.next(below: 3))]
        allowQuorumLoss = rng.chance(0.5)
        snapshotInterval = [0, 50, 200, 1_000][Int(rng.next(below: 4))]
        retainedEntries = [0, 5, 30][Int(rng.next(below: 3))]
        clockSkew = [0, 0.05, 0.2][Int(rng.next(below: 3))]
        forwardProposals = rng.chance(0.3)
        maxBytesPerMessage = rng.chance(0.3) ? 1 : 4_096
        autoCompaction = rng.chance(0.3) ? .periodic(retentionMilliseconds: [300, 2_000][Int(rng.next(below: 2))]) : nil
        if rng.chance(0.5) { faultWeights[5] = 2 }
        storageFaults = StorageFaultRates.draw(seed: seed)
        drawKnobs(seed: seed)
    }

    /// Draws the members' settings ("swarm the knobs", in the spirit of FoundationDB's
    /// BUGGIFY) from a generator of their own: PreVote and CheckQuorum each on in three seeds of
    /// four, the election timeout (5, 10 or 20 ticks) and heartbeat (1–3 ticks, below half of
    /// it), the inflight window (1, 2, 16 or 256 appends; at least 16 with one entry per
    /// append), the snapshot chunk size (1 KiB, 8 KiB or 1 MiB), the lease checkpoint interval
    /// (0.5 s, 2 s or the default), fsync stalls (none, 0.1% or 0.4% of batches: members make hundreds of
    /// batches a second) and clock jumps
    /// (none, or 20% of fault actions); and the client network (requests and answers delayed up
    /// to 0, 1 or 5 ms, and lost with probability 0, 0.2% or 1%); and in one seed of five, clients
    /// without write sessions that retry a put whose outcome is unknown.
    mutating func drawKnobs(seed: UInt64) {
        var rng = SeededGenerator(seed: seed ^ 0xB0661F7)
        preVote = rng.chance(0.75)
        checkQuorum = rng.chance(0.75)
        electionTicks = [5, 10, 10, 20][Int(rng.next(below: 4))]
        heartbeatTicks = min(1 + Int(rng.next(below: 3)), (electionTicks - 1) / 2)
        maxInflightMessages = [1, 2, 16, 256][Int(rng.next(below: 4))]
        // One entry per append and one append in flight would take a lagging follower one
        // round trip per entry to catch up: more than the liveness bound allows.
        if maxBytesPerMessage == 1 { maxInflightMessages = max(maxInflightMessages, 16) }
        snapshotChunkBytes = [1_024, 8_192, 1 << 20][Int(rng.next(below: 3))]
        leaseCheckpointMilliseconds = [500, 2_000, nil][Int(rng.next(below: 3))]
        fsyncStallRate = [0, 0.001, 0.004][Int(rng.next(below: 3))]
        clockJumpRate = rng.chance(0.5) ? 0.2 : 0
        clientMaxDelay = [0, 1_000, 5_000][Int(rng.next(below: 3))]
        clientLossRate = [0, 0, 0.002, 0.01][Int(rng.next(below: 4))]
        if rng.chance(0.2) {
            writeSessions = false
            retriesUnknownWrites = true
        }
    }

    /// The drawn settings and fault mix in one line (printed with `simulate --verbose`).
    public var knobs: String {
        let switches = "preVote \(preVote ? "on" : "off") checkQuorum \(checkQuorum ? "on" : "off")"
        let timing = "election \(electionTicks) heartbeat \(heartbeatTicks) ticks, skew \(clockSkew) clock jumps \(clockJumpRate)"
        let replication =
            "inflight \(maxInflightMessages) bytes/append \(maxBytesPerMessage) forward \(forwardProposals) snapshot every \(snapshotInterval) keep \(retainedEntries) chunk \(snapshotChunkBytes)"
        let checkpoint = leaseCheckpointMilliseconds.map { "\($0) ms" } ?? "default"
        let leases = "lease checkpoint \(checkpoint) auto-compaction \(autoCompaction != nil)"
        let network =
            "loss \(dropRate) dup \(duplicateRate) delay ≤\(maxDelay / 1_000) ms fsync ≤\(maxSyncLatency / 1_000) ms stalls \(fsyncStallRate)"
        let clients =
            "client delay ≤\(clientMaxDelay / 1_000) ms loss \(clientLossRate) sessions \(writeSessions) retries unknown \(retriesUnknownWrites)"
        let faults =
            "faults every \(meanTimeBetweenFaults / 1_000) ms quorum loss \(allowQuorumLoss) membership \(faultWeights[5] > 0) disk \(storageFaults != nil)"
        return "knobs: \(switches) | \(timing) | \(replication) | \(leases) | \(network) | \(clients) | \(faults)"
    }

    /// A run with no faults at all and the members' default settings instead of drawn knobs
    /// (for measuring and for scenario tests that script their own).
    public static func calm(seed: UInt64, nodeCount: Int) -> SimulationOptions {
        var options = SimulationOptions(seed: seed, nodeCount: nodeCount)
        options.preVote = true
        options.checkQuorum = true
        options.electionTicks = 10
        options.heartbeatTicks = 1
        options.maxInflightMessages = 16
        options.snapshotChunkBytes = 8_192
        options.leaseCheckpointMilliseconds = nil
        options.fsyncStallRate = 0
        options.clockJumpRate = 0
        options.clientMaxDelay = 0
        options.clientLossRate = 0
        options.dropRate = 0
        options.duplicateRate = 0
        options.maxDelay = 2_000
        options.meanTimeBetweenFaults = 0
        options.transferRate = 0
        options.autoCompaction = nil
        options.storageFaults = nil
        return options
    }
}
