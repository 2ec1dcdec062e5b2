import Primitives
@_spi(Testing) import RaftCore
import Storage
import TestSupport
import Testing

@_spi(Testing) @testable import ClusterSimulation

/// The checks that no mutation of the code reaches are shown here on doctored state: a disk
/// that lost what it had synced, an acknowledged write replaced by another entry, and a
/// linearizability search that runs out of budget.
@Suite("Honest checks", .onOwnThreads)
struct HonestCheckTests {
    /// A calm three-member group with a leader and some acknowledged writes.
    private func group() -> (sim: Simulation, writes: [Int]) {
        var options = SimulationOptions.calm(seed: 31, nodeCount: 3)
        options.clientThinkTime = 0
        options.snapshotInterval = 0
        let sim = Simulation(options: options)
        #expect(sim.run(until: { $0.leader() != nil }, timeout: 5_000_000))
        var writes: [Int] = []
        while writes.count < 5, sim.violation == nil, let leader = sim.leader() {
            let op = sim.write(at: leader)
            sim.run(until: { $0.outcome(of: op) != .pending }, timeout: 1_000_000)
            if case .succeeded = sim.outcome(of: op) { writes.append(op) }
        }
        sim.run(for: 300_000)
        #expect(sim.violation == nil)
        return (sim, writes)
    }

    /// A follower of the group, crashed; the engine keeps what it had synced.
    private func crashedFollower(of sim: Simulation) -> NodeID {
        let follower = sim.memberIDs.first { $0 != sim.leader() }!
        sim.crash(follower)
        return follower
    }

    @Test("a restart that lost the last synced log entry is caught")
    func lostSyncedEntry() throws {
        let (sim, _) = group()
        let follower = crashedFollower(of: sim)
        let engine = sim.members[Int(follower) - 1].engine
        let last = try #require(engine.durableSnapshot.last { RaftLogStore.Keys.index(fromEntryKey: $0.key) != nil })
        let lastIndex = try #require(RaftLogStore.Keys.index(fromEntryKey: last.key))
        // The whole last batch is lost: the entry, and the hard state and applied index that
        // counted it (a log that contradicts its hard state is refused by recovery itself).
        let checked = try ChecksummedEngine(wrapping: engine)
        let hardState = try #require(try checked.get(RaftLogStore.Keys.hardState).flatMap(HardState.init(decoding:)))
        let earlier = HardState(term: hardState.term, vote: hardState.vote, commit: min(hardState.commit, lastIndex - 1))
        var batch = StorageBatch([.delete(key: last.key), .put(key: RaftLogStore.Keys.hardState, value: earlier.encoded())])
        AppliedIndex.put(earlier.commit, into: &batch)
        try checked.write(batch, sync: true)
        sim.restart(follower)
        #expect(sim.violation?.property == "durable log", "got \(String(describing: sim.violation))")
    }

    @Test("a restart whose synced commit index went back is caught, and an intact one passes")
    func lostSyncedCommit() throws {
        let (sim, _) = group()
        let follower = crashedFollower(of: sim)
        sim.restart(follower)
        #expect(sim.violation == nil, "an intact restart must pass: \(String(describing: sim.violation))")
        sim.run(for: 300_000)
        sim.crash(follower)
        let checked = try ChecksummedEngine(wrapping: sim.members[Int(follower) - 1].engine)
        let hardState = try #require(try checked.get(RaftLogStore.Keys.hardState).flatMap(HardState.init(decoding:)))
        // Below what the checker saw synced (a commit written without a sync, which a crash may
        // keep, can be higher). The applied index goes back with it (a member restarts with the
        // higher of the two).
        let synced = sim.syncedCommit(of: follower)
        try #require(synced > 0 && synced <= hardState.commit)
        let regressed = HardState(term: hardState.term, vote: hardState.vote, commit: synced - 1)
        var batch = StorageBatch([.put(key: RaftLogStore.Keys.hardState, value: regressed.encoded())])
        AppliedIndex.put(regressed.commit, into: &batch)
        try checked.write(batch, sync: true)
        sim.restart(follower)
        #expect(sim.violation?.property == "durable commit", "got \(String(describing: sim.violation))")
    }

    @Test("an acknowledged write whose index holds another committed entry is caught")
    func acknowledgedWriteReplaced() {
        let (sim, writes) = group()
        #expect(sim.checkAcknowledgedWritesDurable())
        sim.answeredEntries[writes[2]] = sim.answeredEntries[writes[3]]
        #expect(!sim.checkAcknowledgedWritesDurable())
        #expect(sim.violation?.property == "durability")
    }

    @Test("a linearizability search that runs out of budget fails the run")
    func exhaustedBudgetFails() {
        var options = SimulationOptions(seed: 2)
        #expect(run(options).violation == nil)
        options.linearizabilityStepBudget = 1
        let violation = run(options).violation
        #expect(violation?.property == "linearizability" && violation!.detail.contains("budget"), "got \(String(describing: violation))")
    }
}
