import Primitives
import StateMachine
import Testing

/// A backend the tests write mutation batches to, and that a store reads released values from.
final class RecordingBackend: BackendReader, @unchecked Sendable {
    // Each test uses its backend from one task only.
    private var storage: [[UInt8]: [UInt8]] = [:]
    private(set) var reads = 0

    func write(_ mutations: [BackendMutation]) {
        for mutation in mutations {
            switch mutation {
            case .put(let key, let value): storage[key] = value
            case .delete(let key): storage[key] = nil
            }
        }
    }

    func value(forKey key: [UInt8]) throws -> [UInt8]? {
        reads += 1
        return storage[key]
    }

    /// A copy of the backend as it is now, as a pinned RocksDB snapshot sees it.
    func frozen() -> RecordingBackend {
        let copy = RecordingBackend()
        copy.storage = storage
        return copy
    }

    var pairs: [([UInt8], [UInt8])] {
        storage.keys.sorted { $0.lexicographicallyPrecedes($1) }.map { ($0, storage[$0]!) }
    }
}

@Suite("Values live in the backend, not in memory")
struct BackendValueTests {
    /// A store over `backend` with `writes` applied, each batch written, then released.
    func released(_ backend: RecordingBackend, _ writes: (inout StateStore) throws -> [BackendMutation]) rethrows -> StateStore {
        var store = StateStore(backendReader: backend)
        backend.write(try writes(&store))
        store.releaseDurableValues()
        return store
    }

    @Test func releasedValuesAreReadBackAtCurrentAndPastRevisions() throws {
        let backend = RecordingBackend()
        var store = try released(backend) { store in
            try store.set("a", "one").mutations + store.set("a", "two").mutations + store.set("b", "three").mutations
        }
        #expect(store.residentValueBytes == 0)
        #expect(store.pendingValueCount == 0)
        #expect(try store.value(of: "a") == "two")
        #expect(values(try store.get("a", revision: 2).kvs) == ["one"])
        #expect(values(try store.get("a", "c").kvs) == ["two", "three"])

        let sorted = try store.range(RangeRequest(key: b("a"), rangeEnd: b("c"), sortOrder: .ascend, sortTarget: .value))
        #expect(values(sorted.kvs) == ["three", "two"])
        for resident in [store, try StateStore(restoringFrom: backend.pairs)] {
            let newestFirst = try resident.range(
                RangeRequest(key: b("a"), rangeEnd: b("c"), sortOrder: .descend, sortTarget: .modRevision))
            #expect(keys(newestFirst.kvs) == ["b", "a"] && values(newestFirst.kvs) == ["three", "two"])
        }

        let readsBefore = backend.reads
        let counted = try store.range(RangeRequest(key: b("a"), rangeEnd: b("c"), countOnly: true))
        let keysOnly = try store.range(RangeRequest(key: b("a"), rangeEnd: b("c"), keysOnly: true))
        #expect(counted.count == 2 && keysOnly.kvs.allSatisfy { $0.value.isEmpty })
        #expect(backend.reads == readsBefore, "count-only and keys-only reads do not read values")

        // A value compare, prevKV on put and delete, and the watch events all read back.
        let txn = try store.txn(
            TxnRequest(
                compares: [Compare(key: b("a"), target: .value(b("two")), result: .equal)],
                success: [.put(PutRequest(key: b("a"), value: b("four"), prevKV: true))]))
        #expect(txn.response.succeeded)
        guard case .put(let put)? = txn.response.responses.first else { Issue.record("no put answer"); return }
        #expect(put.prevKV.map { values([$0]) } == ["two"])
        #expect(store.residentValueBytes == 4)
        backend.write(txn.mutations)
        store.releaseDurableValues()

        let deleted = try store.deleteRange(DeleteRangeRequest(key: b("b"), prevKV: true))
        #expect(values(deleted.response.prevKVs) == ["three"])
        #expect(deleted.events.first?.prevKV.map { values([$0]) } == ["three"])
        backend.write(deleted.mutations)
        store.releaseDurableValues()

        let events = try store.events(from: 1, key: b("a"), rangeEnd: b("c"))
        #expect(values(events.filter { $0.kind == .put }.map(\.kv)) == ["one", "two", "three", "four"])
        #expect(events.compactMap { $0.prevKV.map { values([$0])[0] } } == ["one", "two", "three"])
        #expect(store.residentValueBytes == 0)
    }

    @Test func releasedStoreAgreesWithAnInMemoryStoreThroughAWorkload() throws {
        let backend = RecordingBackend()
        var memory = StateStore()
        var released = StateStore(backendReader: backend)
        var workload = Workload(seed: 19)
        for step in 0..<400 {
            let request = workload.next(for: memory)
            let expected = Result { () throws(StateError) in try memory.apply(request) }
            let actual = Result { () throws(StateError) in try released.apply(request) }
            #expect(expected.map(\.response) == actual.map(\.response), "step \(step)")
            #expect(expected.map(\.events) == actual.map(\.events), "step \(step)")
            #expect(expected.map(\.mutations) == actual.map(\.mutations), "step \(step)")
            if case .success(let applied) = actual {
                backend.write(applied.mutations)
                workload.observe(applied.response)
            }
            released.releaseDurableValues()
            #expect(released.residentValueBytes == 0)
            if step % 100 == 99 {
                try expectEquivalent(released, memory)
                #expect(released.digest() == memory.digest())
                #expect(samePairs(released.backendPairs(), backend.pairs))
            }
        }
        #expect(memory.residentValueBytes > 0)

        // Restored from the backend with a reader, the store holds no value at all.
        let restored = try StateStore(restoringFrom: backend.pairs, backendReader: backend)
        #expect(restored.residentValueBytes == 0)
        #expect(restored.digest() == memory.digest())
        let whole = RangeRequest(key: [0], rangeEnd: [0])
        #expect(try restored.range(whole) == memory.range(whole))
    }

    /// A range planned from the key index (`planRange`) and finished later from a copy of the
    /// backend taken when it was planned answers as a range served at once, whatever was
    /// applied and written meanwhile, a compaction that deleted its versions included.
    @Test func aPlannedRangeFinishedLaterFromAPinnedBackendAnswersAsAtOnce() throws {
        let backend = RecordingBackend()
        var store = try released(backend) { store in
            var mutations: [BackendMutation] = []
            for i in 0..<6 { mutations += try store.set("k\(i)", "v\(5 - i)").mutations }
            return mutations
        }
        // One value still in memory: its batch is not written yet.
        let unwritten = try store.set("k0", "resident")
        let requests = [
            RangeRequest(key: b("k"), rangeEnd: b("l")),
            RangeRequest(key: b("k"), rangeEnd: b("l"), limit: 2, sortOrder: .ascend, sortTarget: .value),
            RangeRequest(key: b("k"), rangeEnd: b("l"), limit: 3, sortOrder: .descend, sortTarget: .createRevision),
            RangeRequest(key: b("k"), rangeEnd: b("l"), revision: 3),
            RangeRequest(key: b("k"), rangeEnd: b("l"), keysOnly: true),
        ]
        let planned = try requests.map { try store.planRange($0) }
        let answers = try requests.map { try store.range($0) }
        #expect(planned[0].unreadValueCount == 5, "k0's newest value is in memory")
        #expect(planned[3].unreadValueCount == 2, "at revision 3: k0 and k1, both released")
        #expect(planned[4].unreadValueCount == 0)
        let pinned = backend.frozen()

        // Meanwhile: the write lands, more writes, and a compaction deletes the old versions.
        backend.write(unwritten.mutations)
        store.releaseDurableValues()
        var later: [BackendMutation] = []
        for i in 0..<6 { later += try store.set("k\(i)", "new").mutations }
        later += try store.compact(CompactionRequest(revision: store.currentRevision)).mutations
        backend.write(later)
        store.releaseDurableValues()

        let readsBefore = pinned.reads
        for (pending, answer) in zip(planned, answers) {
            #expect(pending.finish(reading: pinned) == answer)
        }
        #expect(pinned.reads - readsBefore == planned.reduce(0) { $0 + $1.unreadValueCount })
        #expect(values(answers[1].kvs) == ["resident", "v0"] && answers[1].more)
    }

    @Test func snapshotPairsStayResidentUntilReleased() throws {
        let backend = RecordingBackend()
        var source = StateStore()
        try source.set("k", "snapshot value")
        var store = StateStore(backendReader: backend)
        try store.restore(from: source.backendPairs())
        #expect(store.residentValueBytes == "snapshot value".utf8.count)
        backend.write(source.backendPairs().map { .put(key: $0.0, value: $0.1) })
        store.releaseDurableValues()
        #expect(store.residentValueBytes == 0)
        #expect(try store.value(of: "k") == "snapshot value")
    }

    @Test func aValueMissingFromTheBackendStopsTheProcess() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let backend = RecordingBackend()
            var store = StateStore(backendReader: backend)
            _ = try? store.set("a", "never written")
            // The batch was never written, yet its values are released.
            store.releaseDurableValues()
            _ = try? store.get("a")
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("the backend has no record of version 2.0 of key \"a\""), "\(message)")
        #expect(message.contains("remove it from the cluster"))
    }
}
