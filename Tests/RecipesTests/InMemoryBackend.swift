import Primitives
import Recipes
import StateMachine

/// UTF-8 bytes of a string.
func b(_ s: String) -> [UInt8] { Array(s.utf8) }

/// A string from UTF-8 bytes.
func s(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// A ``RecipeBackend`` over an in-memory `StateStore`: an actor applies every request in turn (so
/// every read is linearizable), wakes deletion waiters and feeds watchers after each write.
///
/// Tests drive leases by hand: ``grantLease(id:)``, ``revokeLease(_:)`` (deletes the lease's keys
/// as an expiry would) and ``markExpiring(_:)`` (the lease still exists but reports 0 s left, as
/// an expired lease does until its revocation commits).
actor InMemoryBackend: RecipeBackend {
    private(set) var store = StateStore()
    private var expiring: Set<Int64> = []
    private var nextWaiterID = 0
    private var deletionWaiters: [Int: (key: [UInt8], continuation: CheckedContinuation<Void, any Error>)] = [:]
    private var waiterCountObservers: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    private var watchers: [(prefix: [UInt8], continuation: AsyncThrowingStream<[Event], any Error>.Continuation)] = []

    // MARK: RecipeBackend

    func txn(_ request: TxnRequest) throws -> TxnResponse {
        let applied = try store.txn(request)
        publish(applied.events)
        return applied.response
    }

    func range(_ request: RangeRequest) throws -> RangeResponse {
        try store.range(request)
    }

    func waitForDeletion(of key: [UInt8], after revision: Int64) async throws {
        if try isDeleted(key, after: revision) { return }
        let id = nextWaiterID
        nextWaiterID += 1
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                    return
                }
                deletionWaiters[id] = (key, continuation)
                waiterCountChanged()
            }
        } onCancel: {
            Task { await self.cancelWaiter(id) }
        }
    }

    func leaseRemaining(_ id: Int64) -> Int64? {
        guard let lease = store.lease(id) else { return nil }
        return expiring.contains(id) ? 0 : lease.ttl
    }

    nonisolated func watch(prefix: [UInt8], from revision: Int64) -> AsyncThrowingStream<[Event], any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: [Event].self)
        Task { await self.addWatcher(prefix: prefix, from: revision, continuation: continuation) }
        return stream
    }

    // MARK: Test controls

    /// Grants a lease with a 60 s TTL and returns its ID.
    func grantLease(id: Int64 = 0) throws -> Int64 {
        try store.grantLease(LeaseGrantRequest(ttl: 60, id: id)).response.id
    }

    /// Revokes a lease, deleting its keys in one revision.
    func revokeLease(_ id: Int64) throws {
        publish(try store.revokeLease(LeaseRevokeRequest(id: id)).events)
    }

    /// Makes a lease report 0 s left while it still exists.
    func markExpiring(_ id: Int64) {
        expiring.insert(id)
    }

    /// The keys under a prefix, with their values.
    func contents(under prefix: String) throws -> [String: String] {
        let kvs = try store.range(RangeRequest(key: b(prefix), rangeEnd: prefixEnd(b(prefix)))).kvs
        return Dictionary(uniqueKeysWithValues: kvs.map { (s($0.key), s($0.value)) })
    }

    /// The number of calls blocked in ``waitForDeletion(of:after:)``.
    var deletionWaiterCount: Int { deletionWaiters.count }

    /// Returns once at least `count` calls are blocked in ``waitForDeletion(of:after:)``.
    func waitUntilBlocked(_ count: Int) async {
        if deletionWaiters.count >= count { return }
        await withCheckedContinuation { waiterCountObservers.append((count, $0)) }
    }

    // MARK: Internals

    private func isDeleted(_ key: [UInt8], after revision: Int64) throws -> Bool {
        if try store.range(RangeRequest(key: key)).kvs.isEmpty { return true }
        return try store.events(from: revision + 1, key: key).contains { $0.kind == .delete }
    }

    private func cancelWaiter(_ id: Int) {
        guard let waiter = deletionWaiters.removeValue(forKey: id) else { return }
        waiter.continuation.resume(throwing: CancellationError())
        waiterCountChanged()
    }

    private func waiterCountChanged() {
        let count = deletionWaiters.count
        let ready = waiterCountObservers.filter { count >= $0.count }
        waiterCountObservers.removeAll { count >= $0.count }
        for observer in ready { observer.continuation.resume() }
    }

    private func addWatcher(
        prefix: [UInt8], from revision: Int64, continuation: AsyncThrowingStream<[Event], any Error>.Continuation
    ) {
        do {
            let history = try store.events(from: revision, key: prefix, rangeEnd: prefixEnd(prefix))
            if !history.isEmpty { continuation.yield(history) }
            watchers.append((prefix, continuation))
        } catch {
            continuation.finish(throwing: error)
        }
    }

    /// Wakes the deletion waiters and feeds the watchers with the events of one write (one revision).
    private func publish(_ events: [Event]) {
        guard !events.isEmpty else { return }
        let deleted = Set(events.filter { $0.kind == .delete }.map(\.kv.key))
        let woken = deletionWaiters.filter { deleted.contains($0.value.key) }
        for (id, waiter) in woken {
            deletionWaiters[id] = nil
            waiter.continuation.resume()
        }
        if !woken.isEmpty { waiterCountChanged() }

        watchers.removeAll { watcher in
            let matching = events.filter { $0.kv.key.starts(with: watcher.prefix) }
            guard !matching.isEmpty else { return false }
            if case .terminated = watcher.continuation.yield(matching) { return true }
            return false
        }
    }
}
