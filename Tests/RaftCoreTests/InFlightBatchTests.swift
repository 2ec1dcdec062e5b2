import Testing

@_spi(Testing) @testable import RaftCore

/// Input fed to a node between `ready()` and `advance(_:)`, while its batch is being stored (a
/// slow fsync must not stop heartbeats, heartbeat answers or replication; issue 10).
@Suite("RaftNode with a batch in flight")
struct InFlightBatchTests {
    @Test("a leader keeps heartbeating and replicating while its own write is in flight, and stores each entry once")
    func leaderWorksDuringItsWrite() throws {
        var harness = Harness(voters: [1, 2, 3])
        harness.elect(1)
        var leader = harness.nodes[1]!
        let first = try #require(try leader.propose([1]))
        let inFlight = leader.ready()
        #expect(inFlight.entries.map(\.index) == [first.index])

        for _ in 0..<leader.settings.heartbeatTicks { leader.tick() }
        let heartbeats = leader.takeImmediateMessages().filter { $0.kind == .heartbeat }
        #expect(Set(heartbeats.map(\.to)) == [2, 3], "heartbeats leave while the write is in flight")

        let second = try #require(try leader.propose([2]))
        let appends = leader.takeImmediateMessages().filter { $0.kind == .appendEntries }
        #expect(appends.contains { $0.entries.map(\.index).contains(second.index) }, "a new proposal is replicated at once")

        // Acknowledged by both followers, the first entry commits without the leader's own
        // write; applying waits for the batch that follows the write.
        for follower: NodeID in [2, 3] {
            leader.step(RaftMessage(kind: .appendResponse, from: follower, to: 1, term: leader.term, index: second.index))
        }
        #expect(leader.commitIndex == second.index)
        leader.advance(inFlight)
        let next = leader.ready()
        #expect(next.entries.map(\.index) == [second.index], "only the entry not stored yet")
        #expect(next.committedEntries.map(\.index) == [first.index, second.index])
        leader.advance(next)
    }

    @Test("a follower answers heartbeats at once, but acknowledges entries and grants votes only after storing them")
    func followerDefersPromises() throws {
        var harness = Harness(voters: [1, 2, 3])
        harness.elect(1)
        var follower = harness.nodes[2]!
        let term = follower.term
        let last = follower.lastIndex
        let entry = LogEntry(term: term, index: last + 1, data: [5])
        follower.step(
            RaftMessage(
                kind: .appendEntries, from: 1, to: 2, term: term, logTerm: term, index: last, entries: [entry],
                commit: follower.commitIndex))
        let inFlight = follower.ready()
        #expect(inFlight.entries.map(\.index) == [entry.index])
        #expect(inFlight.messages.contains { $0.kind == .appendResponse && $0.index == entry.index })

        follower.step(RaftMessage(kind: .heartbeat, from: 1, to: 2, term: term, commit: follower.commitIndex))
        let immediate = follower.takeImmediateMessages()
        #expect(immediate.map(\.kind) == [.heartbeatResponse])

        let next = LogEntry(term: term, index: entry.index + 1, data: [6])
        follower.step(
            RaftMessage(kind: .appendEntries, from: 1, to: 2, term: term, logTerm: term, index: entry.index, entries: [next]))
        // A transfer's vote request is answered despite the live leader; in a later term.
        follower.step(
            RaftMessage(
                kind: .requestVote, from: 3, to: 2, term: term + 1, logTerm: term, index: next.index,
                context: RaftNode.transferContext))
        #expect(follower.takeImmediateMessages().isEmpty, "neither the acknowledgement nor the vote leaves before it is stored")

        follower.advance(inFlight)
        let after = follower.ready()
        #expect(after.entries.map(\.index) == [next.index])
        #expect(after.hardState?.vote == 3 && after.hardState?.term == term + 1)
        #expect(after.mustSync)
        #expect(after.messages.contains { $0.kind == .voteResponse && !$0.reject && $0.to == 3 })
        #expect(after.leaderMessages.isEmpty)
        follower.advance(after)
    }

    @Test("a snapshot received while a batch is in flight is installed by the next batch, never before it")
    func snapshotWaitsForTheNextBatch() throws {
        let (harness, metadata) = try Harness.withLaggingMember(snapshotData: [1, 2, 3])
        var lagging = harness.nodes[3]!
        let appliedBefore = lagging.appliedIndex
        let chunk = SnapshotChunk(metadata: metadata, offset: 0, data: [1, 2, 3], isLast: true)
        let inFlight = lagging.ready()
        lagging.step(RaftMessage(kind: .installSnapshot, from: 1, to: 3, term: harness.nodes[1]!.term, snapshot: chunk))
        #expect(lagging.appliedIndex == appliedBefore, "the applied index stays that of the state machine")
        #expect(lagging.takeImmediateMessages().isEmpty)
        lagging.advance(inFlight)
        #expect(lagging.hasReady)
        let install = lagging.ready()
        #expect(install.snapshot?.metadata == metadata)
        #expect(install.messages.contains { $0.kind == .appendResponse && $0.index == metadata.index })
        lagging.advance(install)
        #expect(lagging.appliedIndex == metadata.index)
    }
}
