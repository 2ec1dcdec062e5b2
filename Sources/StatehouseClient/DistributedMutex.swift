import Logging
import Synchronization

/// Proof of holding a ``DistributedMutex``: the lock key and its create revision, the **fencing token**.
///
/// Revisions only grow, so a later holder always has a larger token than an earlier one; a
/// store that records the token it last saw can refuse writes from an older holder. Within
/// Statehouse itself, ``DistributedMutex/guardedPut(_:_:lease:)`` and ``DistributedMutex/guardedTxn(_:)`` write
/// only while the token still holds.
public struct LockToken: Sendable, Hashable {
    /// The lock key (`<name>/<lease in hex>`).
    public var key: [UInt8]
    /// The lock key's create revision: the fencing token.
    public var revision: Int64

    /// The key as text.
    public var keyString: String { String(decoding: key, as: UTF8.self) }
}

/// A distributed mutex held under a ``Session`` (etcd's concurrency recipe): candidates queue
/// under `<name>/` ordered by create revision, and the lowest holds the lock. A waiter watches
/// only the candidate just ahead of it, so a release wakes one waiter.
///
/// The name says what it is, and does not clash with the standard library's
/// `Synchronization.Mutex` (an in-process lock).
public final class DistributedMutex: Sendable {
    /// The session the lock is held under.
    public let session: Session
    /// The lock's name (the key prefix its candidates queue under).
    public let name: String
    private let prefix: [UInt8]
    private let key: [UInt8]
    private let held = Synchronization.Mutex<LockToken?>(nil)

    /// A mutex named `name`, taken under `session`.
    public init(session: Session, name: String) {
        self.session = session
        self.name = name
        prefix = Array((name.hasSuffix("/") ? name : name + "/").utf8)
        key = prefix + Array(String(UInt64(bitPattern: session.lease.rawValue), radix: 16).utf8)
    }

    /// The token while this mutex holds the lock.
    public var token: LockToken? { held.withLock { $0 } }

    /// Waits for the lock and returns the fencing token.
    ///
    /// Cancelling the waiting task withdraws from the queue. If the session is lost while
    /// waiting, this throws `sessionLost`.
    @discardableResult
    public func lock() async throws -> LockToken {
        let client = session.client
        guard session.isAlive else { throw StatehouseError(.sessionLost, "the session's lease is lost") }
        // Join the queue (or find our place in it, if this session already queued).
        let result: TxnResult
        do {
            result = try await client.txn()
                .when(.createRevision(key) == 0)
                .then(.put(key, [UInt8](), lease: session.lease), .get(.prefix(prefix), options: Self.firstCreated))
                .else(.get(key), .get(.prefix(prefix), options: Self.firstCreated))
                .commit()
        } catch {
            // The call may have been applied although it failed (it was cancelled or lost after
            // being sent): withdraw the key it may have queued, or it would be granted the lock
            // later with nobody knowing. Not when the lock is held (then the key is the holder's).
            let key = self.key
            client.cleanUp { client in
                guard self.token == nil else { return }
                _ = try await client.delete(.key(key))
            }
            throw error
        }
        let revision: Int64
        if result.succeeded {
            revision = result.header.revision
        } else {
            guard let existing = result.results.first?.get?.kvs.first else {
                throw StatehouseError(.sessionLost, "the lock key vanished while queueing")
            }
            revision = existing.createRevision
        }
        do {
            let owner = result.results.last?.get?.kvs.first
            if owner?.createRevision != revision {
                try await session.waitForPredecessors(under: prefix, below: revision)
            }
            // The session may have expired while we waited: the key must still be ours.
            guard let mine = try await client.get(key), mine.createRevision == revision else {
                throw StatehouseError(.sessionLost, "the session's lease expired while waiting for the lock")
            }
        } catch {
            let key = self.key
            client.cleanUp { client in
                _ = try await client.txn().when(.createRevision(key) == revision).then(.delete(key)).commit()
            }
            throw error
        }
        let token = LockToken(key: key, revision: revision)
        held.withLock { $0 = token }
        return token
    }

    /// Releases the lock (deletes this session's key). Does nothing if it is not held.
    public func unlock() async throws {
        guard let token = held.withLock({ $0 }) else { return }
        _ = try await session.client.txn()
            .when(.createRevision(token.key) == token.revision)
            .then(.delete(token.key))
            .commit()
        held.withLock { if $0 == token { $0 = nil } }
    }

    /// Takes the lock, runs `body` with the fencing token, and releases the lock afterwards
    /// (also when `body` throws or the task is cancelled).
    public func withLock<Result: Sendable>(_ body: (LockToken) async throws -> Result) async throws -> Result {
        let token = try await lock()
        do {
            let result = try await body(token)
            try await unlock()
            return result
        } catch {
            held.withLock { $0 = nil }
            let client = session.client
            client.cleanUp { client in
                _ = try await client.txn().when(.createRevision(token.key) == token.revision).then(.delete(token.key))
                    .commit()
            }
            throw error
        }
    }

    /// Writes `value` under `key` only while the lock is still held with the current token.
    ///
    /// - Throws: `notHeld` if the lock key is gone or was re-created (the session was lost).
    @discardableResult
    public func guardedPut(
        _ key: some BytesConvertible, _ value: some BytesConvertible, lease: LeaseID? = nil
    )
        async throws -> TxnResult
    {
        try await guardedTxn(Txn().then(.put(key, value, lease: lease)))
    }

    /// Runs `txn` only while the lock is still held with the current token: the transaction is
    /// nested in one whose guard is the lock key's create revision. Returns the nested
    /// transaction's result.
    ///
    /// - Throws: `notHeld` if the lock is not held (then nothing was written).
    public func guardedTxn(_ txn: Txn) async throws -> TxnResult {
        guard let token = token else { throw StatehouseError(.notHeld, "the lock is not held") }
        let result = try await session.client.txn()
            .when(.createRevision(token.key) == token.revision)
            .then(.txn(txn))
            .commit()
        guard result.succeeded, case .txn(let inner)? = result.results.first else {
            held.withLock { if $0 == token { $0 = nil } }
            throw StatehouseError(.notHeld, "the lock \(token.keyString) (token \(token.revision)) is no longer held")
        }
        return inner
    }

    static let firstCreated = GetOptions(limit: 1, sort: SortOrder(.createRevision, ascending: true))
}
