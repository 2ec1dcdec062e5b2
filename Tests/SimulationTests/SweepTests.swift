@_spi(Testing) import ClusterSimulation
import Foundation
@_spi(Testing) import RaftCore
@_spi(Testing) import ReplicatedMember
import TestSupport
import Testing

/// The seed sweep `make test` runs: 48 seeds, half with 3 members and half with 5, each under a
/// fault mix drawn from its seed, each followed by a liveness phase and a durability check.
@Suite("Seed sweeps", .onOwnThreads)
struct SweepTests {
    struct Chunk: Sendable, CustomTestStringConvertible {
        var seeds: ClosedRange<UInt64>
        var nodes: Int
        var testDescription: String { "seeds \(seeds.lowerBound)...\(seeds.upperBound), \(nodes) members" }
    }

    static let chunks = [
        Chunk(seeds: 1...12, nodes: 3), Chunk(seeds: 13...24, nodes: 3),
        Chunk(seeds: 25...36, nodes: 5), Chunk(seeds: 37...48, nodes: 5),
    ]

    @Test("every seed keeps every safety property and converges after healing", arguments: chunks)
    func sweep(_ chunk: Chunk) {
        var progressed = 0
        for seed in chunk.seeds {
            let result = runSeed(seed, nodeCount: chunk.nodes)
            if let violation = result.violation {
                Issue.record(
                    "seed \(seed): \(violation)\nreplay: swift run simulate --seed \(seed) --nodes \(chunk.nodes)\n\(violation.traceTail.joined(separator: "\n"))"
                )
            }
            if result.statistics.writesAcknowledged >= 50 { progressed += 1 }
        }
        // The sweep must exercise the cluster, not just idle through faults.
        #expect(progressed * 10 >= chunk.seeds.count * 6, "only \(progressed) of \(chunk.seeds.count) seeds acknowledged 50 writes")
    }

    /// Seeds (as `simulate --seed S` draws them) that found bugs, kept as regressions.
    /// 376: a member caught up by snapshot answered "leader changed" for a write the snapshot held.
    /// 550: the check-quorum check counted a voter added while the leader led (its direct
    /// addition reached the leader before the learner addition asked first) as silent since the
    /// leader's term began, and failed a leader that Raft rightly kept.
    @Test("seeds that once found bugs stay fixed", arguments: [UInt64(376), 550])
    func regression(seed: UInt64) {
        let result = runSeed(seed)
        #expect(result.violation == nil, "seed \(seed): \(result.violation!)")
    }

    /// In one process; `make test` also replays seeds 1..20 across processes and builds
    /// (scripts/replay.sh).
    @Test("the same seed replays bit-for-bit: equal trace hashes, different seeds differ")
    func determinism() {
        var hashes: Set<UInt64> = []
        for seed in UInt64(1)...5 {
            let first = runSeed(seed)
            let second = runSeed(seed)
            #expect(first.traceHash == second.traceHash, "seed \(seed) is not deterministic")
            #expect(first.events == second.events && first.statistics == second.statistics)
            hashes.insert(first.traceHash)
        }
        #expect(hashes.count == 5, "different seeds should give different traces")
    }

    /// Two runs whose clients write `v…` and `w…` values send the same messages at the same
    /// times, differing only in bytes inside entries (and in what reads return and the final
    /// state): a hash of event kinds, members, terms and indexes alone would be equal.
    /// The seeds are ones whose clients get writes acknowledged (seed 8, which got none through
    /// its faults once members answered timeouts, has no payload to tell apart).
    @Test("the trace hash covers message payloads, answers and the final state", arguments: [UInt64(3), 9, 77])
    func traceHashCoversPayloads(seed: UInt64) {
        var options = SimulationOptions(seed: seed, nodeCount: nil)
        let first = run(options)
        options.valuePrefix = "w"
        let second = run(options)
        #expect(first.violation == nil && second.violation == nil)
        #expect(first.statistics.writesAcknowledged > 0, "seed \(seed) wrote nothing whose payload could differ")
        #expect(first.events == second.events && first.simulatedTime == second.simulatedTime, "the schedule must not change")
        #expect(first.statistics == second.statistics)
        #expect(first.traceHash != second.traceHash, "seed \(seed): only payload bytes differ, and the trace hash missed it")
    }

    /// A fault mix that deposes leaders without their knowing (partitions, one-way partitions
    /// and pauses dominate), on five members: where a stale read can happen, if reads skip ReadIndex.
    static func staleReadProfile(seed: UInt64, checksReadIndexes: Bool) -> SimulationOptions {
        var options = SimulationOptions(seed: seed, nodeCount: 5)
        options.mutation = .readWithoutQuorumCheck
        options.faultWeights = [1, 4, 4, 4, 1]
        options.checksReadIndexes = checksReadIndexes
        // Without the read-index check, the linearizability checker is left alone: a deposed
        // leader's lease renewal (confirmed by the same read-index round) is not checked either.
        options.checksProtocolRules = checksReadIndexes
        // Retried writes span from their first attempt to their last: such long intervals leave
        // the linearizability checker more orders to explain a stale read with.
        options.writeSessions = false
        // Writes that fail at once without a leader keep the clients busy while leaders are
        // deposed: more reads reach the deposed leader.
        options.leaderWaitMilliseconds = 0
        // Without sessions every unknown write stays unknown, and long write intervals widen the
        // search: with the client network, one key of seeds 1..60 needed more than 2,000,000
        // steps to be proven linearizable.
        options.linearizabilityStepBudget = 50_000_000
        return options
    }

    @Test("a sweep catches a build that serves reads without confirming leadership")
    func sweepCatchesStaleReads() {
        let broken = (UInt64(1)...25).compactMap { run(Self.staleReadProfile(seed: $0, checksReadIndexes: true)).violation }
        #expect(broken.contains { $0.property == "linearizable read" }, "no seed found the stale read")
        // Keep-alives are confirmed by the same read-index round: a deposed leader's renewal may
        // be caught first.
        #expect(broken.allSatisfy { ["linearizable read", "lease renewal"].contains($0.property) }, "\(broken.map(\.property))")
    }

    @Test("the exactly-once checker catches a build that applies retried session writes again")
    func sweepCatchesDoubleApplication() {
        var caught: [(seed: UInt64, violation: Violation)] = []
        // Seeds 1...8 are enough: five of them catch it with this simulator (1, 3, 4, 5, 7),
        // and each caught seed runs again below.
        for seed in UInt64(1)...8 {
            var options = SimulationOptions(seed: seed)
            options.memberMutation = .applySessionWritesWithoutDeduplication
            if let violation = run(options).violation { caught.append((seed, violation)) }
        }
        for (seed, violation) in caught {
            print("no-dedup build, seed \(seed): \(violation.property): \(violation)")
            print("  replay: swift run simulate --seed \(seed) --mutation applySessionWritesWithoutDeduplication")
        }
        #expect(caught.contains { $0.violation.property == "exactly-once" }, "no seed showed a write applied twice")
        // The same seeds pass with deduplication on. A write applies twice only when its client
        // sent it again: after an unknown outcome (a session retry), or after a refusal that
        // said it was not proposed (a client retry, in the same session).
        for (seed, _) in caught {
            let result = runSeed(seed)
            #expect(result.violation == nil, "seed \(seed) fails with deduplication on: \(result.violation!)")
            #expect(result.statistics.sessionRetries + result.statistics.clientRetries > 0, "seed \(seed) retried no write")
        }
    }

    @Test("the linearizability checker alone catches the same broken build")
    func linearizabilityCheckerCatchesStaleReads() {
        let broken = (UInt64(1)...25).compactMap { run(Self.staleReadProfile(seed: $0, checksReadIndexes: false)).violation }
        #expect(!broken.isEmpty, "the linearizability checker found no stale read")
        #expect(broken.allSatisfy { $0.property == "linearizability" }, "\(broken.map(\.property))")
    }
}

/// The sweeps above run under `.onOwnThreads` so that they do not hold Swift concurrency's
/// cooperative pool while the cluster tests wait on it; this checks that the trait moves them.
@Suite("Test threads")
struct TestThreadTests {
    @Test(
        "a suite with .onOwnThreads runs its synchronous tests on the executor's own threads", .onOwnThreads,
        .disabled(
            "flaky since 2026-12-07: twice of four runs the body ran on another thread (once 3 s into the run, once after 400 s queued behind the sweeps); cause not yet found"
        ))
    func runsOnOwnThreads() {
        #expect(Thread.current.name?.hasPrefix("test-work-") == true)
    }

    @Test("without the trait a test runs on the cooperative pool")
    func runsOnThePoolWithoutTheTrait() {
        #expect(Thread.current.name?.hasPrefix("test-work-") != true)
    }
}
