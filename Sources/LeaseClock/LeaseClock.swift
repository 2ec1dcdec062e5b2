import StateMachine

/// The leader-side lease expiry bookkeeping (etcd's "primary lessor"), as a deterministic value type.
///
/// The replicated lease table (ID, granted TTL, checkpointed remaining TTL, attached keys) lives in the MVCC
/// state machine. Expiry *timing* is not replicated: only the current leader tracks when each lease
/// expires, and proposes a revoke through Raft when one does. `LeaseClock` is that tracking. It has no clock
/// of its own: every time is a monotonic count of milliseconds passed in as `now`, which the caller derives
/// from Raft ticks. TTLs are in seconds.
///
/// ## Driving it
///
/// - On becoming leader, call ``promote(leases:now:extend:)`` with the lease table as of the applied index,
///   then feed it every later applied lease entry: ``granted(_:now:)``, ``revoked(id:)`` and
///   ``checkpointed(_:)``.
/// - On losing leadership, call ``demote()``. A follower holds no state and expires nothing; the applied
///   entries are then ignored.
/// - On a keep-alive, call ``renew(id:now:)``, then ``checkpointsDue(now:)``: if the lease carried a
///   replicated remaining TTL, that call returns a clearing checkpoint (remaining TTL 0), which should be
///   proposed, and for etcd parity applied, before the keep-alive is answered.
/// - On every tick, call ``expired(now:)`` and propose a revoke (fenced by the current term) for each
///   returned ID, and call ``checkpointsDue(now:)`` and propose the batch if it is not empty. Both return
///   at most one batch; call again while a full batch comes back.
///
/// ## Determinism and cost
///
/// Outputs never depend on `Dictionary` or `Set` iteration order: deadlines live in two binary heaps
/// ordered by (time, ID), a total order, and the pending clearing checkpoints are sorted before they are
/// returned. With n tracked leases: ``granted(_:now:)`` and ``renew(id:now:)`` are amortized O(log n);
/// ``revoked(id:)`` is amortized O(1) (heap entries are deleted lazily); ``expired(now:)`` and
/// ``checkpointsDue(now:)`` are O((k + s) log n) for a batch of k plus s stale entries skipped;
/// ``promote(leases:now:extend:)`` is O(n); ``remainingTTL(id:now:)`` is O(1). Stale heap entries (one per
/// renewal) are dropped when they reach the top, and the heaps are rebuilt in O(n) when they hold more than
/// twice the live leases.
///
/// ## Differences from etcd 3.4
///
/// - ``renew(id:now:)`` of a lease that has already expired returns `nil` at once, where etcd's lessor
///   blocks until the pending revoke is applied (then answers "not found", TTL 0).
/// - Every lease is checkpointed every ``Configuration/checkpointInterval``, where etcd only schedules leases
///   whose TTL exceeds the interval. A checkpoint whose remaining TTL would not be below the granted TTL is
///   skipped, as in etcd, but the lease stays scheduled (etcd drops it from the schedule).
/// - Checkpoints are always on (etcd 3.4 needs `--experimental-enable-lease-checkpoint`).
/// - ``promote(leases:now:extend:)`` does not spread piled-up expiries as etcd does for 1000 or more
///   leases; ``Configuration/maxRevokesPerBatch`` bounds the revoke rate instead.
public struct LeaseClock: Sendable {
    /// The tunables of a ``LeaseClock``.
    public struct Configuration: Hashable, Sendable {
        /// The minimum TTL in seconds; a lease's TTL below it is raised to it, as the store does on grant.
        ///
        /// etcd derives it from the election timeout: `ceil(1.5 × election timeout)`, 2 s by default.
        public var minTTL: Int64
        /// The time in milliseconds between two checkpoints of the same lease (etcd: 5 minutes).
        public var checkpointInterval: Int64
        /// The most checkpoints ``LeaseClock/checkpointsDue(now:)`` returns at once (etcd: 1000).
        public var maxCheckpointsPerBatch: Int
        /// The most IDs ``LeaseClock/expired(now:)`` returns at once (etcd: 500 every 500 ms).
        public var maxRevokesPerBatch: Int
        /// The time in milliseconds before an expired lease that was reported but not yet revoked is
        /// reported again, in case its revoke proposal was lost (etcd: 3 s).
        public var retryAfter: Int64

        /// Creates a configuration; the defaults are etcd 3.4's.
        ///
        /// Counts below 1 and intervals below 1 ms are raised to 1.
        public init(
            minTTL: Int64 = 2,
            checkpointInterval: Int64 = 300_000,
            maxCheckpointsPerBatch: Int = 1000,
            maxRevokesPerBatch: Int = 500,
            retryAfter: Int64 = 3000
        ) {
            self.minTTL = minTTL
            self.checkpointInterval = Swift.max(checkpointInterval, 1)
            self.maxCheckpointsPerBatch = Swift.max(maxCheckpointsPerBatch, 1)
            self.maxRevokesPerBatch = Swift.max(maxRevokesPerBatch, 1)
            self.retryAfter = Swift.max(retryAfter, 1)
        }
    }

    /// What the leader knows about one lease.
    private struct Tracked: Sendable {
        /// The granted TTL in seconds.
        var ttl: Int64
        /// The remaining TTL in seconds in the replicated table (0 = none).
        var replicatedRemainingTTL: Int64
        /// The time the lease expires.
        var expiry: Int64
        /// The time the lease is next reported by `expired(now:)`: its expiry, or a retry time.
        var nextReport: Int64
        /// The time of the next periodic checkpoint, or nil if none is scheduled.
        var nextCheckpoint: Int64?
        /// The event sequence number of the last renewal (0 = none since promotion or grant).
        var renewedAt: UInt64 = 0
        /// The event sequence number of the last checkpoint returned (0 = none).
        var checkpointedAt: UInt64 = 0
    }

    /// The configuration.
    public let configuration: Configuration

    /// Whether this clock is the primary (the leader's), which tracks and expires leases.
    public private(set) var isPrimary = false

    private var leases: [Int64: Tracked] = [:]
    private var expiryHeap = DeadlineHeap()
    private var checkpointHeap = DeadlineHeap()
    private var pendingClears: Set<Int64> = []
    private var sequence: UInt64 = 0

    /// Creates a clock in the follower state, tracking nothing.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// The number of leases tracked (0 on a follower).
    public var count: Int { leases.count }

    // MARK: - Leadership

    /// Becomes the primary and starts the clock of every lease in `leases`.
    ///
    /// Each lease expires at `now + (remainingTTL > 0 ? remainingTTL : ttl) × 1000 + extend`: from its
    /// checkpointed remaining TTL when there is one, so that repeated elections cannot keep a lease alive
    /// forever, plus `extend` (the election timeout), so that a new leader never expires a lease before the
    /// old one would have. Every lease's first checkpoint is due at `now + checkpointInterval`.
    ///
    /// Any earlier state is discarded. A lease listed twice keeps its last record.
    ///
    /// - Parameters:
    ///   - leases: The replicated lease table as of the applied index.
    ///   - now: The current time in milliseconds.
    ///   - extend: The extension in milliseconds; negative values count as 0.
    public mutating func promote(leases: [Lease], now: Int64, extend: Int64) {
        reset()
        isPrimary = true
        let extend = Swift.max(extend, 0)
        for lease in leases {
            let ttl = Swift.max(lease.ttl, configuration.minTTL)
            let seconds = lease.remainingTTL > 0 ? lease.remainingTTL : ttl
            let expiry = Self.add(Self.add(now, Self.milliseconds(seconds)), extend)
            self.leases[lease.id] = Tracked(
                ttl: ttl,
                replicatedRemainingTTL: Swift.max(lease.remainingTTL, 0),
                expiry: expiry,
                nextReport: expiry,
                nextCheckpoint: Self.add(now, configuration.checkpointInterval)
            )
        }
        rebuildHeaps()
    }

    /// Stops being the primary and forgets every expiry: followers never expire leases.
    public mutating func demote() {
        reset()
        isPrimary = false
    }

    // MARK: - Applied entries

    /// Records an applied grant. On the primary the lease expires at `now + ttl × 1000` and its first
    /// checkpoint is due at `now + checkpointInterval`; a follower ignores it.
    ///
    /// Granting an ID that is already tracked restarts its clock.
    public mutating func granted(_ lease: Lease, now: Int64) {
        guard isPrimary else { return }
        let ttl = Swift.max(lease.ttl, configuration.minTTL)
        let expiry = Self.add(now, Self.milliseconds(ttl))
        let nextCheckpoint = Self.add(now, configuration.checkpointInterval)
        leases[lease.id] = Tracked(
            ttl: ttl,
            replicatedRemainingTTL: Swift.max(lease.remainingTTL, 0),
            expiry: expiry,
            nextReport: expiry,
            nextCheckpoint: nextCheckpoint
        )
        pendingClears.remove(lease.id)
        expiryHeap.push(Deadline(time: expiry, id: lease.id))
        checkpointHeap.push(Deadline(time: nextCheckpoint, id: lease.id))
        compactIfNeeded()
    }

    /// Records an applied revoke (by a client or after expiry): the lease is forgotten and never reported
    /// again. Unknown IDs are ignored.
    public mutating func revoked(id: Int64) {
        guard leases.removeValue(forKey: id) != nil else { return }
        pendingClears.remove(id)
        compactIfNeeded()
    }

    /// Records applied checkpoints; unknown leases are ignored, as the store does.
    ///
    /// Expiry does not change: the primary's own expiry is at least as late as any checkpoint it returned.
    /// If a checkpoint with a remaining TTL above 0 turns out stale because the lease was renewed after
    /// the checkpoint was returned (the two crossed in flight), a clearing checkpoint is queued for
    /// ``checkpointsDue(now:)``, so a later leader does not restart the lease from the stale value.
    /// This relies on one leader's checkpoints being applied in the order they were returned, as Raft
    /// applies one leader's proposals in log order.
    public mutating func checkpointed(_ checkpoints: [LeaseCheckpoint]) {
        for checkpoint in checkpoints {
            guard var lease = leases[checkpoint.id] else { continue }
            lease.replicatedRemainingTTL = Swift.max(checkpoint.remainingTTL, 0)
            if lease.replicatedRemainingTTL > 0 && lease.renewedAt > lease.checkpointedAt {
                pendingClears.insert(checkpoint.id)
            }
            leases[checkpoint.id] = lease
        }
    }

    // MARK: - Client requests

    /// Renews a lease on a keep-alive: it now expires at `now + ttl × 1000`.
    ///
    /// As in etcd, renewing also clears the lease's replicated remaining TTL, so that a later leader starts
    /// it from its full TTL again. When there is one to clear, a clearing checkpoint (remaining TTL 0) is
    /// queued and returned first by the next ``checkpointsDue(now:)`` call, whatever the cadence; etcd
    /// proposes it and waits for it to apply before it answers the keep-alive. If that proposal is lost,
    /// answer the keep-alive with an error: the client's next keep-alive queues the clear again, because
    /// the clock still sees a replicated remaining TTL. See ``needsCheckpointClear(id:)``.
    ///
    /// - Returns: The granted TTL in seconds (the keep-alive response's TTL), or `nil` if this clock is not
    ///   the primary, the lease is unknown, or it has already expired (`expiry <= now`), since a revoke may
    ///   be on its way; etcd's keep-alive answers TTL 0 for those.
    public mutating func renew(id: Int64, now: Int64) -> Int64? {
        guard isPrimary, var lease = leases[id], lease.expiry > now else { return nil }
        lease.expiry = Self.add(now, Self.milliseconds(lease.ttl))
        lease.nextReport = lease.expiry
        sequence += 1
        lease.renewedAt = sequence
        if lease.replicatedRemainingTTL > 0 { pendingClears.insert(id) }
        if lease.nextCheckpoint == nil {
            let next = Self.add(now, configuration.checkpointInterval)
            lease.nextCheckpoint = next
            checkpointHeap.push(Deadline(time: next, id: id))
        }
        leases[id] = lease
        expiryHeap.push(Deadline(time: lease.expiry, id: id))
        compactIfNeeded()
        return lease.ttl
    }

    /// Whether a clearing checkpoint for the lease is queued and not yet returned by
    /// ``checkpointsDue(now:)``.
    public func needsCheckpointClear(id: Int64) -> Bool {
        pendingClears.contains(id)
    }

    /// The remaining TTL in seconds, for `LeaseTimeToLive`, rounded down as etcd does
    /// (`int64(lease.Remaining().Seconds())`): a lease with 9.999 s left reports 9, and a lease whose
    /// expiry has passed but which is not revoked yet reports 0.
    ///
    /// - Returns: The remaining TTL, or `nil` if this clock is not the primary or the lease is unknown
    ///   (`LeaseTimeToLive` then answers TTL -1, or a follower forwards the request to the leader).
    public func remainingTTL(id: Int64, now: Int64) -> Int64? {
        guard isPrimary, let lease = leases[id] else { return nil }
        let left = lease.expiry - now
        return left > 0 ? left / 1000 : 0
    }

    /// The time in milliseconds at which a lease expires, or `nil` if it is not tracked.
    public func expiry(id: Int64) -> Int64? {
        leases[id]?.expiry
    }

    // MARK: - Timers

    /// The leases whose expiry is at or before `now`, to revoke through Raft.
    ///
    /// The IDs come earliest due first, then by ID; a lease is due at its expiry, or, once reported,
    /// again `retryAfter` milliseconds after it was reported (in case the revoke was lost) until
    /// ``revoked(id:)`` or ``demote()`` is called. At most ``Configuration/maxRevokesPerBatch`` IDs come
    /// back; the rest stay due for the next call. A follower returns nothing.
    public mutating func expired(now: Int64) -> [Int64] {
        guard isPrimary else { return [] }
        var ids: [Int64] = []
        while ids.count < configuration.maxRevokesPerBatch, let top = expiryHeap.min, top.time <= now {
            expiryHeap.popMin()
            guard var lease = leases[top.id], lease.nextReport == top.time else { continue }  // Stale.
            ids.append(top.id)
            lease.nextReport = Self.add(now, configuration.retryAfter)
            leases[top.id] = lease
            expiryHeap.push(Deadline(time: lease.nextReport, id: top.id))
        }
        return ids
    }

    /// The checkpoints to propose now, at most ``Configuration/maxCheckpointsPerBatch``.
    ///
    /// First come the queued clearing checkpoints (remaining TTL 0) of renewed leases, in ID order, due
    /// whenever this is called. Then come the periodic checkpoints of leases whose checkpoint time has
    /// come, earliest due first, then by ID: each carries `ceil((expiry - now) / 1000)` seconds (rounded up,
    /// as etcd does, so a checkpoint never shortens a lease) and is skipped if that is not below the granted
    /// TTL. Each lease's next checkpoint is then due `checkpointInterval` milliseconds later. Leases that
    /// have expired are not checkpointed. A follower returns nothing.
    public mutating func checkpointsDue(now: Int64) -> [LeaseCheckpoint] {
        guard isPrimary else { return [] }
        let limit = configuration.maxCheckpointsPerBatch
        var result: [LeaseCheckpoint] = []
        var positions: [Int64: Int] = [:]
        for id in pendingClears.sorted() {
            guard result.count < limit else { break }
            pendingClears.remove(id)
            guard var lease = leases[id], lease.expiry > now else { continue }
            sequence += 1
            lease.checkpointedAt = sequence
            leases[id] = lease
            positions[id] = result.count
            result.append(LeaseCheckpoint(id: id, remainingTTL: 0))
        }
        while result.count < limit || !positions.isEmpty, let top = checkpointHeap.min, top.time <= now {
            guard var lease = leases[top.id], lease.nextCheckpoint == top.time else {
                checkpointHeap.popMin()  // Stale.
                continue
            }
            let position = positions[top.id]
            // A full batch may still take a checkpoint that replaces one of its own clearing entries.
            guard result.count < limit || position != nil else { break }
            checkpointHeap.popMin()
            guard lease.expiry > now else {
                lease.nextCheckpoint = nil  // Expired: it is being revoked; renew cannot revive it.
                leases[top.id] = lease
                continue
            }
            let next = Self.add(now, configuration.checkpointInterval)
            lease.nextCheckpoint = next
            checkpointHeap.push(Deadline(time: next, id: top.id))
            let left = lease.expiry - now
            let remaining = left / 1000 + (left % 1000 == 0 ? 0 : 1)
            if remaining < lease.ttl {
                sequence += 1
                lease.checkpointedAt = sequence
                let checkpoint = LeaseCheckpoint(id: top.id, remainingTTL: remaining)
                if let position {
                    result[position] = checkpoint
                } else {
                    result.append(checkpoint)
                }
            }
            leases[top.id] = lease
        }
        return result
    }

    // MARK: - Internals

    private mutating func reset() {
        leases.removeAll()
        expiryHeap.removeAll()
        checkpointHeap.removeAll()
        pendingClears.removeAll()
        sequence = 0
    }

    /// Rebuilds both heaps from the live leases, one entry per deadline. O(n).
    private mutating func rebuildHeaps() {
        var expiries: [Deadline] = []
        var checkpoints: [Deadline] = []
        expiries.reserveCapacity(leases.count)
        checkpoints.reserveCapacity(leases.count)
        for (id, lease) in leases {
            expiries.append(Deadline(time: lease.nextReport, id: id))
            if let next = lease.nextCheckpoint { checkpoints.append(Deadline(time: next, id: id)) }
        }
        // The heaps' pop order depends only on their contents, since (time, ID) is a total order.
        expiryHeap.rebuild(from: expiries)
        checkpointHeap.rebuild(from: checkpoints)
    }

    /// Drops stale heap entries once they outnumber the live leases.
    private mutating func compactIfNeeded() {
        let bound = 2 * leases.count + 1024
        if expiryHeap.count > bound || checkpointHeap.count > bound { rebuildHeaps() }
    }

    /// `seconds × 1000`, saturating so that absurd TTLs cannot trap.
    private static func milliseconds(_ seconds: Int64) -> Int64 {
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        return overflow ? (seconds < 0 ? Int64.min / 2 : Int64.max / 2) : product
    }

    /// `a + b`, saturating.
    private static func add(_ a: Int64, _ b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b < 0 ? Int64.min : Int64.max) : sum
    }
}
