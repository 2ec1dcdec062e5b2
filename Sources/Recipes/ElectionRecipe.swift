import Primitives
public import StateMachine

/// The key that identifies a leader: etcd's `v3electionpb.LeaderKey`.
public struct LeaderKey: Hashable, Sendable {
    /// The election's name; candidate keys live under `name/`.
    public var name: [UInt8]
    /// The leader's key, `name/<lease hex>`.
    public var key: [UInt8]
    /// The create revision of ``key`` (etcd's `rev`): the fencing token of this term of
    /// leadership. Guard writes made as leader with a compare on the key's create revision.
    public var createRevision: Int64
    /// The lease the key is attached to.
    public var lease: Int64

    /// Creates a leader key.
    public init(name: [UInt8], key: [UInt8], createRevision: Int64, lease: Int64) {
        self.name = name
        self.key = key
        self.createRevision = createRevision
        self.lease = lease
    }
}

/// A won campaign: the answer to etcd's `Campaign` call.
public struct Leadership: Hashable, Sendable {
    /// The key that identifies this leadership; pass it to Proclaim and Resign.
    public var leader: LeaderKey
    /// The store revision at which leadership was confirmed (the response header's revision).
    public var revision: Int64

    /// Creates a won campaign.
    public init(leader: LeaderKey, revision: Int64) {
        self.leader = leader
        self.revision = revision
    }
}

/// The leader of an election as seen at one store revision: the answer to etcd's `Leader` call and
/// each message of its `Observe` stream.
public struct LeaderObservation: Hashable, Sendable {
    /// The store revision at which this leader was seen (the response header's revision).
    public var revision: Int64
    /// The leader's key/value: its key, create revision (the fencing token) and proclaimed value.
    public var kv: KeyValue

    /// Creates an observation.
    public init(revision: Int64, kv: KeyValue) {
        self.revision = revision
        self.kv = kv
    }
}

/// The logic of etcd's `v3electionpb.Election` service over ``RecipeBackend``.
///
/// The key protocol is etcd's (`concurrency.Election`): a candidate's key is
/// `name/<lease ID in lowercase hex>` holding its proclaimed value, and the candidate whose key
/// has the lowest create revision under `name/` leads. Campaigns queue exactly like
/// ``LockRecipe/lock(name:lease:)``, including the check after waiting that etcd 3.4 lacks.
public struct ElectionRecipe<Backend: RecipeBackend>: Sendable {
    /// The store the recipe runs against.
    public let backend: Backend

    /// Creates the recipe over a backend.
    public init(backend: Backend) {
        self.backend = backend
    }

    /// Campaigns for leadership of `name` with `lease`, waiting until elected (etcd's `Campaign`).
    ///
    /// The candidate's key is created with `value`. Campaigning again with a lease that already
    /// has a key re-enters with that key (and its create revision); if the key holds another
    /// value, `value` is proclaimed first.
    ///
    /// If the calling task is cancelled, the call stops waiting, deletes its key if it created
    /// it, and throws `CancellationError`.
    ///
    /// - Throws: `StateError.leaseNotFound` if the lease does not exist (or expires while waiting),
    ///   ``RecipeError/sessionExpired`` if the candidate's key is deleted while it waits,
    ///   ``RecipeError/notLeader`` if a re-entry's proclamation finds the key replaced,
    ///   `CancellationError`, or any backend error.
    public func campaign(name: [UInt8], lease: Int64, value: [UInt8]) async throws -> Leadership {
        let place = try await Queue(backend: backend, prefix: queuePrefix(name))
            .join(lease: lease, value: value, proclaimsValue: true)
        return Leadership(
            leader: LeaderKey(name: name, key: place.key, createRevision: place.createRevision, lease: lease),
            revision: place.revision
        )
    }

    /// Replaces the leader's value, if `leader` still identifies the leader key (etcd's `Proclaim`).
    ///
    /// The write is a transaction that puts the value (attached to `leader.lease`) only while the
    /// key has `leader.createRevision`.
    ///
    /// - Returns: The store revision after the write.
    /// - Throws: ``RecipeError/notLeader`` if the key was deleted or re-created, or a backend error.
    public func proclaim(_ leader: LeaderKey, value: [UInt8]) async throws -> Int64 {
        try await Queue(backend: backend, prefix: queuePrefix(leader.name))
            .proclaim(key: leader.key, createRevision: leader.createRevision, lease: leader.lease, value: value)
    }

    /// Returns the current leader: the key created first under `name/` (etcd's `Leader`).
    ///
    /// - Throws: ``RecipeError/noLeader`` if the election has no candidate, or a backend error.
    public func leader(name: [UInt8]) async throws -> LeaderObservation {
        let response = try await backend.range(firstCreated(under: queuePrefix(name)))
        guard let kv = response.kvs.first else { throw RecipeError.noLeader }
        return LeaderObservation(revision: response.revision, kv: kv)
    }

    /// Gives up leadership by deleting the leader key, if `leader` still identifies it
    /// (etcd's `Resign`). Resigning a key that was already deleted or replaced succeeds and
    /// changes nothing, as in etcd.
    ///
    /// - Returns: The store revision after the transaction.
    public func resign(_ leader: LeaderKey) async throws -> Int64 {
        try await Queue(backend: backend, prefix: queuePrefix(leader.name))
            .delete(key: leader.key, ifCreatedAt: leader.createRevision)
    }

    /// Streams the leaders of `name` (etcd's `Observe`).
    ///
    /// The first element is the current leader, if any; then one element follows for every
    /// revision after which the leader differs: another key leads, or the leader's key/value
    /// changed (a proclamation, even of the same value). While the election has no candidate,
    /// nothing is sent. Changes within one revision are judged together, so a transaction that
    /// replaces the leader yields only the final leader.
    ///
    /// The stream ends when the consumer stops iterating (the client cancelled the call) or the
    /// backend's watch ends, and throws the backend's error if its read or watch fails.
    public func observe(name: [UInt8]) -> AsyncThrowingStream<LeaderObservation, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: LeaderObservation.self)
        let backend = self.backend
        let prefix = queuePrefix(name)
        let task = Task {
            do {
                try await Self.reportLeaders(under: prefix, backend: backend, to: continuation)
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// Reads every candidate, then follows the candidates through a watch, yielding each new leader.
    private static func reportLeaders(
        under prefix: [UInt8],
        backend: Backend,
        to continuation: AsyncThrowingStream<LeaderObservation, any Error>.Continuation
    ) async throws {
        let initial = try await backend.range(RangeRequest(key: prefix, rangeEnd: prefixEnd(prefix)))
        var candidates = Candidates(initial.kvs)
        var reported: KeyValue? = nil

        func report(at revision: Int64) {
            let leader = candidates.leader
            if let leader, leader != reported {
                continuation.yield(LeaderObservation(revision: revision, kv: leader))
            }
            reported = leader
        }

        report(at: initial.revision)
        for try await events in backend.watch(prefix: prefix, from: initial.revision + 1) {
            var i = events.startIndex
            while i < events.endIndex {
                // A delete event's kv carries the deletion revision as its mod revision.
                let revision = events[i].kv.modRevision
                while i < events.endIndex && events[i].kv.modRevision == revision {
                    candidates.apply(events[i])
                    i += 1
                }
                report(at: revision)
            }
        }
    }
}

/// The candidates of an election, by key.
private struct Candidates {
    private var byKey: [[UInt8]: KeyValue] = [:]

    init(_ kvs: [KeyValue]) {
        for kv in kvs { byKey[kv.key] = kv }
    }

    mutating func apply(_ event: Event) {
        switch event.kind {
        case .put: byKey[event.kv.key] = event.kv
        case .delete: byKey[event.kv.key] = nil
        }
    }

    /// The candidate with the lowest create revision (ties, within one transaction, by key).
    var leader: KeyValue? {
        byKey.values.min { a, b in
            a.createRevision != b.createRevision
                ? a.createRevision < b.createRevision : a.key.lexicographicallyPrecedes(b.key)
        }
    }
}
