import Primitives

extension StateStore {
    /// Creates a lease, as etcd's lessor `Grant`. Does not change the revision.
    ///
    /// A requested ID of 0 gets a deterministic, non-zero, positive ID from a replicated sequence.
    /// A TTL below ``Configuration/minLeaseTTL`` is raised to it.
    ///
    /// - Throws: ``StateError/leaseTTLTooLarge``, ``StateError/leaseExists``.
    public mutating func grantLease(_ request: LeaseGrantRequest) throws(StateError) -> Applied<LeaseGrantResponse> {
        if request.ttl > configuration.maxLeaseTTL { throw .leaseTTLTooLarge }
        var mutations: [BackendMutation] = []
        var id = request.id
        if id == 0 {
            id = nextLeaseID()
            mutations.append(
                .put(
                    key: BackendLayout.leaseSequenceKey,
                    value: BackendLayout.encodeInt(Int64(bitPattern: leaseIDSequence))
                )
            )
        } else if leaseTable[id] != nil {
            throw .leaseExists
        }
        let lease = Lease(id: id, ttl: Swift.max(request.ttl, configuration.minLeaseTTL))
        leaseTable[id] = lease
        mutations.append(.put(key: BackendLayout.leaseKey(id), value: BackendLayout.encode(lease: lease)))
        return Applied(
            response: LeaseGrantResponse(revision: currentRevision, id: id, ttl: lease.ttl),
            mutations: mutations
        )
    }

    /// Advances the ID sequence to the next unused ID (a SplitMix64 mix, masked to 63 bits).
    private mutating func nextLeaseID() -> Int64 {
        while true {
            leaseIDSequence &+= 1
            let z = SeededGenerator.mix(leaseIDSequence &* SeededGenerator.increment)
            let id = Int64(bitPattern: z & 0x7FFF_FFFF_FFFF_FFFF)
            if id != 0 && leaseTable[id] == nil { return id }
        }
    }

    /// Revokes a lease: deletes every attached key in one revision (in key order) and removes the
    /// lease, and the client session it carried. Used both for `LeaseRevoke` and for expiry decided by the leader.
    ///
    /// - Throws: ``StateError/leaseNotFound``.
    public mutating func revokeLease(_ request: LeaseRevokeRequest) throws(StateError) -> Applied<LeaseRevokeResponse> {
        guard leaseTable[request.id] != nil else { throw .leaseNotFound }
        var batch = WriteBatch(beginRevision: currentRevision)
        for key in keys(attachedTo: request.id) {
            _ = writeDelete(key: key, in: &batch)
        }
        leaseTable[request.id] = nil
        leaseKeys[request.id] = nil
        batch.mutations.append(.delete(key: BackendLayout.leaseKey(request.id)))
        batch.mutations.append(contentsOf: endSession(request.id))
        finish(&batch)
        return Applied(
            response: LeaseRevokeResponse(revision: currentRevision),
            mutations: batch.mutations,
            events: batch.events
        )
    }

    /// Records remaining TTLs checkpointed by the leader; unknown leases are ignored.
    public mutating func checkpointLeases(_ request: LeaseCheckpointRequest) -> Applied<LeaseCheckpointResponse> {
        var mutations: [BackendMutation] = []
        for checkpoint in request.checkpoints {
            guard var lease = leaseTable[checkpoint.id] else { continue }
            lease.remainingTTL = checkpoint.remainingTTL
            leaseTable[checkpoint.id] = lease
            mutations.append(.put(key: BackendLayout.leaseKey(lease.id), value: BackendLayout.encode(lease: lease)))
        }
        return Applied(response: LeaseCheckpointResponse(revision: currentRevision), mutations: mutations)
    }
}
