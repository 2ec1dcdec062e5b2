// Server-side logic of etcd's `v3lockpb.Lock` and `v3electionpb.Election` services.
//
// In etcd these services are thin wrappers that run the client `concurrency` package (Mutex and
// Election) against the local server. Here the same key protocol runs over ``RecipeBackend``,
// which the server implements on top of its member; tests use an in-memory store.

public import StateMachine

/// The operations the lock and election recipes need from the store.
///
/// Every operation must be linearizable: the recipes decide ownership from what they read, so a
/// stale read could hand a lock to two callers. Errors thrown by the backend propagate unchanged
/// to the recipe's caller. A backend call made from a cancelled task may throw
/// `CancellationError`.
public protocol RecipeBackend: Sendable {
    /// Applies a transaction through the replicated log.
    func txn(_ request: TxnRequest) async throws -> TxnResponse

    /// Reads linearizably (through the log or a confirmed read index).
    func range(_ request: RangeRequest) async throws -> RangeResponse

    /// Returns once `key` has been deleted at a revision greater than `revision`, or at once if
    /// it does not exist now.
    ///
    /// A deletion followed by a re-creation still counts as a deletion. When the calling task is
    /// cancelled, the method throws `CancellationError` promptly.
    func waitForDeletion(of key: [UInt8], after revision: Int64) async throws

    /// Returns the remaining TTL of a lease in whole seconds (rounded down, as etcd's
    /// `LeaseTimeToLive` reports it), or `nil` when the lease does not exist.
    func leaseRemaining(_ id: Int64) async throws -> Int64?

    /// Streams the changes to keys starting with `prefix`, from `revision` (inclusive) on, until
    /// the consuming task is cancelled or the stream is dropped.
    ///
    /// Each element holds the events of one or more whole revisions, in revision order: a
    /// revision's events are never split across elements. This lets observers judge the store
    /// only between revisions, as etcd's watch responses allow.
    func watch(prefix: [UInt8], from revision: Int64) -> AsyncThrowingStream<[Event], any Error>
}
