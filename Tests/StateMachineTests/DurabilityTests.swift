import Primitives
import RaftCore
import StateMachine
import Testing

/// Generates a deterministic random workload covering every request kind.
struct Workload {
    var rng: SeededGenerator
    var grantedLeases: [Int64] = []

    init(seed: UInt64) {
        rng = SeededGenerator(seed: seed)
    }

    mutating func randomKey() -> [UInt8] {
        b("key/\(Int.random(in: 0..<40, using: &rng))")
    }

    mutating func next(for store: StateStore) -> StateRequest {
        let roll = Int.random(in: 0..<100, using: &rng)
        switch roll {
        case 0..<40:
            let lease: Int64 =
                grantedLeases.isEmpty || Bool.random(using: &rng) ? 0 : grantedLeases.randomElement(using: &rng)!
            let value = b("v\(Int.random(in: 0..<1000, using: &rng))")
            return .put(PutRequest(key: randomKey(), value: value, lease: lease, prevKV: Bool.random(using: &rng)))
        case 40..<48:
            return .put(PutRequest(key: randomKey(), ignoreValue: Bool.random(using: &rng), ignoreLease: true))
        case 48..<58:
            let start = randomKey()
            return .deleteRange(
                DeleteRangeRequest(key: start, rangeEnd: Bool.random(using: &rng) ? [] : start + [0xFF], prevKV: true)
            )
        case 58..<75:
            let compare = Compare(
                key: randomKey(),
                target: Bool.random(using: &rng) ? .createRevision(0) : .version(Int64.random(in: 0..<3, using: &rng)),
                result: Bool.random(using: &rng) ? .equal : .greater
            )
            let k1 = randomKey()
            var k2 = randomKey()
            if k2 == k1 { k2 += [1] }
            return .txn(
                TxnRequest(
                    compares: [compare],
                    success: [
                        .put(PutRequest(key: k1, value: b("t"))),
                        .range(RangeRequest(key: [0], rangeEnd: [0], limit: 3)),
                    ],
                    failure: [
                        .deleteRange(DeleteRangeRequest(key: k1)),
                        .txn(TxnRequest(success: [.put(PutRequest(key: k2, value: b("n")))])),
                    ]
                )
            )
        case 75..<82:
            let id = Bool.random(using: &rng) ? Int64(0) : Int64.random(in: 1..<6, using: &rng)
            return .leaseGrant(LeaseGrantRequest(ttl: Int64.random(in: 1..<100, using: &rng), id: id))
        case 82..<87:
            let id = grantedLeases.randomElement(using: &rng) ?? 1
            return .leaseRevoke(LeaseRevokeRequest(id: id))
        case 87..<91:
            let id = grantedLeases.randomElement(using: &rng) ?? 1
            return .leaseCheckpoint(
                LeaseCheckpointRequest(checkpoints: [
                    LeaseCheckpoint(id: id, remainingTTL: Int64.random(in: 0..<50, using: &rng))
                ])
            )
        case 91..<95:
            let low = store.compactedRevision + 1
            let target = low <= store.currentRevision ? Int64.random(in: low...store.currentRevision, using: &rng) : low
            return .compaction(CompactionRequest(revision: target))
        default:
            return .range(
                RangeRequest(key: randomKey(), revision: Int64.random(in: -1..<store.currentRevision + 2, using: &rng))
            )
        }
    }

    mutating func observe(_ response: StateResponse) {
        if case .leaseGrant(let g) = response { grantedLeases.append(g.id) }
    }
}

/// Asserts two stores answer every query identically.
func expectEquivalent(_ a: StateStore, _ c: StateStore, sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(samePairs(a.backendPairs(), c.backendPairs()), sourceLocation: sourceLocation)
    #expect(a.currentRevision == c.currentRevision, sourceLocation: sourceLocation)
    #expect(a.compactedRevision == c.compactedRevision, sourceLocation: sourceLocation)
    #expect(try a.hashKV() == c.hashKV(), sourceLocation: sourceLocation)
    #expect(a.leases() == c.leases(), sourceLocation: sourceLocation)
    for lease in a.leases() {
        #expect(a.keys(attachedTo: lease.id) == c.keys(attachedTo: lease.id), sourceLocation: sourceLocation)
    }
    let first = Swift.max(a.compactedRevision, 1)
    for revision in first...a.currentRevision {
        let all = RangeRequest(key: [0], rangeEnd: [0], revision: revision)
        #expect(try a.range(all) == c.range(all), sourceLocation: sourceLocation)
        if revision > a.compactedRevision {
            #expect(try a.hashKV(revision: revision) == c.hashKV(revision: revision), sourceLocation: sourceLocation)
        }
    }
    #expect(
        try a.events(from: first, key: [0], rangeEnd: [0]) == c.events(from: first, key: [0], rangeEnd: [0]),
        sourceLocation: sourceLocation
    )
}

@Suite struct DurabilityTests {
    @Test(arguments: [UInt64(1), 2, 3, 42])
    func mutationsRestoreToAnIdenticalStore(seed: UInt64) throws {
        var store = StateStore()
        var backend = FakeBackend()
        var workload = Workload(seed: seed)
        var applied = 0
        var failed = 0
        for step in 1...600 {
            let request = workload.next(for: store)
            do {
                let result = try store.apply(request)
                backend.write(result.mutations)
                workload.observe(result.response)
                applied += 1
            } catch {
                failed += 1
            }
            if step % 150 == 0 {
                // The backend written through mutations equals the exported state.
                #expect(samePairs(backend.pairs, store.backendPairs()))
                var restored = try StateStore(restoringFrom: backend.pairs)
                try expectEquivalent(store, restored)
                // The restored store keeps evolving identically (lease ID sequence, revisions, …).
                var original = store
                var w1 = workload
                var w2 = workload
                for _ in 0..<40 {
                    let r1 = w1.next(for: original)
                    let r2 = w2.next(for: restored)
                    #expect(r1 == r2)
                    let a1 = Result { () throws(StateError) in try original.apply(r1) }
                    let a2 = Result { () throws(StateError) in try restored.apply(r2) }
                    switch (a1, a2) {
                    case (.success(let x), .success(let y)):
                        #expect(x.response == y.response && x.mutations == y.mutations && x.events == y.events)
                        w1.observe(x.response)
                        w2.observe(y.response)
                    case (.failure(let x), .failure(let y)):
                        #expect(x == y)
                    default:
                        Issue.record("diverged: \(a1) vs \(a2)")
                    }
                }
                try expectEquivalent(original, restored)
            }
        }
        #expect(applied > 300)
        #expect(failed > 0)
        #expect(store.currentRevision > 100)
    }

    @Test(arguments: [UInt64(5), 6, 7])
    func replayedEventsMatchAppliedEvents(seed: UInt64) throws {
        var store = StateStore()
        var workload = Workload(seed: seed)
        var applied: [Event] = []
        for _ in 0..<800 {
            let request = workload.next(for: store)
            guard let result = try? store.apply(request) else { continue }
            workload.observe(result.response)
            applied += result.events
            #expect(result.events.map(\.kv.modRevision).allSatisfy { $0 == store.currentRevision })
        }
        let after = store.compactedRevision + 1
        let replayed = try store.events(from: after, key: [0], rangeEnd: [0])
        #expect(replayed == applied.filter { $0.kv.modRevision >= after })
        #expect(replayed.count > 20)
        let oneKey = try store.events(from: after, key: b("key/7"))
        #expect(oneKey == applied.filter { $0.kv.modRevision >= after && $0.kv.key == b("key/7") })
    }

    @Test func restoreIgnoresForeignKeysAndAcceptsAnyOrder() throws {
        var store = StateStore()
        _ = try store.grantLease(LeaseGrantRequest(ttl: 10))
        try store.set("a", "1")
        try store.set("b", "2")
        try store.remove("a")
        _ = try store.compact(CompactionRequest(revision: 3))
        var pairs = store.backendPairs()
        pairs.append((b("raft/applied"), [1, 2, 3]))
        pairs.reverse()
        let restored = try StateStore(restoringFrom: pairs)
        try expectEquivalent(store, restored)
    }

    @Test func emptyStoreRoundTrip() throws {
        let store = StateStore()
        #expect(store.backendPairs().isEmpty)
        let restored = try StateStore(restoringFrom: [([UInt8], [UInt8])]())
        #expect(restored.currentRevision == 1 && restored.compactedRevision == -1)
    }

    @Test func restoreInPlaceReplacesState() throws {
        var source = StateStore()
        try source.set("a", "1")
        var target = StateStore()
        try target.set("zzz", "9")
        try target.set("zzz", "10")
        try target.restore(from: source.backendPairs())
        try expectEquivalent(source, target)
    }

    @Test func corruptRecordsAreRejected() throws {
        var store = StateStore()
        try store.set("a", "1")
        var pairs = store.backendPairs()
        pairs[0].1 = Array(pairs[0].1.dropLast(2))
        #expect(throws: ByteDecodingError.self) { try StateStore(restoringFrom: pairs) }
        #expect(throws: ByteDecodingError.self) {
            try StateStore(restoringFrom: [(BackendLayout.revisionKey, [1, 2])])
        }
        #expect(throws: ByteDecodingError.self) {
            try StateStore(restoringFrom: [(BackendLayout.compactedKey, [0, 0, 0, 0, 0, 0, 0, 9])])
        }
        #expect(throws: ByteDecodingError.self) {
            try StateStore(restoringFrom: [(BackendLayout.leaseKey(3), BackendLayout.encodeLeaseForTest(id: 4))])
        }
        let wellFormed = try StateStore(restoringFrom: [
            (BackendLayout.leaseKey(4), BackendLayout.encodeLeaseForTest(id: 4))
        ])
        #expect(wellFormed.lease(4) == Lease(id: 4, ttl: 10))
        // A stored revision older than the newest version is inconsistent.
        #expect(throws: ByteDecodingError.self) {
            try StateStore(restoringFrom: [
                store.backendPairs()[0], (BackendLayout.revisionKey, [0, 0, 0, 0, 0, 0, 0, 1]),
            ])
        }
    }

    @Test func layoutOfAPut() throws {
        var store = StateStore()
        let applied = try store.set("k", "v")
        let expectedKey: [UInt8] = Array("k/".utf8) + [0, 0, 0, 0, 0, 0, 0, 2] + [0, 0, 0, 0, 0, 0, 0, 0]
        // format 1, flags 0, key len 1, "k", create 2 (zig-zag 4), version 1 (zig-zag 2), lease 0, value len 1, "v"
        let expectedValue: [UInt8] = [1, 0, 1, 0x6B, 4, 2, 0, 1, 0x76]
        #expect(
            applied.mutations == [
                .put(key: expectedKey, value: expectedValue),
                .put(key: Array("m/revision".utf8), value: [0, 0, 0, 0, 0, 0, 0, 2]),
            ]
        )
    }

    @Test func readsProduceNoMutations() throws {
        var store = StateStore()
        try store.set("a", "1")
        let read = try store.apply(.range(RangeRequest(key: b("a"))))
        #expect(read.mutations.isEmpty && read.events.isEmpty)
        let readTxn = try store.apply(.txn(TxnRequest(success: [.range(RangeRequest(key: b("a")))])))
        #expect(readTxn.mutations.isEmpty)
    }
}

@Suite struct DigestTests {
    func run(_ requests: [StateRequest], on store: inout StateStore) throws {
        for request in requests { _ = try store.apply(request) }
    }

    var script: [StateRequest] {
        [
            .put(PutRequest(key: b("a"), value: b("1"))),
            .put(PutRequest(key: b("b"), value: b("2"))),
            .deleteRange(DeleteRangeRequest(key: b("a"))),
            .txn(TxnRequest(success: [.put(PutRequest(key: b("c"), value: b("3")))])),
            .put(PutRequest(key: b("a"), value: b("4"))),
        ]
    }

    @Test func sameOperationsGiveSameDigest() throws {
        var x = StateStore()
        var y = StateStore()
        try run(script, on: &x)
        try run(script, on: &y)
        #expect(try x.hashKV() == y.hashKV())
        #expect(try x.hashKV().revision == 6)
        #expect(try x.hashKV().compactRevision == -1)
        _ = try x.compact(CompactionRequest(revision: 4))
        _ = try y.compact(CompactionRequest(revision: 4))
        #expect(try x.hashKV() == y.hashKV())
        #expect(try x.hashKV().compactRevision == 4)
    }

    @Test func differentOperationsGiveDifferentDigests() throws {
        var x = StateStore()
        var y = StateStore()
        try run(script, on: &x)
        var changed = script
        changed[1] = .put(PutRequest(key: b("b"), value: b("X")))
        try run(changed, on: &y)
        #expect(try x.hashKV().hash != y.hashKV().hash)
        // Same key space, but a different compaction point.
        var z = StateStore()
        try run(script, on: &z)
        _ = try z.compact(CompactionRequest(revision: 2))
        #expect(try x.hashKV().hash != z.hashKV().hash)
    }

    @Test func digestAtRevisionIgnoresLaterWrites() throws {
        var full = StateStore()
        try run(script, on: &full)
        var partial = StateStore()
        try run(Array(script.prefix(3)), on: &partial)
        #expect(try full.hashKV(revision: 4).hash == partial.hashKV().hash)
        #expect(try full.hashKV(revision: 5).hash != partial.hashKV().hash)
    }

    @Test func digestErrors() throws {
        var store = StateStore()
        try run(script, on: &store)
        #expect(throws: StateError.futureRevision) { try store.hashKV(revision: 7) }
        _ = try store.compact(CompactionRequest(revision: 3))
        #expect(throws: StateError.compacted) { try store.hashKV(revision: 3) }
        #expect(throws: StateError.compacted) { try store.hashKV(revision: 2) }
        _ = try store.hashKV(revision: 4)
    }
}

@Suite struct ErrorContractTests {
    @Test func validateFailsFastWithoutAStore() {
        #expect(throws: StateError.duplicateKey) {
            try StateStore.validate(
                .txn(TxnRequest(success: [.put(PutRequest(key: b("a"))), .put(PutRequest(key: b("a")))]))
            )
        }
        #expect(throws: StateError.valueProvided) {
            try StateStore.validate(.put(PutRequest(key: b("a"), value: b("x"), ignoreValue: true)))
        }
        #expect(throws: Never.self) { try StateStore.validate(.put(PutRequest(key: b("a"), value: b("x")))) }
    }
}
