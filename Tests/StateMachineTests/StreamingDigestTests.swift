import Primitives
import StateMachine
import Testing

/// The digests the server computes from a pinned RocksDB snapshot, one pair at a time, equal the
/// in-memory store's (`Maintenance.Hash` and `HashKV` must not depend on where they run).
@Suite struct StreamingDigestTests {
    /// `HashKV` of backend pairs read in key order, as `PinnedState.hashKV` reads them.
    func streamedHashKV(_ pairs: [([UInt8], [UInt8])], revision: Int64) throws -> HashKVResponse {
        let stored = try KeyValueDigest.storedRevisions(
            current: pairs.first { $0.0 == BackendLayout.revisionKey }?.1,
            compacted: pairs.first { $0.0 == BackendLayout.compactedKey }?.1)
        var digest = try KeyValueDigest(revision: revision, currentRevision: stored.current, compactedRevision: stored.compacted)
        for (key, value) in pairs where key.starts(with: BackendLayout.versionPrefix) {
            guard digest.update(key: key, value: value) else { break }
        }
        return digest.finish()
    }

    @Test(arguments: [UInt64(1), 2, 3, 42])
    func streamedDigestsEqualTheStoresOnARandomWorkload(seed: UInt64) throws {
        var store = StateStore()
        var backend = FakeBackend()
        var workload = Workload(seed: seed)
        var compared = 0
        for step in 1...500 {
            if let result = try? store.apply(workload.next(for: store)) {
                backend.write(result.mutations)
                workload.observe(result.response)
            }
            guard step % 100 == 0 else { continue }
            let pairs = backend.pairs
            var digest = StateDigest()
            for (key, value) in pairs { digest.update(key: key, value: value) }
            #expect(digest.value == store.digest())
            for revision in Int64(-1)...(store.currentRevision + 2) {
                let expected = Result { () throws(StateError) in try store.hashKV(revision: revision) }
                let streamed = Result { () throws(StateError) in
                    do { return try streamedHashKV(pairs, revision: revision) } catch let error as StateError { throw error } catch {
                        Issue.record("decoding failed: \(error)")
                        throw .futureRevision
                    }
                }
                #expect(streamed == expected, "revision \(revision)")
                compared += 1
            }
        }
        #expect(store.compactedRevision > 0, "the workload compacts, so HashKV's compacted error is covered")
        #expect(compared > 200)
    }

    @Test func aMissingOrChangedPairChangesBothDigests() throws {
        var store = StateStore()
        try store.set("a", "1")
        try store.set("b", "2")
        try store.set("a", "3")
        let pairs = store.backendPairs()
        for skipped in pairs.indices {
            var digest = StateDigest()
            for (i, (key, value)) in pairs.enumerated() where i != skipped { digest.update(key: key, value: value) }
            #expect(digest.value != store.digest(), "pair \(skipped) skipped")
        }
        var versions = pairs.filter { $0.0.starts(with: BackendLayout.versionPrefix) }
        versions[1].1[versions[1].1.count - 1] ^= 1
        #expect(
            try streamedHashKV(versions + pairs.filter { !$0.0.starts(with: BackendLayout.versionPrefix) }, revision: 0) != store.hashKV())
    }

    @Test func revisionsAbsentFromTheBackendTakeTheirDefaults() throws {
        let stored = try KeyValueDigest.storedRevisions(current: nil, compacted: nil)
        #expect(stored.current == 1 && stored.compacted == -1)
        #expect(throws: ByteDecodingError.self) { try KeyValueDigest.storedRevisions(current: [1, 2], compacted: nil) }
        #expect(try streamedHashKV([], revision: 0) == StateStore().hashKV())
    }
}
