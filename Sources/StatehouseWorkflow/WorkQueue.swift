import StatehouseClient

import struct Foundation.Data
import struct Foundation.Date

/// A durable work queue in Statehouse: items are enqueued once by ID, claimed by one worker at a
/// time under a lease, acknowledged when done, visible again when a claim's lease runs out, and
/// moved to the dead letters after too many attempts.
///
/// Keys, under the queue's prefix `P`:
///
/// | key | value |
/// | --- | --- |
/// | `P/items/<id>` | the ``WorkItem`` (JSON), while it waits or is claimed |
/// | `P/claims/<id>` | the claimer's name, attached to the claim's lease |
/// | `P/done/<id>` | when it was acknowledged (seconds since 1970), so it is not enqueued again |
/// | `P/dead/<id>` | the ``WorkItem`` that failed ``Configuration/maxAttempts`` times |
///
/// **Visibility timeout.** A claim is a key attached to a lease of
/// ``Configuration/visibilityTimeout`` seconds. If the claimer dies or stalls and the lease is
/// not renewed (``extend(_:)``, or `client.keepAlive(claim.lease, ttl:)` while working), the
/// store deletes the claim key when the lease expires and the item can be claimed again.
///
/// **Fencing.** A claim's ``WorkClaim/revision`` (the claim key's create revision) guards its
/// acknowledgement: ``ack(_:with:)`` applies only while that claim still exists, so an item
/// whose claim expired and was claimed by another worker is never acknowledged twice.
public struct WorkQueue: Sendable {
    /// How long claims last and how often an item may be tried.
    public struct Configuration: Sendable, Hashable {
        /// The lease TTL of a claim, in seconds: how long an item stays invisible to other
        /// workers after a claim that is neither renewed nor acknowledged.
        public var visibilityTimeout: Int64
        /// How many claims an item may have; an item claimed this many times without being
        /// acknowledged goes to the dead letters instead of being claimed again.
        public var maxAttempts: Int

        /// A configuration with the given values (defaults: 30 s, 5 attempts).
        public init(visibilityTimeout: Int64 = 30, maxAttempts: Int = 5) {
            self.visibilityTimeout = visibilityTimeout
            self.maxAttempts = maxAttempts
        }
    }

    /// The client the queue lives on.
    public let client: StatehouseClient
    /// The prefix of the queue's keys (ends with `/`).
    public let prefix: String
    /// Claim and retry settings.
    public let configuration: Configuration

    /// The queue under `prefix` (a `/` is appended if missing).
    public init(client: StatehouseClient, prefix: String, configuration: Configuration = Configuration()) {
        self.client = client
        self.prefix = prefix.hasSuffix("/") ? prefix : prefix + "/"
        self.configuration = configuration
    }

    // MARK: - Keys

    /// The key of item `id` while it waits or is claimed.
    public func itemKey(_ id: String) -> String { prefix + "items/" + id }
    /// The key of item `id`'s claim.
    public func claimKey(_ id: String) -> String { prefix + "claims/" + id }
    /// The key recording that item `id` was acknowledged.
    public func doneKey(_ id: String) -> String { prefix + "done/" + id }
    /// The key of item `id` in the dead letters.
    public func deadKey(_ id: String) -> String { prefix + "dead/" + id }

    // MARK: - Enqueueing

    /// Enqueues item `id` with `payload`, unless an item with that ID is queued, done or dead,
    /// or one of `conditions` fails. Returns whether it was enqueued.
    ///
    /// Enqueueing is idempotent: sending the same ID again (after a retry whose outcome was
    /// unknown, or from another producer) enqueues it once.
    ///
    /// - Throws: ``WorkflowError`` with code `invalidID` for an empty ID or one with `/`.
    @discardableResult
    public func enqueue(_ id: String, payload: Data = Data(), unless conditions: [Compare] = []) async throws -> Bool {
        try WorkflowError.checkID(id)
        let item = WorkItem(id: id, payload: payload, attempts: 0)
        let result = try await client.txn()
            .when(
                [.version(itemKey(id)) == 0, .version(doneKey(id)) == 0, .version(deadKey(id)) == 0] + conditions
            )
            .then(try .put(itemKey(id), encoding: item))
            .commit()
        return result.succeeded
    }

    // MARK: - Claiming

    /// Claims the oldest visible item for `owner`, or returns nil if none is visible.
    ///
    /// An item already claimed as often as ``Configuration/maxAttempts`` allows is moved to the
    /// dead letters instead. The claim's lease is not renewed by this call: renew it with
    /// ``extend(_:)`` or keep it alive while working, or it lapses after the visibility timeout.
    public func claim(owner: String) async throws -> WorkClaim? {
        let items = try await client.get(
            .prefix(prefix + "items/"), options: GetOptions(limit: 256, sort: SortOrder(.createRevision)))
        let claimed = Set(
            try await client.get(.prefix(prefix + "claims/"), options: GetOptions(keysOnly: true)).kvs.map {
                String($0.keyString.dropFirst(prefix.count + "claims/".count))
            })
        var lease: LeaseID?
        for kv in items.kvs {
            guard let item = try? kv.decode(WorkItem.self), !claimed.contains(item.id) else { continue }
            if item.attempts >= configuration.maxAttempts {
                _ = try await client.txn()
                    .when(.modRevision(kv.key) == kv.modRevision, .version(claimKey(item.id)) == 0)
                    .then(.delete(kv.key), try .put(deadKey(item.id), encoding: item))
                    .commit()
                continue
            }
            let claimLease: LeaseID
            if let lease {
                claimLease = lease
            } else {
                claimLease = try await client.grantLease(ttl: configuration.visibilityTimeout).id
                lease = claimLease
            }
            var attempt = item
            attempt.attempts += 1
            let result = try await client.txn()
                .when(.modRevision(kv.key) == kv.modRevision, .version(claimKey(item.id)) == 0)
                .then(.put(claimKey(item.id), owner, lease: claimLease), try .put(kv.key, encoding: attempt))
                .commit()
            if result.succeeded {
                return WorkClaim(item: attempt, owner: owner, revision: result.header.revision, lease: claimLease)
            }
        }
        // A lease granted for a claim that did not happen is given back (it would expire anyway).
        if let lease { await revokeQuietly(lease) }
        return nil
    }

    /// Renews `claim`'s lease, so the item stays invisible for another visibility timeout.
    ///
    /// - Throws: `StatehouseError` with code `notHeld` if the claim's lease has expired.
    public func extend(_ claim: WorkClaim) async throws {
        do {
            let ttl = try await client.renewLease(claim.lease)
            guard ttl > 0 else { throw StatehouseError(.notHeld, "the claim on \(claim.item.id) has expired") }
        } catch let error as StatehouseError where error.code == .leaseNotFound {
            throw StatehouseError(.notHeld, "the claim on \(claim.item.id) has expired")
        }
    }

    // MARK: - Finishing

    /// The comparison that holds while `claim` is the item's current claim; a transaction
    /// guarded by it (with ``ackOperations(_:)``) acknowledges the item together with other writes.
    public func isHeld(_ claim: WorkClaim) -> Compare { .createRevision(claimKey(claim.item.id)) == claim.revision }

    /// The writes that acknowledge `claim`'s item: delete the item and the claim, record it done.
    public func ackOperations(_ claim: WorkClaim) throws -> [Operation] {
        [
            .delete(itemKey(claim.item.id)), .delete(claimKey(claim.item.id)),
            try .put(doneKey(claim.item.id), encoding: Date().timeIntervalSince1970),
        ]
    }

    /// Acknowledges `claim`'s item (it is done and never claimed again), together with
    /// `operations`, in one transaction that applies only while the claim holds.
    ///
    /// - Throws: `StatehouseError` with code `notHeld` if the claim expired (then nothing was
    ///   written; the item is or will be claimed again).
    public func ack(_ claim: WorkClaim, with operations: [Operation] = []) async throws {
        let result = try await client.txn().when(isHeld(claim)).then(try ackOperations(claim) + operations).commit()
        guard result.succeeded else { throw StatehouseError(.notHeld, "the claim on \(claim.item.id) has expired") }
        await revokeQuietly(claim.lease)
    }

    /// Gives `claim`'s item back: it is visible again at once (its attempt still counts).
    /// Does nothing if the claim already expired.
    public func release(_ claim: WorkClaim) async throws {
        _ = try await client.txn().when(isHeld(claim)).then(.delete(claimKey(claim.item.id))).commit()
        await revokeQuietly(claim.lease)
    }

    /// Moves `claim`'s item to the dead letters at once (it failed for good).
    ///
    /// - Throws: `StatehouseError` with code `notHeld` if the claim expired.
    public func deadLetter(_ claim: WorkClaim) async throws {
        let result = try await client.txn()
            .when(isHeld(claim))
            .then(.delete(itemKey(claim.item.id)), .delete(claimKey(claim.item.id)), try .put(deadKey(claim.item.id), encoding: claim.item))
            .commit()
        guard result.succeeded else { throw StatehouseError(.notHeld, "the claim on \(claim.item.id) has expired") }
        await revokeQuietly(claim.lease)
    }

    // MARK: - Reading

    /// The items waiting or claimed, oldest first.
    public func items() async throws -> [WorkItem] {
        try await client.get(.prefix(prefix + "items/"), options: GetOptions(sort: SortOrder(.createRevision))).kvs.map {
            try $0.decode(WorkItem.self)
        }
    }

    /// The items in the dead letters.
    public func deadLetters() async throws -> [WorkItem] {
        try await client.get(.prefix(prefix + "dead/")).kvs.map { try $0.decode(WorkItem.self) }
    }

    /// Whether item `id` was acknowledged (and its done record not yet removed by retention).
    public func isDone(_ id: String) async throws -> Bool {
        try await client.get(doneKey(id)) != nil
    }

    /// Revokes a claim's lease, ignoring failures: it would expire anyway.
    private func revokeQuietly(_ lease: LeaseID) async {
        _ = try? await client.revokeLease(lease)
    }
}

/// One item of a ``WorkQueue``.
public struct WorkItem: Codable, Sendable, Hashable {
    /// The item's ID, unique in its queue.
    public var id: String
    /// What the producer enqueued.
    public var payload: Data
    /// How many times it has been claimed.
    public var attempts: Int

    /// An item with the given values.
    public init(id: String, payload: Data, attempts: Int) {
        self.id = id
        self.payload = payload
        self.attempts = attempts
    }
}

/// A worker's claim on a ``WorkItem``.
public struct WorkClaim: Sendable, Hashable {
    /// The item, with its attempt counted.
    public var item: WorkItem
    /// Who claimed it.
    public var owner: String
    /// The claim key's create revision: the claim's fencing token.
    public var revision: Int64
    /// The claim's lease; it expires after the visibility timeout unless renewed.
    public var lease: LeaseID
}
