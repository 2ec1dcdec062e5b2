@_spi(Testing) import ClusterSimulation
@_spi(Testing) import RaftCore
@_spi(Testing) import ReplicatedMember
import StateMachine
import TestSupport
import Testing

/// Options for scripted scenarios: no background load or random faults, so the test decides
/// what happens; long election timeouts so that nothing campaigns unless the script says so.
private func scriptedOptions(seed: UInt64, nodes: Int = 3) -> SimulationOptions {
    var options = SimulationOptions.calm(seed: seed, nodeCount: nodes)
    options.clientThinkTime = 0
    options.snapshotInterval = 0
    return options
}

/// Starts a group and waits for its first leader.
private func startGroup(
    seed: UInt64, nodes: Int = 3, configure: (inout SimulationOptions) -> Void = { _ in }
) -> (sim: Simulation, leader: NodeID) {
    var options = scriptedOptions(seed: seed, nodes: nodes)
    configure(&options)
    let sim = Simulation(options: options)
    #expect(sim.run(until: { $0.leader() != nil }, timeout: 5_000_000), "no leader within 5 s")
    return (sim, sim.leader() ?? noNode)
}

/// Campaigns at `id` until it leads (a campaign can lose to a vote already cast in that term).
@discardableResult
private func elect(_ id: NodeID, in sim: Simulation, attempts: Int = 10) -> Bool {
    for _ in 0..<attempts {
        sim.campaign(id)
        if sim.run(until: { $0.leader() == id }, timeout: 300_000) { return true }
    }
    return false
}

/// Writes at the leader until `count` writes are acknowledged; returns their operations.
private func acknowledgedWrites(_ count: Int, in sim: Simulation) -> [Int] {
    var done: [Int] = []
    while done.count < count, sim.violation == nil, let leader = sim.leader() {
        let op = sim.write(at: leader)
        sim.run(until: { $0.outcome(of: op) != .pending }, timeout: 1_000_000)
        if case .succeeded = sim.outcome(of: op) { done.append(op) }
    }
    return done
}

@Suite("Raft scenarios in the simulator", .onOwnThreads)
struct ScenarioTests {
    @Test("initial election: one leader, every member agrees and commits its first entry", arguments: [3, 5])
    func initialElection(nodes: Int) {
        let (sim, leader) = startGroup(seed: 11, nodes: nodes)
        let term = sim.node(leader)!.term
        sim.run(for: 500_000)
        for id in sim.memberIDs {
            let node = sim.node(id)!
            #expect(node.leader == leader, "member \(id) follows \(node.leader), not \(leader)")
            #expect(node.term == term)
            #expect(node.commitIndex == node.lastIndex, "member \(id) has uncommitted entries")
        }
        #expect(sim.violation == nil, "\(sim.violation!)")
    }

    @Test("leader crash: the rest elect a new leader and keep every acknowledged write")
    func leaderCrashAndReelection() {
        let (sim, first) = startGroup(seed: 12)
        #expect(acknowledgedWrites(20, in: sim).count == 20)
        sim.crash(first)
        #expect(sim.run(until: { $0.leader() != nil }, timeout: 5_000_000), "no new leader within 5 s")
        #expect(sim.leader() != first)
        #expect(acknowledgedWrites(20, in: sim).count == 20)
        sim.restart(first)
        #expect(sim.checkLiveness())
        #expect(sim.checkAcknowledgedWritesDurable())
        #expect(sim.violation == nil, "\(sim.violation!)")
    }

    @Test("quorum loss: with 2 of 3 down nothing commits and nothing acknowledged is lost")
    func quorumLoss() {
        let (sim, leader) = startGroup(seed: 13)
        #expect(acknowledgedWrites(30, in: sim).count == 30)
        let followers = sim.memberIDs.filter { $0 != leader }
        for id in followers { sim.crash(id) }
        let blocked = (0..<10).map { _ in sim.write(at: leader) }
        sim.run(for: 3_000_000)
        for op in blocked {
            if case .succeeded = sim.outcome(of: op) { Issue.record("write \(op) succeeded without a quorum") }
        }
        #expect(sim.leader() == nil, "CheckQuorum should depose a leader that hears from nobody")
        for id in followers { sim.restart(id) }
        #expect(sim.checkLiveness(), "no progress after the quorum came back")
        #expect(acknowledgedWrites(5, in: sim).count == 5)
        #expect(sim.checkAcknowledgedWritesDurable())
        #expect(sim.violation == nil, "\(sim.violation!)")
    }

    @Test("snapshotting: a member offline while the log is compacted catches up by snapshot")
    func snapshotCatchUp() {
        let (sim, leader) = startGroup(seed: 14) {
            $0.snapshotInterval = 20
            $0.retainedEntries = 0
        }
        let lagging = sim.memberIDs.first { $0 != leader }!
        sim.crash(lagging)
        #expect(acknowledgedWrites(120, in: sim).count == 120)
        #expect(
            sim.node(leader)!.firstIndex > sim.appliedIndex(of: lagging) + 1, "the leader should have compacted past the lagging member")
        sim.restart(lagging)
        #expect(sim.checkLiveness())
        #expect(sim.statistics.snapshotsInstalled >= 1, "the lagging member should have installed a snapshot")
        #expect(sim.appliedIndex(of: lagging) == sim.appliedIndex(of: leader))
        #expect(sim.checkAcknowledgedWritesDurable())
        #expect(sim.violation == nil, "\(sim.violation!)")
    }

    /// Builds Raft's Figure 8: member 1 (term 2) stores an entry at index k alone; member 2 (term
    /// 3) stores a different entry at k alone; member 1 comes back (term 4) and replicates its
    /// old entry at k to member 3, but not its own term-4 entry; then member 2 is elected again.
    /// Counting replicas of the old entry would commit it, and member 2 would overwrite it.
    private func figure8(mutation: RaftMutation?) -> Simulation {
        var options = scriptedOptions(seed: 8)
        options.checkQuorum = false
        options.preVote = false
        options.electionTicks = 50
        options.maxBytesPerMessage = 1
        options.mutation = mutation
        // The broken build must be caught by the check of the bug's consequence.
        options.checksProtocolRules = mutation == nil
        let sim = Simulation(options: options)
        #expect(elect(1, in: sim))
        sim.run(for: 200_000)
        let k = sim.node(1)!.lastIndex + 1
        sim.partition([1])
        sim.write(at: 1)
        sim.run(for: 50_000)
        #expect(sim.node(1)!.lastIndex == k)
        sim.crash(1)
        sim.healNetwork()
        sim.deliveryFilter = { !($0.from == 2 && ($0.kind == .appendEntries || $0.kind == .heartbeat)) }
        #expect(elect(2, in: sim))
        sim.run(for: 50_000)
        #expect(sim.node(2)!.term(at: k) == sim.node(2)!.term)
        sim.crash(2)
        sim.restart(1)
        var sentNewEntry = false
        sim.deliveryFilter = { message in
            guard message.from == 1, message.to == 3 else { return true }
            if message.kind == .heartbeat { return false }
            guard message.kind == .appendEntries, message.entries.contains(where: { $0.index > k }) else { return true }
            // Let the first append of the new entry through: member 3 rejects it (it lacks k),
            // which makes member 1 send k on its own. Every later one is lost.
            defer { sentNewEntry = true }
            return !sentNewEntry
        }
        #expect(elect(1, in: sim))
        sim.run(for: 200_000)
        sim.crash(1)
        sim.deliveryFilter = nil
        sim.restart(2)
        _ = elect(2, in: sim)
        sim.run(for: 500_000)
        return sim
    }

    @Test("Figure 8: an old-term entry is never committed by counting replicas")
    func figure8Safe() {
        let sim = figure8(mutation: nil)
        #expect(sim.violation == nil, "\(sim.violation!)")
        sim.restart(1)
        #expect(sim.checkLiveness())
        #expect(sim.violation == nil, "\(sim.violation!)")
    }

    @Test("Figure 8: the checker catches a build that commits old-term entries by counting")
    func figure8CaughtWhenBroken() {
        let sim = figure8(mutation: .commitOldTermByCounting)
        let property = sim.violation?.property
        #expect(
            property == "leader completeness" || property == "committed entries never change", "got \(String(describing: sim.violation))")
    }

    /// Member 3 votes for 2, crashes and restarts, then is asked by 1 for a vote in the same term.
    private func doubleVote(mutation: RaftMutation?) -> (sim: Simulation, firstTerm: Term) {
        var options = scriptedOptions(seed: 9)
        options.checkQuorum = false
        options.preVote = false
        options.electionTicks = 50
        options.mutation = mutation
        // The broken build must be caught by the check of the bug's consequence.
        options.checksProtocolRules = mutation == nil
        let sim = Simulation(options: options)
        #expect(elect(1, in: sim))
        sim.run(for: 200_000)
        sim.crash(1)
        // Member 2's leadership never reaches anyone, so member 3 knows of no leader.
        sim.deliveryFilter = { !($0.from == 2 && ($0.kind == .appendEntries || $0.kind == .heartbeat)) }
        #expect(elect(2, in: sim))
        let firstTerm = sim.node(2)!.term
        sim.run(for: 50_000)
        sim.crash(3)
        sim.restart(3)
        sim.restart(1)
        _ = elect(1, in: sim)
        return (sim, firstTerm)
    }

    @Test("votes are durable: a restarted member never votes twice in one term")
    func voteSurvivesRestart() {
        let (sim, firstTerm) = doubleVote(mutation: nil)
        #expect(sim.violation == nil, "\(sim.violation!)")
        #expect(sim.leader() == 1)
        #expect(sim.node(1)!.term > firstTerm, "member 1 must win only in a term after member 2's")
    }

    @Test("the checker catches a build that does not persist votes")
    func doubleVoteCaughtWhenBroken() {
        let sim = doubleVote(mutation: .forgetVoteOnRestart).sim
        #expect(sim.violation?.property == "election safety", "got \(String(describing: sim.violation))")
    }

    /// A leader cut off from its peers (CheckQuorum off, so it never notices) keeps receiving
    /// keep-alives while the others elect a new leader, which knows nothing of them.
    private func staleLeaderKeepAlives(mutation: MemberMutation?) -> (sim: Simulation, oldLeader: NodeID, lease: Int64?) {
        let (sim, leader) = startGroup(seed: 18) {
            $0.checkQuorum = false
            $0.memberMutation = mutation
            // The broken build must be caught by the check of the bug's consequence.
            $0.checksProtocolRules = mutation == nil
        }
        let grant = sim.grantLease(ttl: 3, at: leader)
        sim.run(until: { $0.outcome(of: grant) != .pending }, timeout: 1_000_000)
        let lease = sim.currentLease
        #expect(lease != nil, "the lease grant failed")
        sim.partition([leader])
        for _ in 0..<20 {
            sim.keepAlive(at: leader)
            sim.run(for: 500_000)
        }
        return (sim, leader, lease)
    }

    @Test("leases: a deposed leader that does not know it cannot extend a lease the new leader expires")
    func staleLeaderCannotRenewLeases() throws {
        let (sim, oldLeader, lease) = staleLeaderKeepAlives(mutation: nil)
        #expect(sim.violation == nil, "\(sim.violation!)")
        let newLeader = try #require(sim.memberIDs.first { $0 != oldLeader && sim.node($0)?.role == .leader })
        #expect(sim.member(newLeader)!.store.lease(try #require(lease)) == nil, "the new leader should have expired the lease")
        #expect(sim.member(oldLeader)!.store.lease(try #require(lease)) != nil, "the cut-off old leader cannot have applied the expiry")
    }

    @Test("leases: the checker catches a build that renews leases without confirming leadership")
    func staleLeaderRenewalCaughtWhenBroken() {
        let (sim, _, _) = staleLeaderKeepAlives(mutation: .renewLeaseWithoutConfirmingLeadership)
        #expect(sim.violation?.property == "lease safety", "got \(String(describing: sim.violation))")
    }

    @Test("PreVote: a partitioned member rejoining does not depose a healthy leader")
    func preVoteRejoin() {
        let (sim, leader) = startGroup(seed: 15)
        let term = sim.node(leader)!.term
        let isolated = sim.memberIDs.first { $0 != leader }!
        sim.partition([isolated])
        sim.run(for: 5_000_000)
        #expect(sim.node(isolated)!.term == term, "pre-votes must not raise the isolated member's term")
        sim.healNetwork()
        sim.run(for: 2_000_000)
        #expect(sim.leader() == leader)
        #expect(sim.node(leader)!.term == term)
        #expect(sim.violation == nil, "\(sim.violation!)")
    }

    @Test("without PreVote the same rejoin does depose the leader (the scenario has teeth)")
    func rejoinWithoutPreVoteDisrupts() {
        let (sim, leader) = startGroup(seed: 15) {
            $0.preVote = false
            $0.checkQuorum = false
        }
        let term = sim.node(leader)!.term
        let isolated = sim.memberIDs.first { $0 != leader }!
        sim.partition([isolated])
        sim.run(for: 5_000_000)
        #expect(sim.node(isolated)!.term > term)
        sim.healNetwork()
        sim.run(for: 2_000_000)
        #expect(sim.node(leader)!.term > term, "the rejoining member's higher term should have forced a new election")
        #expect(sim.violation == nil, "\(sim.violation!)")
    }

    /// The leader can send but hears nobody: its heartbeats keep the others from electing.
    private func leaderHearsNobody(checkQuorum: Bool) -> (sim: Simulation, oldLeader: NodeID) {
        let (sim, leader) = startGroup(seed: 16) { $0.checkQuorum = checkQuorum }
        for id in sim.memberIDs where id != leader { sim.cut(from: id, to: leader) }
        sim.run(for: 6_000_000)
        return (sim, leader)
    }

    @Test("CheckQuorum: a leader that hears nobody steps down and the others elect a new one")
    func checkQuorumAsymmetricPartition() {
        let (sim, oldLeader) = leaderHearsNobody(checkQuorum: true)
        let leader = sim.leader()
        #expect(leader != nil && leader != oldLeader, "expected a new leader, got \(String(describing: leader))")
        #expect(sim.node(oldLeader)!.role != .leader)
        #expect(acknowledgedWrites(5, in: sim).count == 5)
        sim.healNetwork()
        #expect(sim.checkLiveness())
        #expect(sim.violation == nil, "\(sim.violation!)")
    }

    @Test("without CheckQuorum the same partition leaves the group stuck with a deaf leader")
    func asymmetricPartitionWithoutCheckQuorumStalls() {
        let (sim, oldLeader) = leaderHearsNobody(checkQuorum: false)
        #expect(sim.leader() == oldLeader)
        let op = sim.write(at: oldLeader)
        sim.run(for: 1_000_000)
        #expect(sim.outcome(of: op) == .pending)
    }

    @Test("membership: add a learner, promote it, transfer leadership, remove members, under message loss")
    func membershipChangesUnderFaults() {
        let (sim, _) = startGroup(seed: 17) {
            $0.dropRate = 0.05
            $0.duplicateRate = 0.05
            $0.maxDelay = 10_000
        }
        _ = acknowledgedWrites(10, in: sim)

        func change(_ change: ConfChange) {
            for _ in 0..<20 {
                guard let leader = sim.leader() else {
                    sim.run(for: 200_000)
                    continue
                }
                let op = sim.proposeConfChange(change, at: leader)
                sim.run(until: { $0.outcome(of: op) != .pending }, timeout: 2_000_000)
                if case .succeeded = sim.outcome(of: op) { return }
                sim.run(for: 200_000)
            }
            Issue.record("membership change \(change) never applied")
        }

        let newcomer = sim.addMember()
        change(ConfChange(.addLearner, node: newcomer))
        #expect(sim.run(until: { $0.node(newcomer)!.confState.learners.contains(newcomer) }, timeout: 5_000_000))
        #expect(sim.node(newcomer)!.role == .follower)
        change(ConfChange(.addVoter, node: newcomer))
        _ = acknowledgedWrites(10, in: sim)
        #expect(sim.run(until: { $0.node(newcomer)!.confState.voters.contains(newcomer) }, timeout: 5_000_000))

        // The leader removes itself: it must step down and the rest must carry on.
        let original = sim.leader()!
        change(ConfChange(.removeNode, node: original))
        #expect(sim.run(until: { $0.leader() != nil && $0.leader() != original }, timeout: 10_000_000))
        sim.retire(original)
        _ = acknowledgedWrites(10, in: sim)

        // A transfer is abandoned after an election timeout if its messages are lost (etcd's
        // move-leader then fails and the operator retries), so ask again until it happens.
        var transfers = 0
        while sim.leader() != newcomer && transfers < 10 {
            transfers += 1
            if let leader = sim.leader() { sim.transferLeadership(from: leader, to: newcomer) }
            sim.run(until: { $0.leader() == newcomer }, timeout: 1_500_000)
        }
        #expect(sim.leader() == newcomer, "leadership transfer to \(newcomer) failed \(transfers) times")

        let removed = sim.memberIDs.first { $0 != newcomer && $0 != original }!
        change(ConfChange(.removeNode, node: removed))
        sim.retire(removed)
        #expect(acknowledgedWrites(10, in: sim).count == 10)
        #expect(sim.checkLiveness())
        let voters = sim.node(sim.leader()!)!.confState.voters
        #expect(voters.count == 2 && voters.contains(newcomer))
        #expect(!voters.contains(removed) && !voters.contains(original))
        #expect(sim.statistics.messagesDropped > 0, "the scenario should have run under message loss")
        #expect(sim.checkAcknowledgedWritesDurable())
        #expect(sim.violation == nil, "\(sim.violation!)")
    }
}
