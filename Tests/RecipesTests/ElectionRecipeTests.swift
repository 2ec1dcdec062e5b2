import Recipes
import StateMachine
import Testing

@Suite("Election recipe", .timeLimit(.minutes(1)))
struct ElectionRecipeTests {
    let backend = InMemoryBackend()
    var election: ElectionRecipe<InMemoryBackend> { ElectionRecipe(backend: backend) }

    @Test func campaignLeaderProclaimResignObserve() async throws {
        let leaseA = try await backend.grantLease(id: 0xA)
        let leaseB = try await backend.grantLease(id: 0xB)
        let leaseC = try await backend.grantLease(id: 0xC)
        let election = self.election

        // An uncontested campaign wins at once.
        let a = try await election.campaign(name: b("e"), lease: leaseA, value: b("a"))
        #expect(a.leader == LeaderKey(name: b("e"), key: b("e/a"), createRevision: a.revision, lease: leaseA))
        var leader = try await election.leader(name: b("e"))
        #expect(leader.kv.key == b("e/a"))
        #expect(leader.kv.value == b("a"))
        #expect(leader.kv.createRevision == a.leader.createRevision)

        // The observer starts with the current leader.
        var observed = election.observe(name: b("e")).makeAsyncIterator()
        var next = try await observed.next()
        #expect(next?.kv.value == b("a"))
        #expect(next?.revision == leader.revision)

        // A second candidate queues behind the leader.
        let campaignB = Task { try await election.campaign(name: b("e"), lease: leaseB, value: b("b")) }
        await backend.waitUntilBlocked(1)

        // Proclaiming changes the leader's value; the observer sees it.
        let proclaimed = try await election.proclaim(a.leader, value: b("a2"))
        next = try await observed.next()
        #expect(next?.kv.key == b("e/a"))
        #expect(next?.kv.value == b("a2"))
        #expect(next?.revision == proclaimed)
        leader = try await election.leader(name: b("e"))
        #expect(leader.kv.value == b("a2"))

        // A stale leader key cannot proclaim.
        var stale = a.leader
        stale.createRevision -= 1
        await #expect(throws: RecipeError.notLeader) { try await election.proclaim(stale, value: b("x")) }

        // Resigning hands leadership to the next candidate.
        let resigned = try await election.resign(a.leader)
        let wonB = try await campaignB.value
        #expect(wonB.leader.key == b("e/b"))
        #expect(wonB.leader.createRevision > a.leader.createRevision)
        #expect(wonB.revision >= resigned)
        next = try await observed.next()
        #expect(next?.kv.key == b("e/b"))
        #expect(next?.kv.value == b("b"))
        #expect(next?.revision == resigned)

        // The old key can no longer proclaim; resigning it again changes nothing.
        await #expect(throws: RecipeError.notLeader) { try await election.proclaim(a.leader, value: b("x")) }
        let revision = await backend.store.currentRevision
        #expect(try await election.resign(a.leader) == revision)

        // With no candidate there is no leader, and the observer waits for the next one.
        _ = try await election.resign(wonB.leader)
        await #expect(throws: RecipeError.noLeader) { try await election.leader(name: b("e")) }
        let c = try await election.campaign(name: b("e"), lease: leaseC, value: b("c"))
        next = try await observed.next()
        #expect(next?.kv.key == c.leader.key)
        #expect(next?.kv.value == b("c"))
        #expect(next?.revision == c.revision)
    }

    @Test func reenteringWithAnotherValueProclaimsIt() async throws {
        let lease = try await backend.grantLease()
        let first = try await election.campaign(name: b("r"), lease: lease, value: b("one"))
        let again = try await election.campaign(name: b("r"), lease: lease, value: b("two"))
        #expect(again.leader == first.leader)
        #expect(again.revision > first.revision)
        #expect(try await election.leader(name: b("r")).kv.value == b("two"))

        // Re-entering with the same value writes nothing.
        let revision = await backend.store.currentRevision
        _ = try await election.campaign(name: b("r"), lease: lease, value: b("two"))
        #expect(await backend.store.currentRevision == revision)
    }

    @Test func observerJudgesEachRevisionAsAWhole() async throws {
        let leases = [try await backend.grantLease(), try await backend.grantLease(), try await backend.grantLease()]
        let election = self.election
        let a = try await election.campaign(name: b("w"), lease: leases[0], value: b("a"))
        let campaignB = Task { try await election.campaign(name: b("w"), lease: leases[1], value: b("b")) }
        await backend.waitUntilBlocked(1)
        let campaignC = Task { try await election.campaign(name: b("w"), lease: leases[2], value: b("c")) }
        await backend.waitUntilBlocked(2)

        var observed = election.observe(name: b("w")).makeAsyncIterator()
        #expect(try await observed.next()?.kv.value == b("a"))

        // One transaction deletes the leader and the next candidate: only the third one is reported.
        let keyB = b("w/") + Array(String(leases[1], radix: 16).utf8)
        _ = try await backend.txn(
            TxnRequest(success: [
                .deleteRange(DeleteRangeRequest(key: a.leader.key)), .deleteRange(DeleteRangeRequest(key: keyB)),
            ]))
        #expect(try await observed.next()?.kv.value == b("c"))

        // B's key vanished while its lease lives on; C now leads.
        await #expect(throws: RecipeError.sessionExpired) { try await campaignB.value }
        let c = try await campaignC.value
        #expect(try await election.leader(name: b("w")).kv.key == c.leader.key)
    }

    @Test func observingAnEmptyElectionWaitsForTheFirstCandidate() async throws {
        let lease = try await backend.grantLease()
        var observed = election.observe(name: b("o")).makeAsyncIterator()
        // Writes elsewhere are not reported.
        _ = try await backend.txn(TxnRequest(success: [.put(PutRequest(key: b("other"), value: b("1")))]))
        let won = try await election.campaign(name: b("o"), lease: lease, value: b("v"))
        let first = try await observed.next()
        #expect(first?.kv.key == won.leader.key)
        #expect(first?.revision == won.revision)
    }

    @Test func cancellingACampaignDeletesItsKey() async throws {
        let first = try await backend.grantLease()
        let second = try await backend.grantLease()
        let leader = try await election.campaign(name: b("k"), lease: first, value: b("1"))
        let election = self.election
        let waiting = Task { try await election.campaign(name: b("k"), lease: second, value: b("2")) }
        await backend.waitUntilBlocked(1)
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        #expect(try await backend.contents(under: "k/") == [String(decoding: leader.leader.key, as: UTF8.self): "1"])
    }

    @Test func leaseRevokedWhileCampaigningFails() async throws {
        let first = try await backend.grantLease()
        let second = try await backend.grantLease()
        let leader = try await election.campaign(name: b("v"), lease: first, value: b("1"))
        let election = self.election
        let waiting = Task { try await election.campaign(name: b("v"), lease: second, value: b("2")) }
        await backend.waitUntilBlocked(1)
        try await backend.revokeLease(second)
        _ = try await election.resign(leader.leader)
        await #expect(throws: StateError.leaseNotFound) { try await waiting.value }
        await #expect(throws: RecipeError.noLeader) { try await election.leader(name: b("v")) }
    }

    @Test func stoppingTheObserverEndsItsWatch() async throws {
        let lease = try await backend.grantLease()
        let won = try await election.campaign(name: b("s"), lease: lease, value: b("1"))
        let election = self.election
        let (received, signal) = AsyncStream.makeStream(of: Void.self)
        let consumer = Task {
            var count = 0
            for try await _ in election.observe(name: b("s")) {
                count += 1
                signal.yield()
            }
            return count
        }
        // The consumer gets the leader, then waits for changes until it is cancelled.
        var signals = received.makeAsyncIterator()
        await signals.next()
        consumer.cancel()
        #expect(try await consumer.value == 1)

        // Later changes reach no one, and do not fail.
        _ = try await election.proclaim(won.leader, value: b("2"))
    }

    @Test func errorsCarryEtcdsMessages() {
        #expect(RecipeError.notLeader.message == "election: not leader")
        #expect(RecipeError.noLeader.message == "election: no leader")
        #expect(RecipeError.missingLeaderKey.message == "\"leader\" field must be provided")
        #expect(RecipeError.noLeader.description == "election: no leader")
    }
}
