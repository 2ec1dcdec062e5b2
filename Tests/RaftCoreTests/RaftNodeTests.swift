import Testing

@_spi(Testing) @testable import RaftCore

/// A minimal synchronous shell: it carries out each Ready at once and delivers messages in order,
/// optionally dropping some. Persistence is implicit (the core keeps its own log).
struct Harness {
    var nodes: [NodeID: RaftNode] = [:]
    var inFlight: [RaftMessage] = []
    var drop: (RaftMessage) -> Bool = { _ in false }
    var applied: [NodeID: [LogEntry]] = [:]

    init(voters: [NodeID], configure: (inout RaftSettings) -> Void = { _ in }) {
        for id in voters {
            var settings = RaftSettings(id: id)
            configure(&settings)
            nodes[id] = RaftNode(settings: settings, state: .bootstrap(voters: voters))
        }
        settle()
    }

    /// Runs ready/advance on every node and delivers messages until nothing moves.
    mutating func settle(maxRounds: Int = 1_000) {
        for _ in 0..<maxRounds {
            var moved = false
            for id in nodes.keys.sorted() where nodes[id]!.hasReady {
                let ready = nodes[id]!.ready()
                applied[id, default: []].append(contentsOf: ready.committedEntries)
                inFlight.append(contentsOf: ready.leaderMessages + ready.messages)
                nodes[id]!.advance(ready)
                moved = true
            }
            let messages = inFlight
            inFlight = []
            for message in messages where !drop(message) {
                if nodes[message.to] != nil { nodes[message.to]!.step(message) }
                moved = true
            }
            if !moved { return }
        }
    }

    mutating func elect(_ id: NodeID) {
        nodes[id]!.campaign()
        settle()
    }

    func leader() -> NodeID? { nodes.values.first { $0.role == .leader }?.id }

    /// A three-member group led by 1 that commits five entries while member 3 hears nothing,
    /// then compacts the leader's log with a snapshot holding `data`; returns the snapshot's
    /// metadata. Member 3 is still cut off afterwards (`drop`).
    static func withLaggingMember(snapshotData data: [UInt8]) throws -> (Harness, SnapshotMetadata) {
        var harness = Harness(voters: [1, 2, 3])
        harness.elect(1)
        harness.drop = { $0.to == 3 || $0.from == 3 }
        for value in 0..<5 {
            _ = try harness.nodes[1]!.propose([UInt8(value)])
            harness.settle()
        }
        let metadata = harness.nodes[1]!.appliedSnapshotMetadata
        harness.nodes[1]!.compact(with: Snapshot(metadata: metadata, data: data))
        return (harness, metadata)
    }
}

@Suite("RaftNode")
struct RaftNodeTests {
    // MARK: Ready contract

    @Test("a single-member leader commits an entry only after it was persisted (etcd #14370)")
    func singleMemberCommitsAfterPersist() throws {
        var node = RaftNode(settings: RaftSettings(id: 1), state: .bootstrap(voters: [1]))
        var ready = node.ready()
        node.advance(ready)
        node.campaign()
        while node.hasReady {
            ready = node.ready()
            node.advance(ready)
        }
        #expect(node.role == .leader)
        let position = try #require(try node.propose([42]))
        ready = node.ready()
        #expect(ready.entries.map(\.index).contains(position.index))
        #expect(!ready.committedEntries.map(\.index).contains(position.index), "committed before it was durable")
        node.advance(ready)
        ready = node.ready()
        #expect(ready.committedEntries.map(\.index) == [position.index])
        #expect(ready.hardState?.commit == position.index)
        node.advance(ready)
    }

    @Test("a leader's appends may leave before its own write is durable; followers' are acknowledged after theirs")
    func leaderSendsAppendsBeforePersisting() throws {
        var harness = Harness(voters: [1, 2, 3])
        harness.elect(1)
        var leader = harness.nodes[1]!
        let position = try #require(try leader.propose([7]))
        let ready = leader.ready()
        #expect(ready.entries.map(\.index) == [position.index])
        let appends = ready.leaderMessages.filter { $0.kind == .appendEntries }
        #expect(Set(appends.map(\.to)) == [2, 3], "the appends are sendable before the leader's fsync")
        #expect(!ready.messages.contains { $0.kind == .appendEntries })
        // The follower stores the entry meanwhile; its acknowledgement waits for its own write.
        var follower = harness.nodes[2]!
        for append in appends where append.to == 2 { follower.step(append) }
        let followerReady = follower.ready()
        #expect(followerReady.entries.map(\.index) == [position.index])
        #expect(followerReady.leaderMessages.isEmpty)
        #expect(followerReady.messages.contains { $0.kind == .appendResponse && $0.index == position.index })
        follower.advance(followerReady)
        leader.advance(ready)
        #expect(leader.commitIndex < position.index)
        for response in followerReady.messages where response.kind == .appendResponse { leader.step(response) }
        #expect(leader.commitIndex == position.index, "durable on the leader and one follower: committed")
    }

    @Test("a snapshot taken without data is filled in only when a follower needs it")
    func snapshotDataOnDemand() throws {
        var (harness, metadata) = try Harness.withLaggingMember(snapshotData: [])
        #expect(!harness.nodes[1]!.needsSnapshotData, "nobody needs it yet")
        harness.drop = { _ in false }
        _ = try harness.nodes[1]!.propose([9])
        harness.settle()
        #expect(harness.nodes[1]!.needsSnapshotData, "member 3 lags behind the compacted log")
        #expect(harness.nodes[3]!.commitIndex < metadata.index)
        let state = harness.nodes[1]!.appliedSnapshotMetadata
        harness.nodes[1]!.provideSnapshot(Snapshot(metadata: state, data: [1, 2, 3]))
        harness.settle()
        #expect(!harness.nodes[1]!.needsSnapshotData)
        #expect(harness.nodes[3]!.commitIndex == harness.nodes[1]!.commitIndex, "member 3 caught up by the provided snapshot")
    }

    @Test("a candidate's vote requests wait for its durable term and vote")
    func candidateMessagesWaitForPersistence() {
        var node = RaftNode(settings: RaftSettings(id: 1), state: .bootstrap(voters: [1, 2, 3]))
        node.advance(node.ready())
        node.campaign()
        var ready = node.ready()
        while ready.messages.isEmpty && ready.leaderMessages.isEmpty && node.hasReady {
            node.advance(ready)
            ready = node.ready()
        }
        #expect(ready.leaderMessages.isEmpty)
        #expect(!ready.messages.isEmpty)
    }

    @Test("a vote is in the same batch's hard state as the vote it grants")
    func voteIsPersistedBeforeItIsSent() {
        var node = RaftNode(settings: RaftSettings(id: 2), state: .bootstrap(voters: [1, 2, 3]))
        node.advance(node.ready())
        node.step(RaftMessage(kind: .requestVote, from: 1, to: 2, term: 2, logTerm: 1, index: 3))
        let ready = node.ready()
        #expect(ready.messages.contains { $0.kind == .voteResponse && !$0.reject && $0.to == 1 })
        #expect(ready.hardState == HardState(term: 2, vote: 1, commit: 3))
    }

    @Test("the forget-vote mutation really drops the vote from the hard state")
    func forgetVoteMutation() {
        var settings = RaftSettings(id: 2)
        settings.mutation = .forgetVoteOnRestart
        var node = RaftNode(settings: settings, state: .bootstrap(voters: [1, 2, 3]))
        node.advance(node.ready())
        node.step(RaftMessage(kind: .requestVote, from: 1, to: 2, term: 2, logTerm: 1, index: 3))
        #expect(node.ready().hardState?.vote == noNode)
    }

    // MARK: Elections

    @Test("a candidate with a shorter log does not get the vote (§5.4.1)")
    func electionRestriction() {
        var harness = Harness(voters: [1, 2, 3]) { $0.checkQuorum = false }
        harness.elect(1)
        _ = try? harness.nodes[1]!.propose([1])
        harness.settle()
        var node3 = harness.nodes[3]!
        node3.step(RaftMessage(kind: .requestVote, from: 2, to: 3, term: 10, logTerm: 1, index: 3))
        let ready = node3.ready()
        #expect(ready.messages.contains { $0.kind == .voteResponse && $0.reject })
    }

    @Test("CheckQuorum: a follower that hears from its leader ignores a vote request")
    func followerInLeaseIgnoresVotes() {
        var harness = Harness(voters: [1, 2, 3])
        harness.elect(1)
        var follower = harness.nodes[2]!
        let term = follower.term
        follower.step(RaftMessage(kind: .requestVote, from: 3, to: 2, term: term + 5, logTerm: 99, index: 99))
        #expect(follower.term == term)
        #expect(follower.ready().messages.isEmpty)
    }

    @Test("PreVote: a pre-candidate does not raise its term until it wins pre-votes")
    func preVoteKeepsTerm() {
        var harness = Harness(voters: [1, 2, 3])
        harness.drop = { $0.kind == .preVoteResponse }
        let term = harness.nodes[1]!.term
        harness.nodes[1]!.campaign()
        harness.settle()
        #expect(harness.nodes[1]!.role == .preCandidate)
        #expect(harness.nodes.values.allSatisfy { $0.term == term })
    }

    // MARK: Log replication

    @Test(
        "a stale or duplicated append never truncates matching entries (and the mutation that does is seen)",
        arguments: [nil, RaftMutation.truncateOnStaleAppend])
    func staleAppendDoesNotTruncate(mutation: RaftMutation?) throws {
        var harness = Harness(voters: [1, 2, 3]) { $0.mutation = mutation }
        harness.elect(1)
        // The followers store five entries but their acknowledgements are lost, so the entries
        // stay uncommitted: a stale append inside them reaches the log's append path.
        harness.drop = { $0.kind == .appendResponse }
        for value in 0..<5 { _ = try harness.nodes[1]!.propose([UInt8(value)]) }
        harness.settle()
        var follower = harness.nodes[2]!
        let last = follower.lastIndex
        let term = follower.term
        try #require(follower.commitIndex < last - 3, "the stale append must not be answered by the committed-index shortcut")
        let stale = RaftMessage(
            kind: .appendEntries, from: 1, to: 2, term: term, logTerm: term, index: last - 3,
            entries: [follower.entry(at: last - 2)!], commit: 0)
        follower.step(stale)
        let ready = follower.ready()
        #expect(ready.messages.contains { $0.kind == .appendResponse && !$0.reject && $0.index == last - 2 })
        if mutation == nil {
            #expect(follower.lastIndex == last)
        } else {
            #expect(follower.lastIndex == last - 2, "the mutation drops the acknowledged suffix")
        }
    }

    @Test("a conflicting append replaces the follower's uncommitted tail")
    func conflictTruncates() {
        var node = RaftNode(settings: RaftSettings(id: 2), state: .bootstrap(voters: [1, 2, 3]))
        node.advance(node.ready())
        node.step(
            RaftMessage(
                kind: .appendEntries, from: 1, to: 2, term: 2, logTerm: 1, index: 3,
                entries: [LogEntry(term: 2, index: 4), LogEntry(term: 2, index: 5, data: [1])], commit: 3))
        node.advance(node.ready())
        node.step(
            RaftMessage(
                kind: .appendEntries, from: 3, to: 2, term: 3, logTerm: 2, index: 4,
                entries: [LogEntry(term: 3, index: 5, data: [2])], commit: 3))
        let ready = node.ready()
        #expect(ready.entries == [LogEntry(term: 3, index: 5, data: [2])])
        #expect(node.entry(at: 5)?.data == [2])
    }

    @Test("a leader does not commit an earlier term's entry by counting replicas (Figure 8)")
    func noCommitOfOldTermByCounting() {
        var node = RaftNode(settings: RaftSettings(id: 1), state: .bootstrap(voters: [1, 2, 3]))
        node.advance(node.ready())
        // A term-2 entry at index 4 that was never committed.
        node.step(
            RaftMessage(
                kind: .appendEntries, from: 3, to: 1, term: 2, logTerm: 1, index: 3,
                entries: [LogEntry(term: 2, index: 4, data: [7])], commit: 3))
        node.advance(node.ready())
        node.campaign()
        node.advance(node.ready())
        node.step(RaftMessage(kind: .preVoteResponse, from: 2, to: 1, term: 3))
        node.advance(node.ready())
        node.step(RaftMessage(kind: .voteResponse, from: 2, to: 1, term: 3))
        #expect(node.role == .leader)
        node.advance(node.ready())
        // Member 2 acknowledges index 4 (term 2) but not the leader's term-3 entry at 5.
        node.step(RaftMessage(kind: .appendResponse, from: 2, to: 1, term: 3, index: 4))
        #expect(node.commitIndex == 3)
        node.step(RaftMessage(kind: .appendResponse, from: 2, to: 1, term: 3, index: 5))
        #expect(node.commitIndex == 5)
    }

    // MARK: Proposals and reads

    @Test("a follower refuses a proposal and names the leader, or forwards it when asked to")
    func followerProposals() throws {
        var harness = Harness(voters: [1, 2, 3])
        harness.elect(1)
        #expect(throws: ProposalError.notLeader(leader: 1)) { try harness.nodes[2]!.propose([1]) }
        #expect(ProposalError.notLeader(leader: 1).description == "not leader, leader is 1")

        var forwarding = Harness(voters: [1, 2, 3]) { $0.forwardProposals = true }
        forwarding.elect(1)
        let before = forwarding.nodes[1]!.lastIndex
        #expect(try forwarding.nodes[2]!.propose([9]) == nil)
        forwarding.settle()
        #expect(forwarding.nodes[1]!.lastIndex == before + 1)
        #expect(forwarding.nodes[1]!.entry(at: before + 1)?.data == [9])
    }

    @Test("a read without a known leader is refused")
    func readWithoutLeader() {
        var node = RaftNode(settings: RaftSettings(id: 1), state: .bootstrap(voters: [1, 2, 3]))
        #expect(throws: ProposalError.notLeader(leader: noNode)) { try node.readIndex(context: 1) }
    }

    @Test("ReadIndex: a leader answers only after a quorum acknowledges a later heartbeat")
    func readIndexNeedsQuorum() throws {
        var harness = Harness(voters: [1, 2, 3])
        harness.elect(1)
        harness.drop = { $0.kind == .heartbeatResponse }
        try harness.nodes[1]!.readIndex(context: 77)
        var leader = harness.nodes[1]!
        let ready = leader.ready()
        #expect(ready.readStates.isEmpty)
        #expect(ready.leaderMessages.filter { $0.kind == .heartbeat }.count == 2)
        leader.advance(ready)
        let round = ready.leaderMessages.first { $0.kind == .heartbeat }!.context
        leader.step(RaftMessage(kind: .heartbeatResponse, from: 2, to: 1, term: leader.term, context: round - 1))
        #expect(!leader.hasReady || leader.ready().readStates.isEmpty, "an older round must not confirm the read")
        if !leader.hasReady { leader.step(RaftMessage(kind: .heartbeatResponse, from: 2, to: 1, term: leader.term, context: round)) }
        let confirmed = leader.ready()
        #expect(confirmed.readStates == [ReadState(index: leader.commitIndex, context: 77)])
    }

    // MARK: Membership

    @Test("membership changes are validated and applied one at a time")
    func confChangeValidation() throws {
        var harness = Harness(voters: [1, 2, 3])
        harness.elect(1)
        #expect(throws: ProposalError.invalidConfChange("2 is already a voter")) {
            try harness.nodes[1]!.proposeConfChange(ConfChange(.addVoter, node: 2))
        }
        #expect(throws: ProposalError.invalidConfChange("9 is not a member")) {
            try harness.nodes[1]!.proposeConfChange(ConfChange(.removeNode, node: 9))
        }
        _ = try harness.nodes[1]!.proposeConfChange(ConfChange(.addLearner, node: 4))
        #expect(throws: ProposalError.confChangePending) {
            try harness.nodes[1]!.proposeConfChange(ConfChange(.addVoter, node: 4))
        }
        harness.settle()
        #expect(harness.nodes.values.allSatisfy { $0.confState == ConfState(voters: [1, 2, 3], learners: [4]) })
        _ = try harness.nodes[1]!.proposeConfChange(ConfChange(.addVoter, node: 4))
        harness.settle()
        #expect(harness.nodes[1]!.confState == ConfState(voters: [1, 2, 3, 4]))
    }

    @Test("leader transfer hands leadership to an up-to-date target")
    func leaderTransfer() throws {
        var harness = Harness(voters: [1, 2, 3])
        harness.elect(1)
        harness.nodes[1]!.transferLeadership(to: 3)
        #expect(throws: ProposalError.transferInProgress) { try harness.nodes[1]!.propose([1]) }
        harness.settle()
        #expect(harness.leader() == 3)
    }

    // MARK: Snapshots

    @Test("a follower behind the compacted log gets the snapshot in ordered chunks")
    func snapshotChunks() throws {
        var harness = Harness(voters: [1, 2, 3]) {
            $0.maxSnapshotChunkBytes = 10
            $0.maxInflightSnapshotChunks = 2
        }
        harness.elect(1)
        harness.drop = { $0.to == 3 }
        for value in 0..<10 { _ = try harness.nodes[1]!.propose([UInt8(value)]) }
        harness.settle()
        var leader = harness.nodes[1]!
        let snapshot = Snapshot(metadata: leader.appliedSnapshotMetadata, data: Array(0..<25))
        leader.compact(with: snapshot)
        harness.nodes[1] = leader
        var chunks: [SnapshotChunk] = []
        harness.drop = { message in
            if let chunk = message.snapshot { chunks.append(chunk) }
            return false
        }
        harness.nodes[1]!.step(RaftMessage(kind: .heartbeatResponse, from: 3, to: 1, term: leader.term))
        harness.settle()
        #expect(chunks.map(\.offset) == [0, 10, 20])
        #expect(chunks.map(\.isLast) == [false, false, true])
        #expect(harness.nodes[3]!.latestSnapshot == snapshot)
        #expect(harness.nodes[3]!.commitIndex == snapshot.metadata.index)
    }

    @Test("a snapshot the shell refuses changes nothing, and the leader sends it again from the first chunk")
    func refusedSnapshotChangesNothing() throws {
        var harness = Harness(voters: [1, 2, 3]) { $0.maxSnapshotChunkBytes = 10 }
        harness.elect(1)
        harness.drop = { $0.to == 3 }
        for value in 0..<10 { _ = try harness.nodes[1]!.propose([UInt8(value)]) }
        harness.settle()
        var leader = harness.nodes[1]!
        leader.compact(with: Snapshot(metadata: leader.appliedSnapshotMetadata, data: Array(0..<25)))
        harness.nodes[1] = leader
        var follower = harness.nodes[3]!
        let before = (follower.hardState, follower.lastIndex, follower.commitIndex)
        var offered: [Snapshot] = []
        var responses: [RaftMessage] = []
        for offset in stride(from: 0, to: 25, by: 10) {
            let chunk = SnapshotChunk(
                metadata: leader.appliedSnapshotMetadata, offset: UInt64(offset), data: Array(UInt8(offset)..<UInt8(min(offset + 10, 25))),
                isLast: offset == 20)
            follower.step(RaftMessage(kind: .installSnapshot, from: 1, to: 3, term: leader.term, snapshot: chunk)) { snapshot in
                offered.append(snapshot)
                return false
            }
            let ready = follower.ready()
            #expect(ready.snapshot == nil && ready.entries.isEmpty)
            responses += ready.messages
            follower.advance(ready)
        }
        #expect(offered.map(\.data) == [Array(0..<25)])
        #expect((follower.hardState, follower.lastIndex, follower.commitIndex) == before)
        #expect(follower.latestSnapshot == nil)
        let refusal = try #require(responses.last)
        #expect(refusal.kind == .snapshotResponse && refusal.reject && refusal.rejectHint == 0)
    }

    @Test("recognizes: members of the applied membership and members a change in the log adds, nobody else")
    func recognizesMembers() throws {
        var harness = Harness(voters: [1, 2, 3])
        harness.elect(1)
        #expect(harness.nodes[2]!.recognizes(1) && harness.nodes[2]!.recognizes(3))
        #expect(!harness.nodes[2]!.recognizes(4) && !harness.nodes[2]!.recognizes(noNode))
        // The addition reaches node 2's log, but is not yet committed there (no heartbeat).
        harness.drop = { $0.kind == .heartbeat || $0.kind == .appendResponse }
        _ = try harness.nodes[1]!.proposeConfChange(ConfChange(.addLearner, node: 4))
        harness.settle()
        #expect(!harness.nodes[2]!.confState.contains(4))
        #expect(harness.nodes[2]!.recognizes(4))
        #expect(!harness.nodes[2]!.recognizes(5))
    }

    @Test("an append whose entries are not consecutive after its index, or whose terms go back, is dropped")
    func inconsistentAppendIsDropped() {
        var node = RaftNode(settings: RaftSettings(id: 2), state: .bootstrap(voters: [1, 2, 3]))
        node.advance(node.ready())
        let last = node.lastIndex
        let shapes: [[LogEntry]] = [
            [LogEntry(term: 2, index: 1_000_000)],
            [LogEntry(term: 2, index: last + 1), LogEntry(term: 2, index: last + 3)],
            [LogEntry(term: 2, index: last + 1), LogEntry(term: 1, index: last + 2)],
            [LogEntry(term: 9, index: last + 1)],
        ]
        for entries in shapes {
            let append = RaftMessage(kind: .appendEntries, from: 1, to: 2, term: 2, logTerm: 1, index: last, entries: entries)
            #expect(!append.hasConsistentEntries)
            node.step(append)
            #expect(node.lastIndex == last && node.term == 1 && !node.hasReady)
        }
        let good = RaftMessage(
            kind: .appendEntries, from: 1, to: 2, term: 2, logTerm: 1, index: last, entries: [LogEntry(term: 2, index: last + 1)])
        #expect(good.hasConsistentEntries)
        node.step(good)
        #expect(node.lastIndex == last + 1)
    }

    // MARK: Encoding

    @Test("messages, hard states and membership changes survive encoding; truncated bytes are refused")
    func codecRoundTrip() {
        let chunk = SnapshotChunk(
            metadata: SnapshotMetadata(index: 9, term: 3, confState: ConfState(voters: [1, 2], learners: [5])),
            offset: 4, data: [1, 2, 3], isLast: true)
        let message = RaftMessage(
            kind: .installSnapshot, from: 1, to: 2, term: 3, logTerm: 2, index: 8,
            entries: [LogEntry(term: 3, index: 9, kind: .confChange, data: [0, 1, 2])], commit: 7, reject: true,
            rejectHint: 6, context: 5, snapshot: chunk)
        let bytes = message.encoded()
        #expect(RaftMessage(decoding: bytes) == message)
        for length in [0, 1, bytes.count / 2, bytes.count - 1] {
            #expect(RaftMessage(decoding: Array(bytes.prefix(length))) == nil)
        }
        #expect(RaftMessage(decoding: bytes + [0]) == nil)
        let hardState = HardState(term: 4, vote: 2, commit: 10)
        #expect(HardState(decoding: hardState.encoded()) == hardState)
        let change = ConfChange(.addLearner, node: 7, context: [9, 9])
        #expect(ConfChange(decoding: change.encoded()) == change)
        #expect(ConfChange(decoding: [9]) == nil)
    }

    @Test("invalid settings are named")
    func settingsValidation() {
        var settings = RaftSettings(id: 1)
        #expect(settings.validationError() == nil)
        settings.electionTicks = 1
        #expect(settings.validationError() == "electionTicks must be greater than heartbeatTicks")
        #expect(RaftSettings(id: 0).validationError() == "id must not be 0")
    }
}
