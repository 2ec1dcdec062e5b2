import Logging

/// A lease kept alive for as long as the session is open, under which locks and election
/// candidacies are held.
///
/// When the lease is lost (it expired because the cluster could not be reached, or it was
/// revoked), ``lost`` turns non-nil and ``waitUntilLost()`` returns: whoever holds a lock
/// taken under the session must assume they no longer hold it.
public final class Session: Sendable {
    /// The client the session lives on.
    public let client: StatehouseClient
    /// The session's lease.
    public let lease: LeaseID
    /// The lease's TTL in seconds, as granted.
    public let ttl: Int64
    private let keepAlive: LeaseKeepAlive

    init(client: StatehouseClient, lease: LeaseID, ttl: Int64) {
        self.client = client
        self.lease = lease
        self.ttl = ttl
        keepAlive = client.keepAlive(lease, ttl: ttl)
    }

    /// Why the session is lost; nil while it is alive.
    public var lost: LeaseLoss? { keepAlive.lost }

    /// Whether the session's lease is still being kept alive.
    public var isAlive: Bool { keepAlive.lost == nil }

    /// Waits until the session is lost, and returns why (nil if the waiting task is cancelled).
    public func waitUntilLost() async -> LeaseLoss? { await keepAlive.waitUntilLost() }

    /// Ends the session: stops the keep-alive and revokes the lease, which deletes every key
    /// (locks, candidacies) held under it.
    public func close() async throws {
        keepAlive.cancel()
        try await client.revokeLease(lease)
    }

    /// Waits until no key under `prefix` was created before `revision` (etcd's waitDeletes):
    /// watches the latest such key for its deletion, again and again. DistributedMutex and Election queue
    /// this way.
    func waitForPredecessors(under prefix: [UInt8], below revision: Int64) async throws {
        while true {
            var options = GetOptions(limit: 1, sort: SortOrder(.createRevision, ascending: false))
            options.maxCreateRevision = revision - 1
            let predecessors = try await client.get(.prefix(prefix), options: options)
            guard let predecessor = predecessors.kvs.first else { return }
            try await waitForDeletion(of: predecessor.key, from: predecessors.header.revision)
        }
    }

    /// Waits until `key` is deleted at a revision after `revision`, or throws `sessionLost` if
    /// the session is lost first.
    func waitForDeletion(of key: [UInt8], from revision: Int64) async throws {
        let client = self.client
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                let events = client.watch(.key(key), options: WatchOptions(startRevision: revision + 1, noPut: true))
                for try await event in events where event.kind == .delete { return }
                throw StatehouseError(.cancelled, "the watch ended while waiting")
            }
            group.addTask {
                if let loss = await self.waitUntilLost() {
                    throw StatehouseError(.sessionLost, "the session's lease is lost (\(loss))")
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Stops keeping the lease alive without revoking it: its keys stay until the TTL runs out.
    public func orphan() {
        keepAlive.cancel()
    }
}

extension StatehouseClient {
    /// Opens a session: grants a lease of `ttl` seconds (60 by default, as etcd's client) and
    /// keeps it alive in the background until ``Session/close()``.
    public func makeSession(ttl: Int64 = 60) async throws -> Session {
        let grant = try await grantLease(ttl: ttl)
        return Session(client: self, lease: grant.id, ttl: grant.ttl)
    }

    /// Runs `body` with an open session and closes it afterwards (revoking its lease).
    public func withSession<Result: Sendable>(
        ttl: Int64 = 60, _ body: (Session) async throws -> Result
    ) async throws -> Result {
        let session = try await makeSession(ttl: ttl)
        do {
            let result = try await body(session)
            try await session.close()
            return result
        } catch {
            session.orphan()
            // Best effort, and in the background so that it runs even if this task was
            // cancelled: the lease would expire on its own anyway.
            let lease = session.lease
            cleanUp { try await $0.revokeLease(lease) }
            throw error
        }
    }
}

extension StatehouseClient {
    /// Runs a best-effort clean-up (deleting a lock key, revoking a lease) as a background task,
    /// so that it runs even when the task that needed it was cancelled.
    func cleanUp(_ work: @escaping @Sendable (StatehouseClient) async throws -> Void) {
        background.spawn { [self] in
            do { try await work(self) } catch {
                logger.debug("clean-up failed", metadata: ["error": "\(error)"])
            }
        }
    }
}
