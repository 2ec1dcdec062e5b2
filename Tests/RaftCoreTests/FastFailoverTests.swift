import Testing

@testable import RaftCore

/// A leader whose process dies closes its peer connections; followers told so
/// (``RaftNode/peerConnectionLost(_:)``) elect a successor without waiting an election timeout,
/// and a follower whose link alone flapped causes no election.
@Suite("Fast failover")
struct FastFailoverTests {
    /// A three-member cluster led by 1 with one committed entry, and its term.
    private static func cluster(configure: (inout RaftSettings) -> Void = { _ in }) throws -> (Harness, Term) {
        var harness = Harness(voters: [1, 2, 3], configure: configure)
        harness.elect(1)
        try #require(harness.leader() == 1)
        _ = try harness.nodes[1]!.propose([1])
        harness.settle()
        return (harness, harness.nodes[1]!.term)
    }

    @Test("followers that both lose the dead leader's connection elect one successor at once, in the next term")
    func bothFollowersLoseTheLeader() throws {
        for order: [NodeID] in [[2, 3], [3, 2]] {
            var (harness, term) = try Self.cluster()
            harness.drop = { $0.from == 1 || $0.to == 1 }
            // Both learn of the closed connection before either hears the other's pre-vote.
            for id in order { harness.nodes[id]!.peerConnectionLost(1) }
            harness.settle()
            let leader = try #require(harness.nodes.values.first { $0.role == .leader && $0.id != 1 }, "no successor without ticks")
            #expect(leader.term == term + 1, "split vote or extra elections: term \(leader.term)")
            let other: NodeID = leader.id == 2 ? 3 : 2
            #expect(harness.nodes[other]!.leader == leader.id)
        }
    }

    @Test("a follower that learns of the loss after refusing the other's pre-vote still brings a successor at once")
    func oneFollowerLearnsLater() throws {
        var (harness, term) = try Self.cluster()
        harness.drop = { $0.from == 1 || $0.to == 1 }
        harness.nodes[2]!.peerConnectionLost(1)
        harness.settle()
        // Member 3 still counted 1 as its live leader and ignored 2's pre-vote.
        #expect(harness.leader() == 1 || harness.nodes[3]!.leader == 1)
        harness.nodes[3]!.peerConnectionLost(1)
        harness.settle()
        let leader = try #require(harness.nodes.values.first { $0.role == .leader && $0.id != 1 })
        #expect(leader.term == term + 1)
    }

    @Test("a follower with the longer log whose pre-vote was ignored asks again when the other loses the leader too")
    func longerLogAsksAgain() throws {
        for order: [NodeID] in [[2, 3], [3, 2]] {
            var (harness, term) = try Self.cluster()
            // The member that learns of the loss first holds an entry the other lacks.
            let ahead = order[0]
            let behind = order[1]
            harness.drop = { $0.to == behind && $0.kind == .appendEntries }
            _ = try harness.nodes[1]!.propose([2])
            harness.settle()
            try #require(harness.nodes[ahead]!.lastIndex > harness.nodes[behind]!.lastIndex)
            harness.drop = { $0.from == 1 || $0.to == 1 }
            // The member behind still counts 1 as its live leader and ignores the pre-vote; when
            // it learns of the loss itself, its own pre-vote is refused for its shorter log.
            harness.nodes[ahead]!.peerConnectionLost(1)
            harness.settle()
            harness.nodes[behind]!.peerConnectionLost(1)
            harness.settle()
            let leader = try #require(
                harness.nodes.values.first { $0.role == .leader && $0.id != 1 }, "no successor without ticks (order \(order))")
            #expect(leader.id == ahead)
            #expect(leader.term == term + 1)
        }
    }

    @Test("a single flapping link to a live leader causes no election and no new term")
    func flappingLinkIsHarmless() throws {
        var (harness, term) = try Self.cluster()
        harness.nodes[2]!.peerConnectionLost(1)
        harness.settle()
        // The pre-vote was refused by the leader and by member 3, which hear from the leader.
        #expect(harness.nodes.values.allSatisfy { $0.term == term })
        #expect(harness.nodes[1]!.role == .leader)
        #expect(harness.nodes[2]!.role == .preCandidate)
        // The leader's next heartbeat brings member 2 back, in the same term.
        for _ in 0..<harness.nodes[1]!.settings.heartbeatTicks { harness.nodes[1]!.tick() }
        harness.settle()
        #expect(harness.nodes[2]!.role == .follower && harness.nodes[2]!.leader == 1)
        #expect(harness.nodes.values.allSatisfy { $0.term == term })
        // Repeated flaps change nothing either.
        for _ in 0..<5 {
            harness.nodes[2]!.peerConnectionLost(1)
            harness.nodes[3]!.peerConnectionLost(2)
            harness.settle()
            harness.nodes[1]!.tick()
            harness.settle()
        }
        #expect(harness.leader() == 1)
        #expect(harness.nodes.values.allSatisfy { $0.term == term })
    }

    @Test("without PreVote and CheckQuorum a lost connection starts nothing")
    func needsPreVoteAndCheckQuorum() throws {
        for configure: (inout RaftSettings) -> Void in [{ $0.preVote = false }, { $0.checkQuorum = false }] {
            var (harness, term) = try Self.cluster(configure: configure)
            harness.drop = { $0.from == 1 || $0.to == 1 }
            harness.nodes[2]!.peerConnectionLost(1)
            harness.nodes[3]!.peerConnectionLost(1)
            harness.settle()
            #expect(harness.nodes[2]!.role == .follower && harness.nodes[3]!.role == .follower)
            #expect(harness.nodes[2]!.term == term)
        }
    }

    @Test("a connection lost from a member that is not the leader starts nothing")
    func otherPeerIsIgnored() throws {
        var (harness, term) = try Self.cluster()
        harness.nodes[2]!.peerConnectionLost(3)
        harness.settle()
        #expect(harness.nodes[2]!.role == .follower && harness.nodes[2]!.leader == 1 && harness.nodes[2]!.term == term)
    }

    @Test("a leader appends a forwarded proposal only in the term it was forwarded for")
    func forwardedProposalCarriesItsTerm() throws {
        var (harness, term) = try Self.cluster { $0.forwardProposals = true }
        let last = harness.nodes[1]!.log.lastIndex
        let stale = RaftMessage(
            kind: .propose, from: 2, to: 1, term: 0, logTerm: term + 1, entries: [LogEntry(term: 0, index: 0, data: [7])])
        harness.nodes[1]!.step(stale)
        #expect(harness.nodes[1]!.log.lastIndex == last, "appended a proposal forwarded for another term")
        _ = try harness.nodes[2]!.propose([8])
        harness.settle()
        #expect(harness.nodes[1]!.log.lastIndex == last + 1)
        #expect(harness.nodes[2]!.log.entry(at: last + 1)?.data == [8])
        #expect(!harness.nodes[2]!.forwardedProposalIsLost(term: term))
        #expect(harness.nodes[2]!.forwardedProposalIsLost(term: term - 1))
    }
}
