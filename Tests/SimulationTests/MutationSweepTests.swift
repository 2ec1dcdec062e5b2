@_spi(Testing) import ClusterSimulation
@_spi(Testing) import RaftCore
@_spi(Testing) import ReplicatedMember
import TestSupport
import Testing

/// Every deliberate bug is found by a plain seed sweep (default options drawn from each seed,
/// no script): the sweep runs from `seeds.lowerBound` until the first failing seed and must find
/// one by `seeds.upperBound`. The ranges start where a sweep of seeds from 1 in a release build
/// first failed (`simulate --seeds 1..N --mutation NAME` prints it), so that the debug build runs
/// only a few seeds per mutation; the failing seed must then pass without the mutation.
@Suite("Mutation sweeps", .onOwnThreads)
struct MutationSweepTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var mutation: String
        var seeds: ClosedRange<UInt64>
        var testDescription: String { "\(mutation), seeds \(seeds.lowerBound)...\(seeds.upperBound)" }

        func options(seed: UInt64) -> SimulationOptions {
            var options = SimulationOptions(seed: seed)
            options.mutation = RaftMutation(rawValue: mutation)
            options.memberMutation = MemberMutation(rawValue: mutation)
            options.clientMutation = ClientMutation(rawValue: mutation)
            return options
        }
    }

    /// Each range starts at the first seed that finds the bug in a sweep from 1 (the comment
    /// gives the property that catches it), so that the debug build runs one seed per mutation.
    static let cases: [Case] = [
        Case(mutation: "commitOldTermByCounting", seeds: 1...4),  // seed 1: leader commit rule
        Case(mutation: "forgetVoteOnRestart", seeds: 1...4),  // seed 1: durable vote
        Case(mutation: "readWithoutQuorumCheck", seeds: 38...41),  // seed 38: linearizable read
        Case(mutation: "forgetTermOnRestart", seeds: 6...9),  // seed 6: durable vote
        Case(mutation: "truncateOnStaleAppend", seeds: 1...4),  // seed 1: acknowledged entries kept
        Case(mutation: "acceptStaleTermAppend", seeds: 5...8),  // seed 5: stale leader refused
        Case(mutation: "voteForStaleLog", seeds: 8...11),  // seed 8: leader completeness
        Case(mutation: "preVoteBumpsTerm", seeds: 1...4),  // seed 1: term changes
        Case(mutation: "installStaleSnapshot", seeds: 5...8),  // seed 5: acknowledged entries kept
        Case(mutation: "matchMovesBackwards", seeds: 1...4),  // seed 1: match index monotonicity
        Case(mutation: "ignoreCheckQuorum", seeds: 53...56),  // seed 53: check quorum
        Case(mutation: "removedLeaderKeepsLeading", seeds: 3...6),  // seed 3: removed leader steps down
        Case(mutation: "concurrentConfChanges", seeds: 5...8),  // seed 5: one membership change at a time
        Case(mutation: "renewLeaseWithoutConfirmingLeadership", seeds: 128...131),  // seed 128: lease renewal
        Case(mutation: "applySessionWritesWithoutDeduplication", seeds: 1...4),  // seed 1: exactly-once
        Case(mutation: "acceptDamagedRecords", seeds: 2...5),  // seed 2: storage corruption
        Case(mutation: "writeAppliedIndexApart", seeds: 2...5),  // seed 2: state machine safety
        Case(mutation: "watchSkipsRevisionAfterCatchUp", seeds: 1...4),  // seed 1: watch delivery
        Case(mutation: "serveReadOnlyTxnWithoutReadIndex", seeds: 1...4),  // seed 1: linearizable read
        Case(mutation: "lockWritesWithoutFencing", seeds: 2...5),  // seed 2: lock fencing
        Case(mutation: "acknowledgeBeforeStoring", seeds: 1...4),  // seed 1: acknowledged entries kept
        Case(mutation: "countOwnUnstoredEntries", seeds: 103...106),  // seed 103: leader completeness
    ]

    @Test("every mutation has a sweep here")
    func everyMutationIsSwept() {
        let names =
            RaftMutation.allCases.map(\.rawValue) + MemberMutation.allCases.map(\.rawValue) + ClientMutation.allCases.map(\.rawValue)
        #expect(Set(names) == Set(Self.cases.map(\.mutation)))
    }

    @Test("a plain seed sweep catches the mutation, and the seed that catches it passes without it", arguments: cases)
    func sweepCatches(_ sweep: Case) {
        var caught: (seed: UInt64, violation: Violation)?
        for seed in sweep.seeds {
            if let violation = run(sweep.options(seed: seed)).violation {
                caught = (seed, violation)
                break
            }
        }
        guard let caught else {
            Issue.record("no seed in \(sweep.seeds) caught \(sweep.mutation)")
            return
        }
        print("\(sweep.mutation): seed \(caught.seed) caught it: \(caught.violation)")
        let clean = runSeed(caught.seed)
        #expect(clean.violation == nil, "seed \(caught.seed) fails without the mutation: \(clean.violation!)")
    }
}
