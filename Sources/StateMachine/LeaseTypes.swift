// Replicated lease messages. Expiry timing is decided by the leader outside this module;
// this module holds the lease table, attachments and checkpointed remaining TTLs.

/// A replicated lease record.
public struct Lease: Hashable, Sendable {
    /// The lease ID (never 0).
    public var id: Int64
    /// The granted TTL in seconds (after raising to the minimum TTL).
    public var ttl: Int64
    /// The last checkpointed remaining TTL in seconds, or 0 if none was checkpointed.
    public var remainingTTL: Int64

    /// Creates a lease record.
    public init(id: Int64, ttl: Int64, remainingTTL: Int64 = 0) {
        self.id = id
        self.ttl = ttl
        self.remainingTTL = remainingTTL
    }
}

/// A request to create a lease, mirroring `LeaseGrantRequest`.
public struct LeaseGrantRequest: Hashable, Sendable {
    /// The requested TTL in seconds; raised to the configured minimum.
    public var ttl: Int64
    /// The requested ID, or 0 to let the store choose one deterministically.
    public var id: Int64

    /// Creates a lease grant request.
    public init(ttl: Int64, id: Int64 = 0) {
        self.ttl = ttl
        self.id = id
    }
}

/// The answer to a ``LeaseGrantRequest``, mirroring `LeaseGrantResponse`.
public struct LeaseGrantResponse: Hashable, Sendable {
    /// The store revision (`header.revision`).
    public var revision: Int64
    /// The lease ID.
    public var id: Int64
    /// The granted TTL in seconds.
    public var ttl: Int64

    /// Creates a lease grant response.
    public init(revision: Int64, id: Int64, ttl: Int64) {
        self.revision = revision
        self.id = id
        self.ttl = ttl
    }
}

/// A request to revoke a lease and delete its keys, mirroring `LeaseRevokeRequest`.
public struct LeaseRevokeRequest: Hashable, Sendable {
    /// The lease ID.
    public var id: Int64

    /// Creates a lease revoke request.
    public init(id: Int64) {
        self.id = id
    }
}

/// The answer to a ``LeaseRevokeRequest``, mirroring `LeaseRevokeResponse`.
public struct LeaseRevokeResponse: Hashable, Sendable {
    /// The store revision after the attached keys were deleted (`header.revision`).
    public var revision: Int64

    /// Creates a lease revoke response.
    public init(revision: Int64) {
        self.revision = revision
    }
}

/// One remaining-TTL checkpoint, mirroring `LeaseCheckpoint`.
public struct LeaseCheckpoint: Hashable, Sendable {
    /// The lease ID.
    public var id: Int64
    /// The remaining TTL in seconds; 0 clears the checkpoint (as after a keep-alive).
    public var remainingTTL: Int64

    /// Creates a checkpoint.
    public init(id: Int64, remainingTTL: Int64) {
        self.id = id
        self.remainingTTL = remainingTTL
    }
}

/// A batch of checkpoints, mirroring `LeaseCheckpointRequest`. Unknown leases are ignored.
public struct LeaseCheckpointRequest: Hashable, Sendable {
    /// The checkpoints.
    public var checkpoints: [LeaseCheckpoint]

    /// Creates a checkpoint request.
    public init(checkpoints: [LeaseCheckpoint]) {
        self.checkpoints = checkpoints
    }
}

/// The answer to a ``LeaseCheckpointRequest``.
public struct LeaseCheckpointResponse: Hashable, Sendable {
    /// The store revision (`header.revision`).
    public var revision: Int64

    /// Creates a checkpoint response.
    public init(revision: Int64) {
        self.revision = revision
    }
}
