import StateMachine
import Testing

@Suite struct LeaseTests {
    @Test func grantWithIDAndDuplicates() throws {
        var store = StateStore()
        let r = try store.grantLease(LeaseGrantRequest(ttl: 30, id: 5)).response
        #expect(r.id == 5 && r.ttl == 30 && r.revision == 1)
        #expect(throws: StateError.leaseExists) { try store.grantLease(LeaseGrantRequest(ttl: 30, id: 5)) }
        #expect(store.lease(5) == Lease(id: 5, ttl: 30))
        #expect(store.currentRevision == 1)
    }

    @Test func ttlBounds() throws {
        var store = StateStore(configuration: .init(minLeaseTTL: 5, maxLeaseTTL: 100))
        #expect(try store.grantLease(LeaseGrantRequest(ttl: 1, id: 1)).response.ttl == 5)
        #expect(try store.grantLease(LeaseGrantRequest(ttl: -3, id: 2)).response.ttl == 5)
        #expect(try store.grantLease(LeaseGrantRequest(ttl: 100, id: 3)).response.ttl == 100)
        #expect(throws: StateError.leaseTTLTooLarge) { try store.grantLease(LeaseGrantRequest(ttl: 101, id: 4)) }
        var defaults = StateStore()
        #expect(throws: StateError.leaseTTLTooLarge) { try defaults.grantLease(LeaseGrantRequest(ttl: 9_000_000_001)) }
        #expect(try defaults.grantLease(LeaseGrantRequest(ttl: 1)).response.ttl == 2)
    }

    @Test func automaticIDsAreDeterministicPositiveAndUnique() throws {
        var a = StateStore()
        var c = StateStore()
        var ids: [Int64] = []
        for _ in 0..<50 {
            let x = try a.grantLease(LeaseGrantRequest(ttl: 10)).response.id
            let y = try c.grantLease(LeaseGrantRequest(ttl: 10)).response.id
            #expect(x == y)
            #expect(x > 0)
            ids.append(x)
        }
        #expect(Set(ids).count == 50)
        #expect(a.leases().map(\.id) == ids.sorted())
    }

    @Test func automaticIDSkipsTakenIDs() throws {
        var probe = StateStore()
        let first = try probe.grantLease(LeaseGrantRequest(ttl: 10)).response.id
        var store = StateStore()
        _ = try store.grantLease(LeaseGrantRequest(ttl: 10, id: first))
        let auto = try store.grantLease(LeaseGrantRequest(ttl: 10)).response.id
        #expect(auto != first)
    }

    @Test func attachmentFollowsPutsAndDeletes() throws {
        var store = StateStore()
        _ = try store.grantLease(LeaseGrantRequest(ttl: 10, id: 1))
        _ = try store.grantLease(LeaseGrantRequest(ttl: 10, id: 2))
        try store.set("b", "1", lease: 1)
        try store.set("a", "1", lease: 1)
        try store.set("c", "1", lease: 2)
        #expect(store.keys(attachedTo: 1) == [b("a"), b("b")])
        try store.set("b", "2", lease: 2)  // moves b to lease 2
        #expect(store.keys(attachedTo: 1) == [b("a")])
        #expect(store.keys(attachedTo: 2) == [b("b"), b("c")])
        try store.set("c", "2")  // no lease: detached
        #expect(store.keys(attachedTo: 2) == [b("b")])
        try store.remove("a")
        #expect(store.keys(attachedTo: 1).isEmpty)
        #expect(store.keys(attachedTo: 99).isEmpty)
    }

    @Test func revokeDeletesAttachedKeysInOneRevision() throws {
        var store = StateStore()
        _ = try store.grantLease(LeaseGrantRequest(ttl: 10, id: 1))
        try store.set("x", "1", lease: 1)  // 2
        try store.set("a", "1", lease: 1)  // 3
        try store.set("keep", "1")  // 4
        let applied = try store.revokeLease(LeaseRevokeRequest(id: 1))
        #expect(applied.response.revision == 5)
        #expect(applied.events.map(\.kind) == [.delete, .delete])
        #expect(applied.events.map { String(decoding: $0.kv.key, as: UTF8.self) } == ["a", "x"])
        #expect(applied.events.allSatisfy { $0.kv.modRevision == 5 && $0.prevKV?.lease == 1 })
        #expect(applied.mutations.contains(.delete(key: BackendLayout.leaseKey(1))))
        #expect(store.lease(1) == nil)
        #expect(keys(try store.range(RangeRequest(key: [0], rangeEnd: [0])).kvs) == ["keep"])
        #expect(throws: StateError.leaseNotFound) { try store.revokeLease(LeaseRevokeRequest(id: 1)) }
        #expect(throws: StateError.leaseNotFound) { try store.put(PutRequest(key: b("x"), lease: 1)) }
    }

    @Test func revokeWithoutKeysKeepsRevision() throws {
        var store = StateStore()
        _ = try store.grantLease(LeaseGrantRequest(ttl: 10, id: 3))
        let applied = try store.revokeLease(LeaseRevokeRequest(id: 3))
        #expect(applied.response.revision == 1)
        #expect(applied.mutations == [.delete(key: BackendLayout.leaseKey(3))])
    }

    @Test func checkpointsRecordRemainingTTL() throws {
        var store = StateStore()
        _ = try store.grantLease(LeaseGrantRequest(ttl: 100, id: 1))
        let applied = store.checkpointLeases(
            LeaseCheckpointRequest(checkpoints: [
                LeaseCheckpoint(id: 1, remainingTTL: 40), LeaseCheckpoint(id: 2, remainingTTL: 9),
            ])
        )
        #expect(applied.mutations.count == 1)
        #expect(store.lease(1) == Lease(id: 1, ttl: 100, remainingTTL: 40))
        #expect(store.lease(2) == nil)
        _ = store.checkpointLeases(LeaseCheckpointRequest(checkpoints: [LeaseCheckpoint(id: 1, remainingTTL: 0)]))
        #expect(store.lease(1)?.remainingTTL == 0)
    }

    @Test func negativeLeaseIDs() throws {
        var store = StateStore()
        _ = try store.grantLease(LeaseGrantRequest(ttl: 10, id: -4))
        _ = try store.grantLease(LeaseGrantRequest(ttl: 10, id: 3))
        try store.set("k", "v", lease: -4)
        #expect(store.leases().map(\.id) == [-4, 3])
        let restored = try StateStore(restoringFrom: store.backendPairs())
        #expect(restored.leases().map(\.id) == [-4, 3])
        #expect(restored.keys(attachedTo: -4) == [b("k")])
    }
}
