import Primitives
import StateMachine

// The waiting queue shared by Lock and Campaign (etcd's Mutex.Lock and Election.Campaign):
// every caller owns the key `name/<lease hex>`; the key with the lowest create revision under
// `name/` holds the lock or leadership, and each caller waits for every key created before its
// own to be deleted.

/// The prefix of the keys of a lock or election: `name` followed by `/`.
func queuePrefix(_ name: [UInt8]) -> [UInt8] {
    name + Array("/".utf8)
}

/// The caller's key in a queue: the prefix followed by the lease ID in lowercase hexadecimal,
/// as etcd formats it (`%x`, so a negative ID gets a minus sign).
func ownKey(prefix: [UInt8], lease: Int64) -> [UInt8] {
    prefix + Array(String(lease, radix: 16).utf8)
}

/// The range request for the key created first under a prefix (etcd's `WithFirstCreate`).
func firstCreated(under prefix: [UInt8]) -> RangeRequest {
    RangeRequest(key: prefix, rangeEnd: prefixEnd(prefix), limit: 1, sortOrder: .ascend, sortTarget: .createRevision)
}

/// A caller's place in a queue, once it holds it.
struct QueuePlace: Sendable {
    /// The caller's key.
    var key: [UInt8]
    /// The create revision of the key: the caller's position and fencing token.
    var createRevision: Int64
    /// The store revision of the read or write that confirmed the place (the response header).
    var revision: Int64
}

/// Runs the queue protocol over a backend.
struct Queue<Backend: RecipeBackend>: Sendable {
    let backend: Backend
    let prefix: [UInt8]

    /// Joins the queue with `lease` and waits for the caller's turn.
    ///
    /// 1. The lease must exist, or the call fails with `StateError.leaseNotFound` (etcd reaches
    ///    the same error when its put names a missing lease). Lease 0 is refused the same way.
    /// 2. One transaction creates the caller's key with `value` if it does not exist (otherwise
    ///    the caller re-enters with the existing key and its create revision) and reads the first
    ///    key in the queue.
    /// 3. On re-entry with a different value and `proclaimsValue`, the value is replaced while
    ///    the key keeps its create revision, or the call fails with ``RecipeError/notLeader``.
    /// 4. Unless the caller's key is first, it waits, repeatedly, for the deletion of the last
    ///    key created before its own.
    /// 5. After waiting it checks again that its key still exists with the same create revision
    ///    and that its lease is alive; this is the check etcd 3.4 lacks (Jepsen, etcd #11456).
    ///    A missing or expiring lease fails with `StateError.leaseNotFound`; a deleted key with a
    ///    live lease fails with ``RecipeError/sessionExpired``.
    ///
    /// If the call fails or its task is cancelled after step 2 created the key, the key is deleted
    /// (only while it still has this call's create revision, so a newer owner is never removed).
    /// A key that existed before the call is left alone.
    func join(lease: Int64, value: [UInt8], proclaimsValue: Bool) async throws -> QueuePlace {
        try Task.checkCancellation()
        try await requireLiveLease(lease)

        let key = ownKey(prefix: prefix, lease: lease)
        let first = firstCreated(under: prefix)
        let joined = try await backend.txn(
            TxnRequest(
                compares: [Compare(key: key, target: .createRevision(0), result: .equal)],
                success: [.put(PutRequest(key: key, value: value, lease: lease)), .range(first)],
                failure: [.range(RangeRequest(key: key)), .range(first)]
            ))
        let created = joined.succeeded

        do {
            var place = QueuePlace(key: key, createRevision: joined.revision, revision: joined.revision)
            if !created {
                guard case .range(let own)? = joined.responses.first, let existing = own.kvs.first else {
                    throw RecipeError.sessionExpired
                }
                place.createRevision = existing.createRevision
                if proclaimsValue && existing.value != value {
                    place.revision = try await proclaim(
                        key: key, createRevision: existing.createRevision, lease: lease, value: value)
                }
            }

            // The transaction read the first key after creating or finding the caller's, so the
            // first key exists; should the read be missing, the caller waits (and re-checks).
            var owner: KeyValue? = nil
            if joined.responses.count > 1, case .range(let head) = joined.responses[1] { owner = head.kvs.first }
            if owner?.createRevision != place.createRevision {
                try await waitForPredecessors(of: place)
                place.revision = try await confirm(place, lease: lease)
            }
            // A caller that went away must not be left holding a lock it never learns about.
            try Task.checkCancellation()
            return place
        } catch {
            if created { await deleteUnlessReplaced(key: key, createRevision: joined.revision) }
            throw error
        }
    }

    /// Fails with `StateError.leaseNotFound` unless the lease exists with time left (lease 0 never does).
    ///
    /// A remaining TTL of 0 counts as gone: the lease has under a second left, or has expired and
    /// waits for its revocation to commit.
    private func requireLiveLease(_ lease: Int64) async throws {
        // Lease 0 means "no lease" to the store: a key without one would never go away.
        guard lease != 0, let remaining = try await backend.leaseRemaining(lease), remaining > 0 else {
            throw StateError.leaseNotFound
        }
    }

    /// Waits until no key created before the caller's remains (etcd's `waitDeletes`).
    private func waitForPredecessors(of place: QueuePlace) async throws {
        let end = prefixEnd(prefix)
        while true {
            try Task.checkCancellation()
            let last = try await backend.range(
                RangeRequest(
                    key: prefix, rangeEnd: end, limit: 1, sortOrder: .descend, sortTarget: .createRevision,
                    maxCreateRevision: place.createRevision - 1))
            guard let predecessor = last.kvs.first else { return }
            try await backend.waitForDeletion(of: predecessor.key, after: last.revision)
        }
    }

    /// Checks, after waiting, that the caller still owns its key and that its lease is alive.
    ///
    /// - Returns: The revision of the read that confirmed the key.
    private func confirm(_ place: QueuePlace, lease: Int64) async throws -> Int64 {
        let own = try await backend.range(RangeRequest(key: place.key))
        let remaining = try await backend.leaseRemaining(lease)
        let leaseAlive = (remaining ?? 0) > 0
        guard let kv = own.kvs.first, kv.createRevision == place.createRevision else {
            throw leaseAlive ? RecipeError.sessionExpired : StateError.leaseNotFound
        }
        guard leaseAlive else { throw StateError.leaseNotFound }
        return own.revision
    }

    /// Replaces the value of a key while it keeps its create revision (etcd's Proclaim).
    ///
    /// - Returns: The revision of the write.
    /// - Throws: ``RecipeError/notLeader`` if the key no longer has that create revision.
    func proclaim(key: [UInt8], createRevision: Int64, lease: Int64, value: [UInt8]) async throws -> Int64 {
        let response = try await backend.txn(
            TxnRequest(
                compares: [Compare(key: key, target: .createRevision(createRevision), result: .equal)],
                success: [.put(PutRequest(key: key, value: value, lease: lease))]
            ))
        guard response.succeeded else { throw RecipeError.notLeader }
        return response.revision
    }

    /// Deletes a key if it still has the given create revision.
    ///
    /// - Returns: The revision of the transaction (unchanged when nothing was deleted).
    @discardableResult
    func delete(key: [UInt8], ifCreatedAt createRevision: Int64) async throws -> Int64 {
        try await backend.txn(
            TxnRequest(
                compares: [Compare(key: key, target: .createRevision(createRevision), result: .equal)],
                success: [.deleteRange(DeleteRangeRequest(key: key))]
            )
        ).revision
    }

    /// Cleans up a key this call created, in a task of its own so the caller's cancellation does
    /// not cancel the cleanup; failures are ignored (the lease still bounds the key's life).
    private func deleteUnlessReplaced(key: [UInt8], createRevision: Int64) async {
        let queue = self
        await Task { _ = try? await queue.delete(key: key, ifCreatedAt: createRevision) }.value
    }
}
