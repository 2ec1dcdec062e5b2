import Primitives
import StateMachine
import Testing

@testable import Recipes

/// Records who is inside a critical section.
actor CriticalSection {
    private var inside = 0
    private(set) var maximumInside = 0
    private(set) var entries: [(lease: Int64, token: Int64)] = []

    func enter(lease: Int64, token: Int64) {
        inside += 1
        maximumInside = max(maximumInside, inside)
        entries.append((lease, token))
    }

    func leave() {
        inside -= 1
    }
}

@Suite("Lock recipe", .timeLimit(.minutes(1)))
struct LockRecipeTests {
    let backend = InMemoryBackend()
    var locks: LockRecipe<InMemoryBackend> { LockRecipe(backend: backend) }

    @Test func keyIsNameSlashLowercaseHexLease() async throws {
        let lease = try await backend.grantLease(id: 0x1A2B)
        let held = try await locks.lock(name: b("my-lock"), lease: lease)
        #expect(s(held.key) == "my-lock/1a2b")
        #expect(held.lease == 0x1A2B)
        // The fencing token is the key's create revision, and the header revision is the write's.
        let kv = try await backend.range(RangeRequest(key: held.key)).kvs.first
        #expect(kv?.createRevision == held.fencingToken)
        #expect(kv?.lease == lease)
        #expect(kv?.value == [])
        #expect(held.revision == held.fencingToken)
    }

    @Test func keyHelpers() {
        #expect(s(queuePrefix(b("n"))) == "n/")
        #expect(s(ownKey(prefix: b("n/"), lease: 255)) == "n/ff")
        // Go's %x gives a minus sign for negative IDs; Swift's radix formatting agrees.
        #expect(s(ownKey(prefix: b("n/"), lease: -26)) == "n/-1a")
        #expect(prefixEnd(b("n/")) == b("n0"))
        #expect(prefixEnd([0x61, 0xFF]) == [0x62])
        #expect(prefixEnd([0xFF, 0xFF]) == [0])
        #expect(prefixEnd([]) == [0])
    }

    @Test func secondLockWaitsUntilTheFirstUnlocks() async throws {
        let first = try await backend.grantLease()
        let second = try await backend.grantLease()
        let held = try await locks.lock(name: b("l"), lease: first)

        let locks = self.locks
        let waiting = Task { try await locks.lock(name: b("l"), lease: second) }
        await backend.waitUntilBlocked(1)
        // Both keys are queued; the second is blocked on the first.
        #expect(try await backend.contents(under: "l/").count == 2)

        let unlockRevision = try await locks.unlock(key: held.key)
        let next = try await waiting.value
        #expect(next.fencingToken > held.fencingToken)
        #expect(next.revision >= unlockRevision)
        #expect(try await backend.contents(under: "l/").keys.sorted() == [s(next.key)])
    }

    @Test func holdersFollowCreateRevisionOrder() async throws {
        let leases = [
            try await backend.grantLease(), try await backend.grantLease(), try await backend.grantLease(),
        ]
        let a = try await locks.lock(name: b("q"), lease: leases[0])
        let locks = self.locks
        let taskB = Task { try await locks.lock(name: b("q"), lease: leases[1]) }
        await backend.waitUntilBlocked(1)
        let taskC = Task { try await locks.lock(name: b("q"), lease: leases[2]) }
        await backend.waitUntilBlocked(2)

        _ = try await locks.unlock(key: a.key)
        let heldB = try await taskB.value
        // C waits for B's key, so A's release woke only B.
        #expect(await backend.deletionWaiterCount == 1)
        #expect(heldB.fencingToken > a.fencingToken)

        _ = try await locks.unlock(key: heldB.key)
        let heldC = try await taskC.value
        #expect(heldC.fencingToken > heldB.fencingToken)
        #expect(await backend.deletionWaiterCount == 0)
    }

    @Test func mutualExclusionUnderContention() async throws {
        var leases: [Int64] = []
        for _ in 0..<6 { leases.append(try await backend.grantLease()) }
        let section = CriticalSection()
        let locks = self.locks
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lease in leases {
                group.addTask {
                    let held = try await locks.lock(name: b("shared"), lease: lease)
                    await section.enter(lease: lease, token: held.fencingToken)
                    await Task.yield()
                    await section.leave()
                    _ = try await locks.unlock(key: held.key)
                }
            }
            try await group.waitForAll()
        }
        #expect(await section.maximumInside == 1)
        let entries = await section.entries
        #expect(entries.count == leases.count)
        // Holders entered in the order of their keys' create revisions.
        let tokens = entries.map(\.token)
        #expect(tokens == tokens.sorted())
        #expect(Set(tokens).count == tokens.count)
        #expect(try await backend.contents(under: "shared/").isEmpty)
    }

    @Test func lockingAgainWithTheSameLeaseReentersWithoutWriting() async throws {
        let lease = try await backend.grantLease()
        let held = try await locks.lock(name: b("r"), lease: lease)
        let revisionBefore = await backend.store.currentRevision
        let again = try await locks.lock(name: b("r"), lease: lease)
        #expect(again.key == held.key)
        #expect(again.fencingToken == held.fencingToken)
        #expect(await backend.store.currentRevision == revisionBefore)
    }

    @Test func aMissingLeaseIsRefusedBeforeAnyWrite() async throws {
        await #expect(throws: StateError.leaseNotFound) { try await locks.lock(name: b("m"), lease: 0x99) }
        await #expect(throws: StateError.leaseNotFound) { try await locks.lock(name: b("m"), lease: 0) }
        let revoked = try await backend.grantLease()
        try await backend.revokeLease(revoked)
        await #expect(throws: StateError.leaseNotFound) { try await locks.lock(name: b("m"), lease: revoked) }
        let expiring = try await backend.grantLease()
        await backend.markExpiring(expiring)
        await #expect(throws: StateError.leaseNotFound) { try await locks.lock(name: b("m"), lease: expiring) }
        #expect(try await backend.contents(under: "m/").isEmpty)
        #expect(await backend.store.currentRevision == 1)
    }

    /// Jepsen's etcd #11456: a waiter whose lease is revoked while it waits must not be told it
    /// holds the lock when its predecessor goes away (etcd 3.4 answers success here).
    @Test func leaseRevokedWhileWaitingFailsAfterTheWait() async throws {
        let first = try await backend.grantLease()
        let second = try await backend.grantLease()
        let held = try await locks.lock(name: b("j"), lease: first)
        let locks = self.locks
        let waiting = Task { try await locks.lock(name: b("j"), lease: second) }
        await backend.waitUntilBlocked(1)

        try await backend.revokeLease(second)
        _ = try await locks.unlock(key: held.key)
        await #expect(throws: StateError.leaseNotFound) { try await waiting.value }
        #expect(try await backend.contents(under: "j/").isEmpty)
    }

    @Test func leaseExpiringWhileWaitingFailsAndReleasesTheKey() async throws {
        let first = try await backend.grantLease()
        let second = try await backend.grantLease()
        let held = try await locks.lock(name: b("x"), lease: first)
        let locks = self.locks
        let waiting = Task { try await locks.lock(name: b("x"), lease: second) }
        await backend.waitUntilBlocked(1)

        // The lease still exists, and so does the key, but the lease has run out.
        await backend.markExpiring(second)
        _ = try await locks.unlock(key: held.key)
        await #expect(throws: StateError.leaseNotFound) { try await waiting.value }
        #expect(try await backend.contents(under: "x/").isEmpty)
    }

    @Test func keyDeletedWhileWaitingFailsWithSessionExpired() async throws {
        let first = try await backend.grantLease()
        let second = try await backend.grantLease()
        let held = try await locks.lock(name: b("d"), lease: first)
        let locks = self.locks
        let waiting = Task { try await locks.lock(name: b("d"), lease: second) }
        await backend.waitUntilBlocked(1)

        _ = try await locks.unlock(key: ownKey(prefix: b("d/"), lease: second))
        _ = try await locks.unlock(key: held.key)
        await #expect(throws: RecipeError.sessionExpired) { try await waiting.value }
        #expect(RecipeError.sessionExpired.message == "mutex: session is expired")
    }

    @Test func cancellingAWaiterDeletesTheKeyItCreated() async throws {
        let first = try await backend.grantLease()
        let second = try await backend.grantLease()
        let held = try await locks.lock(name: b("c"), lease: first)
        let locks = self.locks
        let waiting = Task { try await locks.lock(name: b("c"), lease: second) }
        await backend.waitUntilBlocked(1)

        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        #expect(try await backend.contents(under: "c/").keys.sorted() == [s(held.key)])
        #expect(await backend.deletionWaiterCount == 0)
    }

    @Test func cancellingAReentryLeavesTheExistingKey() async throws {
        let first = try await backend.grantLease()
        let second = try await backend.grantLease()
        let held = try await locks.lock(name: b("e"), lease: first)
        let locks = self.locks
        let original = Task { try await locks.lock(name: b("e"), lease: second) }
        await backend.waitUntilBlocked(1)
        let reentry = Task { try await locks.lock(name: b("e"), lease: second) }
        await backend.waitUntilBlocked(2)

        reentry.cancel()
        await #expect(throws: CancellationError.self) { try await reentry.value }
        #expect(try await backend.contents(under: "e/").count == 2)

        _ = try await locks.unlock(key: held.key)
        let next = try await original.value
        #expect(s(next.key) == "e/" + String(second, radix: 16))
    }

    @Test func unlockingAMissingKeySucceeds() async throws {
        let revision = try await locks.unlock(key: b("nothing/1"))
        #expect(revision == 1)
        await #expect(throws: StateError.emptyKey) { try await locks.unlock(key: []) }
    }
}
