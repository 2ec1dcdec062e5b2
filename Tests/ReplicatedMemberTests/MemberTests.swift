import Primitives
import RaftCore
import StateMachine
import Storage
import Testing

@testable import ReplicatedMember

/// A synchronous shell for members: batches complete at once and messages are delivered in order.
struct MemberHarness {
    var members: [NodeID: Member] = [:]
    var inFlight: [RaftMessage] = []
    var responses: [RequestID: ClientResponse] = [:]
    var appliedAt: [RequestID: LogIndex] = [:]
    var expired: [Int64] = []
    /// Auto-compaction revisions each member applied, in order.
    var autoCompactions: [NodeID: [Int64]] = [:]
    /// Batches, on any member, in which a member's peer URLs changed.
    var peerURLChanges = 0
    /// Forwards to the leader and replies delivered between members.
    var forwardMessagesDelivered = 0
    /// Forwards and replies sent to a member not in ``members`` (taken out by a test): sender,
    /// receiver and message.
    var undeliveredForwards: [(from: NodeID, to: NodeID, message: ForwardMessage)] = []
    var nextRequest: RequestID = 1

    init(voters: [NodeID], configure: (inout MemberConfiguration) -> Void = { _ in }) {
        for id in voters {
            var configuration = MemberConfiguration(id: id)
            configure(&configuration)
            members[id] = Member(
                configuration: configuration,
                recovered: RecoveredState(
                    raft: .bootstrap(voters: voters), store: StateStore(configuration: configuration.storeConfiguration)))
        }
        settle()
    }

    mutating func settle(maxRounds: Int = 1_000) {
        for _ in 0..<maxRounds {
            var moved = false
            for id in members.keys.sorted() where members[id]!.hasBatch {
                let ready = members[id]!.startBatch()
                let output = members[id]!.finishBatch()
                inFlight.append(contentsOf: ready.leaderMessages + output.messages)
                for (request, response) in output.responses { responses[request] = response }
                appliedAt.merge(output.appliedAt) { $1 }
                expired.append(contentsOf: output.expiredLeases)
                autoCompactions[id, default: []].append(contentsOf: output.autoCompactions)
                if output.peerURLsChanged { peerURLChanges += 1 }
                moved = true
            }
            let messages = inFlight
            inFlight = []
            for message in messages {
                members[message.to]?.step(message)
                moved = true
            }
            for id in members.keys.sorted() {
                for (to, message) in members[id]!.takeForwardMessages() {
                    guard members[to] != nil else {
                        undeliveredForwards.append((id, to, message))
                        continue
                    }
                    members[to]!.receive(message, from: id)
                    forwardMessagesDelivered += 1
                    moved = true
                }
                for (request, response) in members[id]!.takeAnswers() { responses[request] = response }
            }
            if !moved { return }
        }
    }

    mutating func elect(_ id: NodeID) {
        members[id]!.campaign()
        settle()
    }

    /// Submits a request to a member, settles, and returns the answer.
    mutating func call(_ request: ClientRequest, at id: NodeID) -> ClientResponse? {
        let requestID = nextRequest
        nextRequest += 1
        if let immediate = members[id]!.submit(request, id: requestID) { return immediate }
        settle()
        return responses.removeValue(forKey: requestID)
    }

    mutating func tick(_ count: Int) {
        for _ in 0..<count {
            for id in members.keys.sorted() { members[id]!.tick() }
            settle()
        }
    }
}

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

@Suite("Member")
struct MemberTests {
    @Test("a write on any member is applied everywhere and read back linearizably")
    func writeAndRead() throws {
        var harness = MemberHarness(voters: [1, 2, 3])
        harness.elect(1)
        let put = harness.call(.write(.put(PutRequest(key: bytes("a"), value: bytes("1")))), at: 2)
        guard case .write(.put(let response))? = put else {
            Issue.record("unexpected \(String(describing: put))")
            return
        }
        #expect(response.revision == 2)
        for id: NodeID in [1, 2, 3] {
            let read = harness.call(.range(RangeRequest(key: bytes("a"))), at: id)
            guard case .range(let range)? = read else {
                Issue.record("member \(id): unexpected \(String(describing: read))")
                continue
            }
            #expect(range.kvs.map(\.value) == [bytes("1")])
        }
        #expect(harness.members.values.allSatisfy { $0.store.currentRevision == 2 })
    }

    @Test("a compare-and-swap transaction succeeds once and fails on a stale value")
    func compareAndSwap() {
        var harness = MemberHarness(voters: [1, 2, 3])
        harness.elect(1)
        _ = harness.call(.write(.put(PutRequest(key: bytes("k"), value: bytes("old")))), at: 1)
        func swap(expecting value: String) -> Bool? {
            let txn = TxnRequest(
                compares: [Compare(key: bytes("k"), target: .value(bytes(value)), result: .equal)],
                success: [.put(PutRequest(key: bytes("k"), value: bytes("new")))])
            guard case .write(.txn(let response))? = harness.call(.write(.txn(txn)), at: 3) else { return nil }
            return response.succeeded
        }
        #expect(swap(expecting: "old") == true)
        #expect(swap(expecting: "old") == false)
    }

    @Test(
        "a transaction that writes nothing is served as a read: a serializable one at once from the member's state, a linearizable one after a ReadIndex round; neither enters the log"
    )
    func readOnlyTransactions() {
        var harness = MemberHarness(voters: [1, 2, 3])
        harness.elect(1)
        _ = harness.call(.write(.put(PutRequest(key: bytes("a"), value: bytes("1")))), at: 1)
        // Member 3 misses the second put.
        let third = harness.members.removeValue(forKey: 3)!
        _ = harness.call(.write(.put(PutRequest(key: bytes("a"), value: bytes("2")))), at: 1)
        harness.members[3] = third
        let lastIndex = harness.members[1]!.raft.lastIndex

        func read(serializable: Bool) -> TxnRequest {
            TxnRequest(
                compares: [Compare(key: bytes("a"), target: .value(bytes("2")), result: .equal)],
                success: [.range(RangeRequest(key: bytes("a"), serializable: serializable))],
                failure: [.range(RangeRequest(key: bytes("a"), serializable: serializable))])
        }
        func answer(_ response: ClientResponse?) -> (succeeded: Bool, value: String)? {
            guard case .write(.txn(let txn))? = response, case .range(let range)? = txn.responses.first,
                let kv = range.kvs.first
            else { return nil }
            return (txn.succeeded, String(decoding: kv.value, as: UTF8.self))
        }

        // Serializable: answered at once from member 3's own, stale, state.
        let local = harness.members[3]!.submit(.write(.txn(read(serializable: true))), id: 900)
        #expect(answer(local)?.succeeded == false)
        #expect(answer(local)?.value == "1")
        // Linearizable: member 3 waits for the leader's read index and its own apply.
        #expect(harness.members[3]!.submit(.write(.txn(read(serializable: false))), id: 901) == nil)
        harness.settle()
        let confirmed = harness.responses.removeValue(forKey: 901)
        #expect(answer(confirmed)?.succeeded == true)
        #expect(answer(confirmed)?.value == "2")
        // On the leader too, and with a nested transaction (never serializable).
        let nested = TxnRequest(success: [.txn(read(serializable: true))])
        guard case .write(.txn(let outer))? = harness.call(.write(.txn(nested)), at: 1), case .txn(let inner)? = outer.responses.first
        else {
            Issue.record("the nested read-only transaction failed")
            return
        }
        #expect(inner.succeeded)
        #expect(harness.members.values.allSatisfy { $0.raft.lastIndex == lastIndex }, "a read-only transaction entered the log")
        // Errors are a read's: a future revision is refused before anything is read.
        let future = TxnRequest(success: [.range(RangeRequest(key: bytes("a"), revision: 99))])
        #expect(harness.call(.write(.txn(future)), at: 2) == .failure(.state(.futureRevision)))
    }

    @Test("state-machine errors reach the client with etcd's messages")
    func errorsCarryEtcdMessages() {
        var harness = MemberHarness(voters: [1])
        harness.elect(1)
        let response = harness.call(.write(.put(PutRequest(key: [], value: bytes("v")))), at: 1)
        #expect(response == .failure(.state(.emptyKey)))
        #expect(MemberError.state(.emptyKey).message == "etcdserver: key is not provided")
        let future = harness.call(.range(RangeRequest(key: bytes("a"), revision: 99)), at: 1)
        #expect(future == .failure(.state(.futureRevision)))
        let attach = harness.call(.write(.put(PutRequest(key: bytes("a"), value: bytes("v"), lease: 42))), at: 1)
        #expect(attach == .failure(.state(.leaseNotFound)))
    }

    @Test("a member update tells every member's shell that peer URLs changed, so it dials the new address")
    func peerURLUpdateIsReported() {
        var harness = MemberHarness(voters: [1, 2, 3])
        harness.elect(1)
        _ = harness.call(.write(.put(PutRequest(key: bytes("a"), value: [1]))), at: 1)
        #expect(harness.peerURLChanges == 0)
        let update = StateRequest.updateMemberPeerURLs(MemberPeerURLsRequest(id: 3, peerURLs: ["http://10.0.0.13:2380"]))
        guard case .write = harness.call(.write(update), at: 1) else {
            Issue.record("the update failed")
            return
        }
        #expect(harness.peerURLChanges == 3, "each of the three members applies it once")
        #expect(harness.members[2]!.store.member(3)?.peerURLs == ["http://10.0.0.13:2380"])
    }

    @Test("without a leader, reads fail with etcd's no-leader error and writes wait for one")
    func noLeader() {
        var harness = MemberHarness(voters: [1, 2, 3])
        #expect(harness.call(.range(RangeRequest(key: bytes("a"))), at: 1) == .failure(.noLeader))
        // The write waits (Member failover: "a write parked without a leader fails with…").
        #expect(harness.call(.write(.put(PutRequest(key: bytes("a"), value: [1]))), at: 1) == nil)
        #expect(MemberError.noLeader.message == "etcdserver: no leader")
    }

    @Test("an expired lease is revoked by the leader through the log, deleting its keys everywhere")
    func leaseExpiry() {
        var harness = MemberHarness(voters: [1, 2, 3])
        harness.elect(1)
        guard case .write(.leaseGrant(let grant))? = harness.call(.write(.leaseGrant(LeaseGrantRequest(ttl: 3))), at: 1) else {
            Issue.record("grant failed")
            return
        }
        _ = harness.call(.write(.put(PutRequest(key: bytes("session"), value: [1], lease: grant.id))), at: 2)
        // Keep it alive for a while: it must not expire.
        for _ in 0..<5 {
            harness.tick(10)
            #expect(harness.call(.leaseKeepAlive(id: grant.id), at: 1) == .leaseKeepAlive(id: grant.id, ttl: 3))
        }
        #expect(harness.expired.isEmpty)
        guard
            case .leaseTimeToLive(_, let remaining, let granted, let keys)? = harness.call(
                .leaseTimeToLive(id: grant.id, keys: true), at: 1)
        else {
            Issue.record("time-to-live failed")
            return
        }
        #expect(granted == 3 && remaining > 0 && remaining <= 3 && keys == [bytes("session")])
        // Stop renewing: within TTL plus a tick it is revoked, and the key is gone on every member.
        harness.tick(31)
        #expect(harness.expired == [grant.id, grant.id, grant.id], "each member applies the expiry once")
        for member in harness.members.values {
            #expect(member.store.lease(grant.id) == nil)
            #expect((try? member.store.range(RangeRequest(key: bytes("session"))).kvs.isEmpty) == true)
        }
        #expect(harness.call(.leaseKeepAlive(id: grant.id), at: 1) == .leaseKeepAlive(id: grant.id, ttl: 0))
    }

    @Test("a keep-alive clears the checkpointed TTL before answering, so a new leader restarts the full TTL")
    func keepAliveClearsCheckpoint() {
        var harness = MemberHarness(voters: [1, 2, 3]) { $0.leaseCheckpointMilliseconds = 1_000 }
        harness.elect(1)
        guard case .write(.leaseGrant(let grant))? = harness.call(.write(.leaseGrant(LeaseGrantRequest(ttl: 10))), at: 1) else {
            Issue.record("grant failed")
            return
        }
        harness.tick(40)
        let checkpointed = harness.members[2]!.store.lease(grant.id)!.remainingTTL
        #expect(checkpointed > 0 && checkpointed < 10, "a checkpoint should have recorded the remaining TTL, got \(checkpointed)")
        #expect(harness.call(.leaseKeepAlive(id: grant.id), at: 1) == .leaseKeepAlive(id: grant.id, ttl: 10))
        #expect(
            harness.members.values.allSatisfy { $0.store.lease(grant.id)!.remainingTTL == 0 }, "the keep-alive must clear the checkpoint")
        harness.members[1]!.transferLeadership(to: 2)
        harness.settle()
        #expect(harness.members[2]!.raft.role == .leader)
        guard case .leaseTimeToLive(_, let remaining, _, _)? = harness.call(.leaseTimeToLive(id: grant.id, keys: false), at: 2) else {
            Issue.record("time-to-live on the new leader failed")
            return
        }
        #expect(remaining >= 10, "the new leader must count the full TTL from the keep-alive, got \(remaining)")
    }

    @Test("short lease TTLs are raised to 1.5 election timeouts, rounded up")
    func minimumLeaseTTLFollowsElectionTimeout() {
        #expect(MemberConfiguration(id: 1).minimumLeaseTTL == 2)
        var harness = MemberHarness(voters: [1]) { $0.raft.electionTicks = 30 }
        harness.elect(1)
        #expect(harness.members[1]!.configuration.minimumLeaseTTL == 5)
        let grant = harness.call(.write(.leaseGrant(LeaseGrantRequest(ttl: 1))), at: 1)
        guard case .write(.leaseGrant(let granted))? = grant else {
            Issue.record("grant failed: \(String(describing: grant))")
            return
        }
        #expect(granted.ttl == 5)
    }

    @Test("keep-alives and time-to-live are answered by the leader; a follower forwards them and relays the reply")
    func leaseCallsGoToTheLeader() {
        var harness = MemberHarness(voters: [1, 2, 3])
        harness.elect(1)
        #expect(harness.call(.leaseTimeToLive(id: 5, keys: false), at: 1) == .leaseTimeToLive(id: 5, remaining: -1, granted: 0, keys: []))
        guard case .write(.leaseGrant)? = harness.call(.write(.leaseGrant(LeaseGrantRequest(ttl: 30, id: 5))), at: 3) else {
            Issue.record("the grant failed")
            return
        }
        #expect(harness.call(.leaseKeepAlive(id: 5), at: 2) == .leaseKeepAlive(id: 5, ttl: 30))
        guard case .leaseTimeToLive(5, let remaining, 30, [])? = harness.call(.leaseTimeToLive(id: 5, keys: false), at: 3), remaining > 0
        else {
            Issue.record("time-to-live through a follower")
            return
        }
        #expect(harness.call(.leaseKeepAlive(id: 6), at: 2) == .leaseKeepAlive(id: 6, ttl: 0), "unknown lease")
        #expect(harness.forwardMessagesDelivered >= 6, "three forwards and three replies")

        // A forward that reaches a member no longer leading is refused with "leader changed".
        var follower = harness.members[2]!
        follower.receive(.forward(handle: 77, .keepAlive(id: 5)), from: 3)
        #expect(follower.takeForwardMessages().map(\.message) == [.reply(handle: 77, .refused(.leaderChanged))])
        // A reply from a member the request did not go to is ignored.
        #expect(harness.members[2]!.submit(.leaseKeepAlive(id: 5), id: 500) == nil)
        #expect(harness.members[2]!.takeForwardMessages().map(\.to) == [1])
        harness.members[2]!.receive(.reply(handle: 500, .keepAlive(id: 5, ttl: 1)), from: 3)
        #expect(harness.members[2]!.takeAnswers().isEmpty)
        harness.members[2]!.receive(.reply(handle: 500, .keepAlive(id: 5, ttl: 30)), from: 1)
        #expect(harness.members[2]!.takeAnswers().map(\.1) == [.leaseKeepAlive(id: 5, ttl: 30)])
    }

    @Test(
        "a membership change asked of a follower is forwarded to the leader and answered once the follower has applied it; the leader's refusals reach it as member errors"
    )
    func membershipChangeThroughAFollower() {
        var harness = MemberHarness(voters: [1, 2, 3])
        harness.elect(1)
        // Follower 2 forwards the addition, then hears nothing more until the leader replies.
        var follower = harness.members.removeValue(forKey: 2)!
        #expect(follower.submit(.confChange(ConfChange(.addLearner, node: 4)), id: 900) == nil)
        for (to, message) in follower.takeForwardMessages() { harness.members[to]!.receive(message, from: 2) }
        harness.settle()
        #expect(harness.members[1]!.store.member(4)?.isLearner == true, "the leader applied the addition")
        let replies = harness.undeliveredForwards.filter { $0.to == 2 }
        #expect(replies.map(\.message) == [.reply(handle: 900, .confChangeApplied)])
        for reply in replies { follower.receive(reply.message, from: reply.from) }
        // The follower has not applied the change yet: it does not answer.
        #expect(follower.store.member(4) == nil)
        #expect(follower.takeAnswers().isEmpty, "answered before applying the change")
        harness.members[2] = follower
        harness.settle()
        #expect(harness.responses[900] == .confChangeApplied)
        #expect(harness.members[2]!.store.member(4)?.isLearner == true)

        // The leader's refusals, through a follower: a learner that has not caught up, and a
        // change that does not fit the membership.
        #expect(harness.call(.confChange(ConfChange(.addVoter, node: 4)), at: 3) == .failure(.learnerNotReady))
        guard case .failure(.invalidMembershipChange)? = harness.call(.confChange(ConfChange(.removeNode, node: 9)), at: 2) else {
            Issue.record("removing a member that is not in the group was not refused")
            return
        }
        // One change at a time: the second is refused while the first is not applied.
        #expect(harness.members[1]!.submit(.confChange(ConfChange(.removeNode, node: 4)), id: 901) == nil)
        #expect(harness.members[1]!.submit(.confChange(ConfChange(.addLearner, node: 5)), id: 902) == .failure(.membershipChangePending))
        harness.settle()
        #expect(harness.responses[901] == .confChangeApplied)
        #expect(harness.members.values.allSatisfy { $0.store.member(4) == nil })
        #expect(MemberError.learnerNotReady.message == "etcdserver: can only promote a learner member which is in sync with leader")
    }

    @Test("a membership change proposed by a leader that loses its term before it commits fails with leader changed")
    func displacedMembershipChange() {
        var harness = MemberHarness(voters: [1, 2, 3])
        harness.elect(1)
        // The leader appends the change, cut off from the others: they elect a leader whose own
        // entries take the change's index.
        var leader = harness.members.removeValue(forKey: 1)!
        #expect(leader.submit(.confChange(ConfChange(.addLearner, node: 4)), id: 910) == nil)
        _ = leader.startBatch()
        _ = leader.finishBatch()
        _ = leader.takeImmediateMessages()
        harness.tick(40)
        #expect(harness.members[2]!.raft.leader != noNode)
        harness.members[1] = leader
        harness.tick(5)
        #expect(harness.members[1]!.raft.leader != 1)
        #expect(harness.responses[910] == .failure(.leaderChanged))
        #expect(harness.members.values.allSatisfy { $0.store.member(4) == nil })
    }

    @Test(
        "each member publishes its name and client URLs once a leader is known, and again after an election timeout if the proposal was lost"
    )
    func publishesAttributes() {
        var harness = MemberHarness(voters: [1, 2, 3]) { configuration in
            let id = configuration.raft.id
            configuration.publishedName = "n\(id)"
            configuration.publishedClientURLs = ["http://n\(id):2379"]
        }
        #expect(harness.members[1]!.store.member(2)?.name == "", "published before a leader was known")
        harness.elect(1)
        // Member 3's proposal is lost: it is cut off while it makes it.
        var cutOff = harness.members.removeValue(forKey: 3)!
        cutOff.tick()
        _ = cutOff.startBatch()
        _ = cutOff.finishBatch()
        _ = cutOff.takeImmediateMessages()
        harness.members[3] = cutOff
        harness.tick(1)
        for id: NodeID in [1, 2] {
            #expect(harness.members[3]!.store.member(id)?.name == "n\(id)")
            #expect(harness.members[3]!.store.member(id)?.clientURLs == ["http://n\(id):2379"])
        }
        #expect(harness.members[1]!.store.member(3)?.name == "", "member 3's lost proposal was applied")
        // It proposes again once an election timeout has passed.
        harness.tick(harness.members[3]!.configuration.raft.electionTicks)
        #expect(harness.members.values.allSatisfy { $0.store.member(3)?.name == "n3" })
        let applied = harness.members[1]!.appliedIndex
        harness.tick(3 * harness.members[3]!.configuration.raft.electionTicks)
        #expect(harness.members[1]!.appliedIndex == applied, "a published member proposed again")
    }

    @Test("a member snapshots its state and a lagging member catches up from the snapshot")
    func snapshotCatchUp() {
        var harness = MemberHarness(voters: [1, 2, 3]) {
            $0.snapshotCount = 10
            $0.retainedEntries = 0
        }
        harness.elect(1)
        let lagging = harness.members.removeValue(forKey: 3)!
        for value in 0..<30 { _ = harness.call(.write(.put(PutRequest(key: bytes("k\(value % 4)"), value: [UInt8(value)]))), at: 1) }
        #expect(harness.members[1]!.raft.firstIndex > lagging.appliedIndex + 1)
        harness.members[3] = lagging
        harness.tick(3)
        let leaderHash = try? harness.members[1]!.store.hashKV()
        #expect(harness.members[3]!.appliedIndex == harness.members[1]!.appliedIndex)
        #expect(leaderHash != nil && (try? harness.members[3]!.store.hashKV()) == leaderHash)
    }

    @Test("a shell that builds the snapshot itself hands it over; one older than the latest snapshot is refused")
    func shellBuiltSnapshot() {
        var harness = MemberHarness(voters: [1, 2, 3]) {
            $0.snapshotCount = 10
            $0.retainedEntries = 0
            $0.encodesSnapshotData = false
        }
        harness.elect(1)
        let lagging = harness.members.removeValue(forKey: 3)!
        for value in 0..<30 { _ = harness.call(.write(.put(PutRequest(key: bytes("k\(value % 4)"), value: [UInt8(value)]))), at: 1) }
        let stale = harness.members[1]!.snapshotMetadata
        _ = harness.call(.write(.put(PutRequest(key: bytes("later"), value: [1]))), at: 1)
        for value in 0..<10 { _ = harness.call(.write(.put(PutRequest(key: bytes("k\(value)"), value: [2]))), at: 1) }
        harness.members[3] = lagging
        harness.tick(3)
        #expect(harness.members[1]!.needsSnapshotData, "the member leaves building the snapshot to the shell")
        #expect(harness.members[3]!.appliedIndex < harness.members[1]!.appliedIndex)

        // A snapshot from before the member's latest one is refused: the shell builds it again.
        let old = Snapshot(metadata: stale, data: SnapshotCodec.encodeChecksummed([]))
        let refused = !harness.members[1]!.provideSnapshot(old)
        #expect(refused)
        let current = Snapshot(
            metadata: harness.members[1]!.snapshotMetadata,
            data: SnapshotCodec.encodeChecksummed(harness.members[1]!.store.backendPairs()))
        let accepted = harness.members[1]!.provideSnapshot(current)
        #expect(accepted)
        harness.tick(3)
        #expect(harness.members[3]!.appliedIndex == harness.members[1]!.appliedIndex)
        #expect((try? harness.members[3]!.store.hashKV()) == (try? harness.members[1]!.store.hashKV()))
    }

    @Test("after a restart, an old entry with the same request ID does not answer a new request")
    func restartDoesNotMixUpRequests() throws {
        let engine = MemoryEngine()
        let storage = try MemberStorage(engine: engine)
        try storage.bootstrap(voters: [1])
        func start(_ incarnation: UInt64) throws -> Member {
            var configuration = MemberConfiguration(id: 1)
            configuration.incarnation = incarnation
            var member = Member(configuration: configuration, recovered: try storage.recover())
            while member.hasBatch {
                let ready = member.startBatch()
                try storage.persist(ready)
                try storage.write(member.finishBatch())
            }
            member.campaign()
            return member
        }
        var first = try start(1)
        #expect(first.submit(.write(.put(PutRequest(key: bytes("a"), value: bytes("old")))), id: 1) == nil)
        try storage.persist(first.startBatch())  // durable, then the process dies before applying it
        engine.crash()

        var second = try start(2)
        #expect(second.submit(.write(.put(PutRequest(key: bytes("a"), value: bytes("new")))), id: 1) == nil)
        var answers: [(RequestID, ClientResponse)] = []
        for _ in 0..<10 where second.hasBatch {
            let ready = second.startBatch()
            try storage.persist(ready)
            let output = second.finishBatch()
            try storage.write(output)
            answers += output.responses
        }
        #expect(answers.count == 1)
        guard case .write(.put(let put))? = answers.first?.1 else {
            Issue.record("no answer: \(answers)")
            return
        }
        let stored = try second.store.range(RangeRequest(key: bytes("a")))
        #expect(
            stored.kvs.first?.value == bytes("new") && put.revision == stored.kvs.first?.modRevision, "answered with another entry's result"
        )
    }

    @Test("entries and snapshots round-trip through their encodings")
    func envelopeAndSnapshotCodec() throws {
        let envelope = Envelope(
            origin: 3, incarnation: 5, request: 99, body: .put(PutRequest(key: bytes("a"), value: bytes("b"), lease: 7)))
        #expect(Envelope(decoding: envelope.encoded()) == envelope)
        #expect(Envelope(decoding: Array(envelope.encoded().dropLast())) == nil)
        let pairs: [([UInt8], [UInt8])] = [(bytes("k/1"), bytes("x")), (bytes("m/revision"), [0, 1])]
        let decoded = try SnapshotCodec.decode(SnapshotCodec.encode(pairs))
        #expect(decoded.map(\.0) == pairs.map(\.0) && decoded.map(\.1) == pairs.map(\.1))
        #expect(throws: ByteDecodingError.self) { try SnapshotCodec.decode([1, 2, 3]) }
    }

    @Test("a request that waits longer than the request timeout is answered with etcd's timeout, once, and forgotten")
    func requestsTimeOut() {
        var harness = MemberHarness(voters: [1, 2, 3]) { $0.requestTimeoutMilliseconds = 300 }
        harness.elect(1)
        // The leader is cut off from its followers: nothing it proposes commits, no read is confirmed.
        let followers = harness.members.filter { $0.key != 1 }
        harness.members = harness.members.filter { $0.key == 1 }
        #expect(harness.members[1]!.submit(.write(.put(PutRequest(key: bytes("k"), value: bytes("v")))), id: 100) == nil)
        #expect(harness.members[1]!.submit(.range(RangeRequest(key: bytes("k"))), id: 101) == nil)
        harness.settle()
        harness.tick(3)
        #expect(harness.responses.isEmpty, "answered before the timeout: \(harness.responses)")
        harness.tick(1)
        #expect(harness.responses[100] == .failure(.timedOutDueToLeaderFailure))
        #expect(harness.responses[101] == .failure(.timedOutDueToLeaderFailure))
        #expect(harness.members[1]!.raft.role == .leader, "timed out before CheckQuorum deposed the leader")

        // The followers come back: the write's entry commits and applies, but is not answered again.
        harness.responses = [:]
        harness.members.merge(followers) { current, _ in current }
        harness.tick(2)
        #expect(harness.members.values.allSatisfy { $0.store.currentRevision == 2 }, "the entry in the log still applied")
        #expect(harness.responses[100] == nil && harness.responses[101] == nil)

        // A shell may take answers made outside a batch at once, without waiting for one.
        harness.members = harness.members.filter { $0.key == 1 }
        #expect(harness.members[1]!.submit(.write(.put(PutRequest(key: bytes("k"), value: bytes("w")))), id: 102) == nil)
        harness.settle()
        for _ in 0..<4 { harness.members[1]!.tick() }
        #expect(harness.members[1]!.takeAnswers().map(\.0) == [102])
        #expect(harness.members[1]!.takeAnswers().isEmpty)
    }

    @Test("past the backend quota, writes that add data are refused and the member raises the NOSPACE alarm once")
    func backendQuota() {
        var harness = MemberHarness(voters: [1, 2, 3]) { $0.quotaBytes = 1_000 }
        harness.elect(1)
        let put = ClientRequest.write(.put(PutRequest(key: bytes("k"), value: bytes("v"))))
        guard case .write? = harness.call(put, at: 2) else {
            Issue.record("a put under the quota failed")
            return
        }
        #expect(harness.members[1]!.noteBackendSize(1_000) == false, "at the quota, not past it")

        // A follower that measured its own backend past the quota refuses at once.
        #expect(harness.members[2]!.noteBackendSize(1_001) == true)
        #expect(harness.members[2]!.submit(put, id: 900) == .failure(.state(.noSpace)))
        harness.settle()
        #expect(harness.members.values.allSatisfy { $0.store.isOutOfSpace }, "the alarm is replicated")
        #expect(harness.members[2]!.noteBackendSize(1_001) == false, "raised once")
        // Every member now refuses writes that add data, but not deletes.
        #expect(harness.call(put, at: 3) == .failure(.state(.noSpace)))
        let delete = harness.call(.write(.deleteRange(DeleteRangeRequest(key: bytes("k")))), at: 3)
        guard case .write(.deleteRange)? = delete else {
            Issue.record("a delete was refused: \(String(describing: delete))")
            return
        }
    }

    @Test("a learner is promoted only once it has caught up to 90% of the leader's log")
    func learnerPromotionRule() throws {
        var harness = MemberHarness(voters: [1, 2, 3])
        harness.elect(1)
        _ = try harness.members[1]!.proposeConfChange(ConfChange(.addLearner, node: 4))
        harness.settle()
        #expect(harness.members[1]!.store.member(4)?.isLearner == true)
        #expect(throws: ConfChangeRefusal.learnerNotReady) { try harness.members[1]!.proposeConfChange(ConfChange(.addVoter, node: 4)) }

        // The learner starts with an empty log and catches up from the leader.
        var configuration = MemberConfiguration(id: 4)
        configuration.initialMembers = [1, 2, 3, 4]
        harness.members[4] = Member(
            configuration: configuration, recovered: RecoveredState(raft: PersistentState(), store: StateStore()))
        harness.tick(3)
        #expect(harness.members[4]!.appliedIndex == harness.members[1]!.appliedIndex)
        let position = try harness.members[1]!.proposeConfChange(ConfChange(.addVoter, node: 4))
        harness.settle()
        #expect(harness.members[1]!.raft.confState.voters.contains(4) && position.index > 0)
    }

    @Test("a leader answers time-to-live only once it has applied what is committed, so a grant answered elsewhere is seen")
    func timeToLiveWaitsForApply() {
        var harness = MemberHarness(voters: [1, 2, 3])
        harness.elect(1)
        #expect(harness.members[1]!.submit(.write(.leaseGrant(LeaseGrantRequest(ttl: 30, id: 7))), id: 50) == nil)
        // The leader's batch is in flight while both followers store the grant and acknowledge
        // it: the grant commits (a follower would answer its client) before the leader applies it.
        let ready = harness.members[1]!.startBatch()
        for message in ready.leaderMessages { harness.members[message.to]!.step(message) }
        for id: NodeID in [2, 3] {
            _ = harness.members[id]!.startBatch()
            for message in harness.members[id]!.finishBatch().messages { harness.members[1]!.step(message) }
        }
        #expect(harness.members[1]!.raft.commitIndex > harness.members[1]!.appliedIndex)
        #expect(harness.members[1]!.submit(.leaseTimeToLive(id: 7, keys: false), id: 51) == nil, "answered before applying the grant")
        let output = harness.members[1]!.finishBatch()
        let answer = output.responses.first { $0.0 == 51 }?.1
        guard case .leaseTimeToLive(7, let remaining, 30, [])? = answer, remaining > 0 else {
            Issue.record("time-to-live after the apply: \(String(describing: answer))")
            return
        }
    }

    @Test("MoveLeader is answered once the target leads, or with etcd's errors: bad transferee, not leader, timeout")
    func moveLeader() {
        var harness = MemberHarness(voters: [1, 2, 3])
        harness.elect(1)
        #expect(harness.members[1]!.moveLeader(to: 1, id: 60) == .failure(.badLeaderTransferee))
        #expect(harness.members[1]!.moveLeader(to: 9, id: 60) == .failure(.badLeaderTransferee))
        #expect(harness.members[2]!.moveLeader(to: 3, id: 60) == .failure(.notLeader(leader: 1)))
        #expect(harness.members[1]!.moveLeader(to: 2, id: 61) == nil)
        harness.settle()
        #expect(harness.responses[61] == .leaderMoved(to: 2))
        #expect(harness.members[2]!.raft.role == .leader)

        // A target cut off from the leader never takes over: the move fails after two election timeouts.
        let electionTicks = harness.members[2]!.configuration.raft.electionTicks
        harness.members[3] = nil
        #expect(harness.members[2]!.moveLeader(to: 3, id: 62) == nil)
        harness.tick(2 * electionTicks)
        #expect(harness.responses[62] == nil, "failed before two election timeouts")
        harness.tick(1)
        #expect(harness.responses[62] == .failure(.leaderTransferTimeout))
        #expect(MemberError.leaderTransferTimeout.message == "etcdserver: request timed out, leader transfer took too long")
    }

    @Test("writes are refused with 'too many requests' while the commit index runs ahead of the applied index")
    func backPressureWhenApplyLags() {
        var harness = MemberHarness(voters: [1, 2, 3]) { $0.maxUnappliedEntries = 0 }
        harness.elect(1)
        let write = ClientRequest.write(.put(PutRequest(key: bytes("k"), value: bytes("v"))))
        #expect(harness.members[1]!.submit(write, id: 100) == nil)
        // The leader's batch is in flight; the followers store the entry and acknowledge it
        // meanwhile, so it commits before the leader has applied it.
        let ready = harness.members[1]!.startBatch()
        for append in ready.leaderMessages + harness.members[1]!.takeImmediateMessages() {
            harness.members[append.to]!.step(append)
        }
        for follower: NodeID in [2, 3] {
            _ = harness.members[follower]!.startBatch()
            for ack in harness.members[follower]!.finishBatch().messages where ack.to == 1 { harness.members[1]!.step(ack) }
        }
        let leader = harness.members[1]!
        #expect(leader.raft.commitIndex > leader.appliedIndex)
        #expect(harness.members[1]!.submit(write, id: 101) == .failure(.tooManyRequests))
        let output = harness.members[1]!.finishBatch()
        #expect(output.responses.contains { $0.0 == 100 }, "the entry committed meanwhile is applied with its batch")
        #expect(harness.members[1]!.raft.commitIndex == harness.members[1]!.appliedIndex)
        #expect(harness.members[1]!.submit(write, id: 102) == nil, "accepted again once applied")
    }
}
