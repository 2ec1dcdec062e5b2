import StateMachine

/// A held lock: the answer to etcd's `Lock` call.
public struct AcquiredLock: Hashable, Sendable {
    /// The ownership key, `name/<lease hex>`. It exists exactly as long as the lock is held;
    /// pass it to ``LockRecipe/unlock(key:)`` to release the lock.
    public var key: [UInt8]
    /// The create revision of ``key``: the fencing token of this hold.
    ///
    /// Tokens grow with every new hold of the same lock. Holding a lock does not stop the holder's
    /// lease from expiring (after which another caller gets the lock), so a holder that writes
    /// shared state must make the write conditional on still holding it: either compare the key's
    /// create revision with this token in the same transaction
    /// (`Compare(key: key, target: .createRevision(fencingToken), result: .equal)`), or have the
    /// resource refuse tokens lower than the highest it has seen.
    public var fencingToken: Int64
    /// The lease the key is attached to.
    public var lease: Int64
    /// The store revision at which ownership was confirmed (the response header's revision).
    public var revision: Int64

    /// Creates a held lock.
    public init(key: [UInt8], fencingToken: Int64, lease: Int64, revision: Int64) {
        self.key = key
        self.fencingToken = fencingToken
        self.lease = lease
        self.revision = revision
    }
}

/// The logic of etcd's `v3lockpb.Lock` service: a distributed mutex over ``RecipeBackend``.
///
/// The key protocol is etcd's (`concurrency.Mutex`), so etcd clients and this service can share
/// locks: a caller's key is `name/<lease ID in lowercase hex>`, and the key with the lowest create
/// revision under `name/` holds the lock. Unlike etcd 3.4, ``lock(name:lease:)`` checks after
/// waiting that the caller's key and lease still exist (Jepsen's etcd #11456), and every hold
/// comes with a fencing token (``AcquiredLock/fencingToken``).
public struct LockRecipe<Backend: RecipeBackend>: Sendable {
    /// The store the recipe runs against.
    public let backend: Backend

    /// Creates the recipe over a backend.
    public init(backend: Backend) {
        self.backend = backend
    }

    /// Acquires the lock `name` for `lease`, waiting as long as it takes (etcd's `Lock`).
    ///
    /// Locking again with a lease that already has a key in the queue is a no-op re-entry: it
    /// returns (once the lease's turn comes) the existing key and its create revision.
    ///
    /// If the calling task is cancelled (the client cancelled the call), the call stops waiting,
    /// deletes its key if it created it, and throws `CancellationError`.
    ///
    /// - Parameters:
    ///   - name: The lock's name; keys live under `name/`.
    ///   - lease: The lease that bounds the hold. Lease 0 (no lease) is refused: a lock without a
    ///     lease could never be recovered from a crashed holder.
    /// - Throws: `StateError.leaseNotFound` if the lease does not exist (or expires while waiting),
    ///   ``RecipeError/sessionExpired`` if the caller's key is deleted while it waits,
    ///   `CancellationError`, or any backend error.
    public func lock(name: [UInt8], lease: Int64) async throws -> AcquiredLock {
        let place = try await Queue(backend: backend, prefix: queuePrefix(name))
            .join(lease: lease, value: [], proclaimsValue: false)
        return AcquiredLock(key: place.key, fencingToken: place.createRevision, lease: lease, revision: place.revision)
    }

    /// Releases a lock by deleting its ownership key (etcd's `Unlock`, a plain delete).
    ///
    /// Deleting a key that no longer exists succeeds. As in etcd, the delete is not conditional:
    /// callers that retry an unlock should prefer a delete guarded by the fencing token.
    ///
    /// - Returns: The store revision after the delete (the response header's revision).
    public func unlock(key: [UInt8]) async throws -> Int64 {
        try await backend.txn(TxnRequest(success: [.deleteRange(DeleteRangeRequest(key: key))])).revision
    }
}
