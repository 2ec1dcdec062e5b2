import Linearizability
import Primitives
@_spi(Testing) import RaftCore
@_spi(Testing) import ReplicatedMember
import StateMachine

/// What the checker remembers about one member across its crashes and restarts: what it made
/// durable, what it promised its leader, and how its term, leadership and match indexes moved.
struct MemberWatch {
    /// What the member had made durable when its last batch was synced: a restart must find
    /// at least this (a crash never loses what was synced).
    struct Baseline {
        /// The term and the vote in it.
        var term: Term = 0
        var vote: NodeID = noNode
        /// The commit index.
        var commit: LogIndex = 0
        /// The last durable log entry's index and term.
        var lastIndex: LogIndex = 0
        var lastTerm: Term = 0
    }

    /// An acknowledgement the member sent to its leader: its log matches the leader's through
    /// `index`, where it holds an entry of `entryTerm`.
    struct Acknowledgement {
        var term: Term
        var index: LogIndex
        var entryTerm: Term
    }

    var baseline = Baseline()
    /// The highest commit index written without a sync since the last synced batch (the next
    /// synced write makes it durable too).
    var unsyncedCommit: LogIndex = 0
    /// The highest acknowledgement sent in the member's current term.
    var acknowledgement: Acknowledgement?
    /// The term at the last check.
    var term: Term = 0
    /// The highest term of the messages processed since the last check.
    var inputTerm: Term = 0
    /// Ticks processed since the member last started.
    var ticks = 0
    /// The term in which the member was last seen leading, and from which tick.
    var leaderTerm: Term = 0
    var leaderSince = 0
    /// As leader: the tick at which each peer's last response (in the leader's term) arrived.
    var heard: [NodeID: Int] = [:]
    /// As leader: the tick from which each voter has been one in the configuration it leads
    /// (a voter added while it leads is silent only from then).
    var voterSince: [NodeID: Int] = [:]
    /// As leader: the highest match index seen for each peer in `leaderTerm`.
    var matches: [NodeID: LogIndex] = [:]
    /// As leader: the commit index at the last check in `leaderTerm`.
    var leaderCommit: LogIndex = 0
}

/// Every member's watch, by member index, growing as members are added.
struct MemberWatches {
    private var all: [MemberWatch] = []

    subscript(index: Int) -> MemberWatch {
        // In place: a get (and set) would copy the watch, and then its dictionaries on each change.
        _read {
            if index < all.count { yield all[index] } else { yield MemberWatch() }
        }
        _modify {
            while all.count <= index { all.append(MemberWatch()) }
            yield &all[index]
        }
    }
}

extension Simulation {
    // MARK: - Observing members

    /// Notes what a member's message promises: a granted acknowledgement of entries must hold
    /// for as long as the member stays in that term.
    func watchSent(_ message: RaftMessage) {
        let sender = Int(message.from) - 1
        if message.kind == .heartbeatResponse || (message.kind == .appendResponse && !message.reject && message.index > 0),
            let leader = leaderOfTerm[message.term], leader != message.to
        {
            // Only the leader of a term sends appends and heartbeats in it; an answer in that
            // term to anyone else means an append from an older term was taken as current.
            fail(
                "stale leader refused",
                "member \(message.from) answered an append or heartbeat of member \(message.to) in term \(message.term), whose leader is \(leader)"
            )
            return
        }
        guard message.kind == .appendResponse, !message.reject, message.index > 0, sender >= 0, sender < members.count,
            members[sender].isRunning, let entryTerm = members[sender].withCore({ $0.raft.term(at: message.index) })
        else { return }
        if let previous = watches[sender].acknowledgement, previous.term == message.term, previous.index >= message.index { return }
        watches[sender].acknowledgement = MemberWatch.Acknowledgement(term: message.term, index: message.index, entryTerm: entryTerm)
    }

    /// Notes an input a member just processed (ticks and the terms and responses it heard).
    func watchProcessed(_ input: Input, at index: Int) {
        switch input {
        case .tick:
            watches[index].ticks += 1
        case .message(let message) where message.kind == .transferLeader:
            watches[index].leaderSince = watches[index].ticks
        case .message(let message):
            watches[index].inputTerm = max(watches[index].inputTerm, message.term)
            if message.kind == .appendResponse || message.kind == .heartbeatResponse || message.kind == .snapshotResponse,
                members[index].core?.raft.role == .leader, message.term == members[index].core?.raft.term
            {
                watches[index].heard[message.from] = watches[index].ticks
            }
        case .transfer:
            // A leadership transfer restarts the leader's CheckQuorum window.
            watches[index].leaderSince = watches[index].ticks
        case .request, .campaign, .peerLost, .forwardMessage:
            break
        }
    }

    /// Records what a member made durable in the batch just synced: the term and vote it acted
    /// on when the batch was formed (which the batch's hard state must carry; inputs processed
    /// while it was in flight may have changed them since), the commit index the batch wrote,
    /// and its log as the core now counts it stable.
    func watchDurable(_ index: Int, _ ready: Ready) {
        guard members[index].isRunning else { return }
        guard ready.mustSync else {
            // Written, not synced: a crash may lose it until a later batch is synced.
            if let commit = ready.hardState?.commit { watches[index].unsyncedCommit = max(watches[index].unsyncedCommit, commit) }
            return
        }
        let commit = max(ready.hardState?.commit ?? watches[index].baseline.commit, watches[index].unsyncedCommit)
        watches[index].unsyncedCommit = 0
        let acted = members[index].pendingTermVote
        watches[index].baseline = members[index].withCore { core in
            let last = core.raft.stableIndex
            return MemberWatch.Baseline(
                term: acted.term, vote: acted.vote, commit: commit, lastIndex: last, lastTerm: core.raft.term(at: last) ?? 0)
        }
    }

    /// A batch whose fsync failed may or may not be on the disk after the crash that follows
    /// (its data reached the page cache). If its entries overwrite the synced log's tail (a
    /// follower truncating a conflicting suffix for a new leader), a restart may find either
    /// version, so only the log before its first entry stays required.
    func watchFailedPersist(_ index: Int, _ ready: Ready, termBeforeBatch: Term?) {
        guard let first = ready.entries.first?.index, first <= watches[index].baseline.lastIndex else { return }
        watches[index].baseline.lastIndex = first - 1
        watches[index].baseline.lastTerm = termBeforeBatch ?? 0
    }

    /// The commit index the checker knows member `id` made durable (testing: the baseline a
    /// restart is compared with).
    @_spi(Testing) public func syncedCommit(of id: NodeID) -> LogIndex {
        watches[Int(id) - 1].baseline.commit
    }

    // MARK: - Checks

    /// Takes up watching a member that just restarted: compares it with what it had made
    /// durable before it crashed, and starts its term, tick and leadership counts afresh.
    func checkRecovered(_ index: Int) {
        guard let raft = members[index].core?.raft else { return }
        if options.checksProtocolRules { compareWithBaseline(index, raft) }
        watches[index].term = raft.term
        watches[index].inputTerm = 0
        watches[index].unsyncedCommit = 0
        watches[index].ticks = 0
        watches[index].leaderTerm = 0
        checkAcknowledgementsKept(index, raft)
    }

    /// A restarted member has at least what it had synced: its term, its vote in that term, its
    /// commit index and its last synced log entry (or a snapshot covering it).
    private func compareWithBaseline(_ index: Int, _ raft: RaftNode) {
        let baseline = watches[index].baseline
        let id = members[index].id
        if raft.term < baseline.term {
            fail("durable term", "member \(id) restarted in term \(raft.term) after term \(baseline.term) was synced")
        } else if raft.term == baseline.term && baseline.vote != noNode && raft.vote != baseline.vote {
            fail(
                "durable vote",
                "member \(id) restarted with vote \(raft.vote) in term \(raft.term), where it had synced a vote for \(baseline.vote)")
        } else if baseline.lastIndex >= raft.firstIndex && raft.term(at: baseline.lastIndex) != baseline.lastTerm {
            fail(
                "durable log",
                "member \(id) restarted without its synced entry \(baseline.lastIndex) (term \(baseline.lastTerm)); it holds \(raft.term(at: baseline.lastIndex).map { "term \($0)" } ?? "nothing") there"
            )
        } else if raft.commitIndex < baseline.commit {
            fail("durable commit", "member \(id) restarted with commit index \(raft.commitIndex) after \(baseline.commit) was synced")
        }
    }

    /// The checks that follow a member's every step (after `checkMember`'s).
    func checkWatched(_ index: Int) {
        guard violation == nil, members[index].isRunning else { return }
        members[index].withCore { checkWatched(index, $0.raft) }
    }

    /// `checkWatched(_:)` of a running member's Raft core, read in place.
    private func checkWatched(_ index: Int, _ raft: RaftNode) {
        checkTermRise(index, raft)
        checkAcknowledgementsKept(index, raft)
        if raft.role == .leader {
            if watches[index].leaderTerm != raft.term {
                watches[index].leaderTerm = raft.term
                watches[index].leaderSince = watches[index].ticks
                watches[index].heard = [:]
                watches[index].matches = [:]
                watches[index].leaderCommit = raft.commitIndex
            }
            if options.checksProtocolRules { checkLeaderCommit(index, raft) }
            if !raft.confState.voters.contains(raft.id) {
                fail(
                    "removed leader steps down",
                    "member \(raft.id) leads term \(raft.term) but is not a voter of the configuration it applied")
                return
            }
            checkMatchIndexes(index, raft)
            if options.checkQuorum { checkLeaderHearsQuorum(index, raft) }
        }
    }

    /// A member's term rises only when it hears a higher term or starts a real election (then
    /// by one, voting for itself); a pre-election (§9.6) never raises it.
    private func checkTermRise(_ index: Int, _ raft: RaftNode) {
        let before = watches[index].term
        let heard = watches[index].inputTerm
        watches[index].term = raft.term
        watches[index].inputTerm = 0
        guard raft.term > before, raft.term > heard else { return }
        let base = max(before, heard)
        if raft.term != base + 1 || raft.vote != raft.id {
            fail(
                "term changes",
                "member \(raft.id) moved from term \(before) to \(raft.term) (\(raft.role)) without hearing that term or starting an election for it"
            )
        }
    }

    /// A member that acknowledged entries to its leader keeps them while it stays in that term:
    /// the leader may have counted them toward a commit.
    private func checkAcknowledgementsKept(_ index: Int, _ raft: RaftNode) {
        guard let promise = watches[index].acknowledgement else { return }
        guard raft.term == promise.term else {
            if raft.term > promise.term { watches[index].acknowledgement = nil }
            return
        }
        guard promise.index >= raft.firstIndex - 1 else { return }
        let held = raft.term(at: promise.index)
        if held != promise.entryTerm {
            fail(
                "acknowledged entries kept",
                "member \(raft.id) acknowledged entry \(promise.index) (term \(promise.entryTerm)) in term \(promise.term), and now holds \(held.map { "term \($0)" } ?? "nothing") there in the same term"
            )
        }
    }

    /// A leader advances its commit index only to an entry of its own term; earlier entries are
    /// committed with it, never by counting their replicas (§5.4.2).
    private func checkLeaderCommit(_ index: Int, _ raft: RaftNode) {
        let previous = watches[index].leaderCommit
        watches[index].leaderCommit = raft.commitIndex
        guard raft.commitIndex > previous, let term = raft.term(at: raft.commitIndex), term != raft.term else { return }
        fail(
            "leader commit rule",
            "leader \(raft.id) of term \(raft.term) advanced its commit index from \(previous) to \(raft.commitIndex), an entry of term \(term)"
        )
    }

    /// A leader's match index for a peer never moves back within its term (Raft's Figure 2).
    private func checkMatchIndexes(_ index: Int, _ raft: RaftNode) {
        for peer in raft.confState.members where peer != raft.id {
            guard let match = raft.matchIndex(of: peer) else {
                watches[index].matches[peer] = nil
                continue
            }
            if let previous = watches[index].matches[peer], match < previous {
                fail(
                    "match index monotonicity",
                    "leader \(raft.id) lowered member \(peer)'s match index from \(previous) to \(match) in term \(raft.term)")
                return
            }
            watches[index].matches[peer] = match
        }
    }

    /// With CheckQuorum, a leader that has not heard from a quorum of voters for two election
    /// timeouts of its own ticks has stepped down (one more tick allows for the window's edge).
    private func checkLeaderHearsQuorum(_ index: Int, _ raft: RaftNode) {
        let voters = raft.confState.voters
        if watches[index].voterSince.count != voters.count || voters.contains(where: { watches[index].voterSince[$0] == nil }) {
            watches[index].voterSince = watches[index].voterSince.filter { voters.contains($0.key) }
            for voter in voters where watches[index].voterSince[voter] == nil { watches[index].voterSince[voter] = watches[index].ticks }
        }
        let watch = watches[index]
        var heardAt = voters.map {
            $0 == raft.id ? watch.ticks : max(watch.heard[$0] ?? 0, watch.leaderSince, watch.voterSince[$0] ?? 0)
        }
        guard heardAt.count >= raft.confState.quorum else { return }
        heardAt.sort(by: >)
        let silent = watch.ticks - heardAt[raft.confState.quorum - 1]
        if silent > 2 * options.electionTicks + 1 {
            fail("check quorum", "leader \(raft.id) of term \(raft.term) has heard from no quorum for \(silent) ticks and still leads")
        }
    }

    /// A lease is renewed only by a leader that a quorum still follows: when the keep-alive was
    /// sent, no leader of a later term had been elected (such a leader's quorum refuses the
    /// heartbeat round that would confirm the renewal).
    func checkRenewal(_ operation: Int) {
        guard options.checksProtocolRules else { return }
        let member = operations[operation].member
        guard let term = members[member].core?.raft.term else { return }
        let sent = operations[operation].sent
        if let newer = leaderTerms.last(where: { $0.time <= sent && $0.term > term }) {
            fail(
                "lease renewal",
                "member \(members[member].id) renewed a lease in term \(term) for a keep-alive sent after term \(newer.term) had a leader"
            )
        }
    }

    /// Records the whole-state digest of a member that applied through `index`; members at
    /// equal applied indexes must agree. The digest reads the whole state, so it is recorded
    /// first only at every fourth index and after a snapshot install (`always`); a member that
    /// reaches a recorded index is always compared. (A divergence persists, so it is still
    /// found at a later recorded index, and the end of the run compares every member.)
    func checkDigest(at index: LogIndex, member: Int, always: Bool) {
        guard digestRecord[index] != nil || always || index % 4 == 0 else { return }
        let digest = members[member].withCore { $0.store.digest() }
        if let recorded = digestRecord[index] {
            if recorded.digest != digest {
                fail(
                    "state machine safety",
                    "member \(members[member].id) has state digest \(digest) after applying through \(index); member \(recorded.member) had \(recorded.digest)"
                )
            }
        } else {
            digestRecord[index] = (digest, members[member].id)
        }
    }

    /// Checks that the entry whose application answered a write is that write (the member and
    /// request it names), and remembers the entry for the end-of-run durability check.
    func checkAnsweredEntry(_ entry: LogEntry?, operation: Int, member: Int) {
        guard operations[operation].isWrite else { return }
        guard let entry, let origin = Member.requestOrigin(of: entry), origin.origin == members[member].id,
            origin.request == RequestID(operation)
        else {
            fail("durability", "write \(operation) was answered from an entry that is not it")
            return
        }
        answeredEntries[operation] = hash(entry)
    }

    /// Reads every key at the leader after healing (as Jepsen's final reads do), so that the
    /// history ends with the state every acknowledged write must be reflected in.
    @discardableResult
    public func checkFinalReads() -> Bool {
        guard let leader = leader() else {
            fail("final reads", "no leader to read from after convergence")
            return false
        }
        var unread = Array(0..<keyCount)
        var target = leader
        for _ in 0..<5 where !unread.isEmpty && violation == nil {
            let reads = unread.map { (key: $0, operation: submit(.get(key: "k\($0)"), at: Int(target) - 1)) }
            run(until: { sim in reads.allSatisfy { sim.operations[$0.operation].outcome != .pending } }, timeout: options.livenessBound)
            // A read refused or cut off (the leader changed) is sent again to the leader now.
            unread = reads.filter { if case .succeeded = operations[$0.operation].outcome { false } else { true } }.map(\.key)
            target = self.leader() ?? target
        }
        if violation == nil && !unread.isEmpty {
            fail("final reads", "keys \(unread.map { "k\($0)" }) could not be read after healing")
        }
        return violation == nil
    }
}
