import RaftCore
import StateMachine
import Testing

@testable import ReplicatedMember

@Suite("Auto-compaction schedule")
struct AutoCompactorTests {
    /// Runs a compactor in 100 ms steps for `milliseconds`, the revision growing by one a step,
    /// compactions taking effect at once; returns the (time, revision) of each proposal.
    static func run(
        _ policy: AutoCompaction, for milliseconds: Int64, leaderFrom: Int64 = 0, applies: Bool = true
    ) -> [(now: Int64, revision: Int64)] {
        var compactor = AutoCompactor(policy: policy, now: 0)
        var compacted: Int64 = 0
        var proposals: [(Int64, Int64)] = []
        var now: Int64 = 0
        while now < milliseconds {
            now += 100
            let revision = now / 100
            if let target = compactor.advance(now: now, revision: revision, compacted: compacted, isLeader: now >= leaderFrom) {
                proposals.append((now, target))
                if applies { compacted = target }
            }
        }
        return proposals
    }

    @Test("periodic: the first compaction after a whole retention, to the revision of a retention ago; then every retention")
    func periodic() {
        let proposals = Self.run(.periodic(retentionMilliseconds: 1_000), for: 3_500)
        #expect(proposals.map(\.now) == [1_000, 2_100, 3_200])
        // The revision sampled a retention before each compaction (samples every 100 ms).
        #expect(proposals.map(\.revision) == [1, 11, 22])
        for proposal in proposals { #expect(proposal.revision <= (proposal.now - 1_000) / 100 + 1) }
    }

    @Test("periodic: long retentions compact every hour, sampling every 6 minutes")
    func periodicCapsTheInterval() {
        let compactor = AutoCompactor(policy: .periodic(retentionMilliseconds: 24 * 3_600_000), now: 0)
        #expect(compactor.retryInterval == 360_000)
    }

    @Test("only a leader proposes; a follower keeps sampling, so a new leader compacts at once")
    func leaderOnly() {
        #expect(Self.run(.periodic(retentionMilliseconds: 1_000), for: 5_000, leaderFrom: .max).isEmpty)
        let late = Self.run(.periodic(retentionMilliseconds: 1_000), for: 5_000, leaderFrom: 4_000)
        #expect(late.first?.now == 4_000)
        #expect(late.first?.revision == 30, "the revision a retention before the leadership began")
    }

    @Test("a proposal that never applies is proposed again after the retry interval, not before")
    func retry() {
        let proposals = Self.run(.periodic(retentionMilliseconds: 1_000), for: 1_400, applies: false)
        #expect(proposals.map(\.now) == [1_000, 1_100, 1_200, 1_300, 1_400])
        var compactor = AutoCompactor(policy: .revision(retainedRevisions: 10), now: 0)
        #expect(compactor.advance(now: 300_000, revision: 50, compacted: 0, isLeader: true) == 40)
        #expect(compactor.advance(now: 300_100, revision: 51, compacted: 0, isLeader: true) == nil, "still in flight")
    }

    @Test("history compacted further already (by a client) counts as done")
    func alreadyCompacted() {
        var compactor = AutoCompactor(policy: .periodic(retentionMilliseconds: 1_000), now: 0)
        for now in stride(from: Int64(100), through: 1_000, by: 100) {
            #expect(compactor.advance(now: now, revision: now / 100, compacted: 500, isLeader: true) == nil)
        }
    }

    @Test("revision: every five minutes to the current revision less the retention, never twice to one revision")
    func revision() {
        var compactor = AutoCompactor(policy: .revision(retainedRevisions: 100), now: 0)
        #expect(compactor.advance(now: 299_900, revision: 1_000, compacted: 0, isLeader: true) == nil)
        #expect(compactor.advance(now: 300_000, revision: 1_000, compacted: 0, isLeader: true) == 900)
        #expect(compactor.advance(now: 300_100, revision: 1_000, compacted: 900, isLeader: true) == nil)
        #expect(compactor.advance(now: 600_000, revision: 1_000, compacted: 900, isLeader: true) == nil, "nothing new")
        #expect(compactor.advance(now: 900_000, revision: 1_050, compacted: 900, isLeader: true) == 950)
        var young = AutoCompactor(policy: .revision(retainedRevisions: 100), now: 0)
        #expect(young.advance(now: 300_000, revision: 80, compacted: 0, isLeader: true) == nil, "fewer revisions than kept")
    }
}

@Suite("Auto-compaction in a cluster")
struct AutoCompactionClusterTests {
    private static func put(_ harness: inout MemberHarness, _ key: String) {
        let response = harness.call(.write(.put(PutRequest(key: Array(key.utf8), value: [1]))), at: 1)
        guard case .write(.put) = response else {
            Issue.record("put failed: \(String(describing: response))")
            return
        }
    }

    @Test("the leader compacts through the log: every member applies each compaction once, at the same revision")
    func periodicThroughTheLog() {
        var harness = MemberHarness(voters: [1, 2, 3]) { $0.autoCompaction = .periodic(retentionMilliseconds: 1_000) }
        harness.elect(1)
        var revisionAt: [Int64: Int64] = [:]  // leader time → revision
        for step in 0..<40 {
            Self.put(&harness, "k\(step % 3)")
            harness.tick(1)
            revisionAt[harness.members[1]!.now] = harness.members[1]!.store.currentRevision
        }
        let compactions = harness.autoCompactions[1] ?? []
        #expect(compactions.count >= 2, "\(compactions)")
        #expect(compactions == compactions.sorted() && Set(compactions).count == compactions.count, "one proposal each")
        for id: NodeID in [2, 3] { #expect(harness.autoCompactions[id] == compactions) }
        let compacted = harness.members[1]!.store.compactedRevision
        #expect(compacted == compactions.last)
        for id: NodeID in [2, 3] { #expect(harness.members[id]!.store.compactedRevision == compacted) }
        // A retention's history stays: the compaction revision is no newer than a second ago.
        let now = harness.members[1]!.now
        #expect(compacted <= revisionAt[now - 1_000] ?? 0)
        let old = harness.call(.range(RangeRequest(key: Array("k0".utf8), revision: 1)), at: 1)
        #expect(old == .failure(.state(.compacted)))
    }

    @Test("without a policy nothing is compacted")
    func off() {
        var harness = MemberHarness(voters: [1, 2, 3])
        harness.elect(1)
        let never = harness.members[1]!.store.compactedRevision
        for step in 0..<30 {
            Self.put(&harness, "k\(step)")
            harness.tick(1)
        }
        #expect(harness.members[1]!.store.compactedRevision == never)
        #expect(harness.autoCompactions.values.allSatisfy { $0.isEmpty })
    }
}
