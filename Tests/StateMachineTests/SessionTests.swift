import StateMachine
import Testing

@Suite struct SessionTests {
    /// A store with lease 7 granted, to carry a session.
    func storeWithSession(_ configuration: StateStore.Configuration = StateStore.Configuration()) throws -> StateStore {
        var store = StateStore(configuration: configuration)
        _ = try store.grantLease(LeaseGrantRequest(ttl: 60, id: 7))
        return store
    }

    func put(_ key: String, _ value: String) -> StateRequest {
        .put(PutRequest(key: b(key), value: b(value)))
    }

    @Test func retriedWriteReturnsTheOriginalAnswerAndAppliesNothing() throws {
        var store = try storeWithSession()
        let stamp = SessionStamp(session: 7, sequence: 1, acknowledged: 1)
        let first = store.apply(put("a", "1"), in: stamp)
        #expect(try first.response.get() == .put(PutResponse(revision: 2)))
        #expect(!first.mutations.isEmpty)
        #expect(first.events.count == 1)

        #expect(store.remembers(stamp) && !store.remembers(nil))
        #expect(!store.remembers(SessionStamp(session: 7, sequence: 2, acknowledged: 1)))
        let digest = store.digest()
        let retried = store.apply(put("a", "1"), in: stamp)
        #expect(try retried.response.get() == .put(PutResponse(revision: 2)))
        #expect(retried.mutations.isEmpty && retried.events.isEmpty)
        #expect(store.currentRevision == 2)
        #expect(try store.range(RangeRequest(key: b("a"))).kvs.first?.version == 1)
        #expect(store.digest() == digest)

        // Without the session the same request applies again.
        _ = try store.apply(put("a", "1"))
        #expect(try store.range(RangeRequest(key: b("a"))).kvs.first?.version == 2)
    }

    @Test func failedWriteIsRememberedToo() throws {
        var store = try storeWithSession()
        let stamp = SessionStamp(session: 7, sequence: 1, acknowledged: 1)
        let first = store.apply(.put(PutRequest(key: b("a"), value: b("1"), lease: 99)), in: stamp)
        #expect(first.response == .failure(.leaseNotFound))
        #expect(!first.mutations.isEmpty, "the failure is recorded in the session table")
        _ = try store.grantLease(LeaseGrantRequest(ttl: 60, id: 99))
        let retried = store.apply(.put(PutRequest(key: b("a"), value: b("1"), lease: 99)), in: stamp)
        #expect(retried.response == .failure(.leaseNotFound))
        #expect(store.currentRevision == 1)
    }

    @Test func unknownOrExpiredSessionIsRefused() throws {
        var store = try storeWithSession()
        #expect(
            store.apply(put("a", "1"), in: SessionStamp(session: 8, sequence: 1, acknowledged: 1)).response == .failure(.sessionExpired))
        _ = store.apply(put("a", "1"), in: SessionStamp(session: 7, sequence: 1, acknowledged: 1))
        #expect(store.session(7) != nil)

        // Expiry is the lease's revoke, decided through the log: it ends the session with it.
        let revoke = try store.revokeLease(LeaseRevokeRequest(id: 7))
        #expect(revoke.mutations.contains(.delete(key: BackendLayout.sessionKey(7))))
        #expect(store.session(7) == nil)
        let retried = store.apply(put("a", "1"), in: SessionStamp(session: 7, sequence: 1, acknowledged: 1))
        #expect(retried.response == .failure(.sessionExpired))
        #expect(retried.mutations.isEmpty)
        #expect(try store.range(RangeRequest(key: b("a"))).kvs.first?.version == 1)
    }

    @Test func acknowledgedAnswersAreForgotten() throws {
        var store = try storeWithSession()
        for sequence in UInt64(1)...3 {
            _ = store.apply(put("k\(sequence)", "v"), in: SessionStamp(session: 7, sequence: sequence, acknowledged: 1))
        }
        #expect(store.session(7)?.results.keys.sorted() == [1, 2, 3])
        let fourth = store.apply(put("k4", "v"), in: SessionStamp(session: 7, sequence: 4, acknowledged: 3))
        #expect(fourth.mutations.contains(.delete(key: BackendLayout.sessionResultKey(7, sequence: 1))))
        #expect(store.session(7)?.results.keys.sorted() == [3, 4])
        #expect(store.session(7)?.acknowledged == 3)
        // An answer already forgotten cannot be told apart from a new write: refused.
        let stale = store.apply(put("k1", "v"), in: SessionStamp(session: 7, sequence: 1, acknowledged: 1))
        #expect(stale.response == .failure(.sessionRequestForgotten))
        #expect(try store.range(RangeRequest(key: b("k1"))).kvs.first?.version == 1)
        // A remembered answer below the client's new mark is still returned.
        #expect(
            try store.apply(put("k3", "v"), in: SessionStamp(session: 7, sequence: 3, acknowledged: 3)).response.get()
                == .put(PutResponse(revision: 4)))
    }

    @Test func sessionKeepsAtMostItsBoundOfAnswers() throws {
        var store = try storeWithSession(StateStore.Configuration(maxSessionResults: 2))
        for sequence in UInt64(1)...5 {
            _ = store.apply(put("k\(sequence)", "v"), in: SessionStamp(session: 7, sequence: sequence, acknowledged: 1))
        }
        #expect(store.session(7)?.results.keys.sorted() == [4, 5])
        #expect(store.session(7)?.acknowledged == 4)
        #expect(
            store.apply(put("k2", "v"), in: SessionStamp(session: 7, sequence: 2, acknowledged: 1)).response
                == .failure(.sessionRequestForgotten))
    }

    @Test func fullTableEvictsTheOldestSession() throws {
        var store = StateStore(configuration: StateStore.Configuration(maxSessions: 2))
        for id in Int64(1)...3 { _ = try store.grantLease(LeaseGrantRequest(ttl: 60, id: id)) }
        _ = store.apply(put("a", "1"), in: SessionStamp(session: 1, sequence: 1, acknowledged: 1))
        _ = store.apply(put("b", "1"), in: SessionStamp(session: 2, sequence: 1, acknowledged: 1))
        #expect(store.liveSessionCount == 2)
        _ = store.apply(put("c", "1"), in: SessionStamp(session: 3, sequence: 1, acknowledged: 1))
        #expect(store.liveSessionCount == 2)
        #expect(store.session(1)?.isEvicted == true)
        #expect(store.session(1)?.results.isEmpty == true)
        // An evicted session cannot be mistaken for a new one while its lease lives.
        #expect(
            store.apply(put("a", "1"), in: SessionStamp(session: 1, sequence: 1, acknowledged: 1)).response == .failure(.sessionExpired))
        #expect(try store.range(RangeRequest(key: b("a"))).kvs.first?.version == 1)
        // Its marker goes with its lease.
        _ = try store.revokeLease(LeaseRevokeRequest(id: 1))
        #expect(store.session(1) == nil)
    }

    @Test func tableSurvivesBackendRestoreAndIsInTheDigest() throws {
        var store = try storeWithSession()
        let before = store.digest()
        _ = store.apply(put("a", "1"), in: SessionStamp(session: 7, sequence: 1, acknowledged: 1))
        _ = store.apply(.deleteRange(DeleteRangeRequest(key: b("zz"))), in: SessionStamp(session: 7, sequence: 2, acknowledged: 1))
        let pairs = store.backendPairs()
        #expect(pairs.contains { $0.0 == BackendLayout.sessionResultKey(7, sequence: 2) })

        var restored = try StateStore(restoringFrom: pairs.reversed())
        #expect(restored.session(7) == store.session(7))
        #expect(restored.digest() == store.digest())
        #expect(restored.backendPairs().map(\.0) == pairs.map(\.0))
        let retried = restored.apply(put("a", "1"), in: SessionStamp(session: 7, sequence: 1, acknowledged: 1))
        #expect(try retried.response.get() == .put(PutResponse(revision: 2)))
        #expect(restored.currentRevision == 2)

        // The digest covers the table: the same key space with a different table differs.
        var other = try storeWithSession()
        _ = try other.apply(put("a", "1"))
        #expect(try other.hashKV() == store.hashKV())
        #expect(other.digest() != store.digest())
        #expect(before != store.digest())
    }

    @Test func mutationsReplayToTheSameBackend() throws {
        // Applying the mutations to a backend, as a member writes them, gives the store's pairs.
        var store = try storeWithSession(StateStore.Configuration(maxSessions: 1, maxSessionResults: 2))
        _ = try store.grantLease(LeaseGrantRequest(ttl: 60, id: 8))
        var backend: [[UInt8]: [UInt8]] = [:]
        for (key, value) in store.backendPairs() { backend[key] = value }
        func record(_ mutations: [BackendMutation]) {
            for mutation in mutations {
                switch mutation {
                case .put(let key, let value): backend[key] = value
                case .delete(let key): backend[key] = nil
                }
            }
        }
        for sequence in UInt64(1)...4 {
            record(
                store.apply(put("a", "\(sequence)"), in: SessionStamp(session: 7, sequence: sequence, acknowledged: sequence - 1)).mutations
            )
        }
        record(store.apply(put("b", "1"), in: SessionStamp(session: 8, sequence: 1, acknowledged: 1)).mutations)
        record(try store.revokeLease(LeaseRevokeRequest(id: 8)).mutations)
        let expected = store.backendPairs()
        #expect(backend.count == expected.count)
        for (key, value) in expected { #expect(backend[key] == value) }
    }

    @Test func errorsRoundTripTheWireCodec() throws {
        for error in [StateError.sessionExpired, .sessionRequestForgotten] {
            #expect(try StateError(decoding: error.encoded()) == error)
        }
        #expect(StateError.sessionExpired.message == "etcdserver: session expired")
    }
}
