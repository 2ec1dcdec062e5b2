/// How the leader compacts the key space's history on its own (etcd's `--auto-compaction-mode`
/// and `--auto-compaction-retention`).
public enum AutoCompaction: Sendable, Hashable {
    /// Keep the history of the last `retentionMilliseconds`: revisions are sampled every tenth of
    /// the compaction interval (the retention, at most one hour), and once a full retention has
    /// passed the leader compacts to the revision sampled a retention ago, then again every
    /// interval.
    case periodic(retentionMilliseconds: Int64)
    /// Keep the last `retainedRevisions` revisions: every five minutes the leader compacts to the
    /// current revision minus the retention.
    case revision(retainedRevisions: Int64)

    /// How often revision mode checks, as etcd's: five minutes.
    public static let revisionCheckMilliseconds: Int64 = 300_000
    /// The longest interval between periodic compactions, as etcd's: one hour.
    public static let longestPeriodicIntervalMilliseconds: Int64 = 3_600_000
}

/// The leader's auto-compaction schedule, in the member's logical milliseconds.
///
/// Every member keeps it (a follower keeps sampling revisions, as etcd's paused compactor does),
/// but only the leader proposes. A proposal is a `Compact` request through the log, like a
/// client's; it counts as done once the applied compaction revision reaches it, and is proposed
/// again after a retry interval if it never is (a lost proposal or a leader change).
struct AutoCompactor: Sendable {
    let policy: AutoCompaction
    /// Periodic mode: revisions sampled every retry interval, oldest first, at most one
    /// retention's worth; the first is the revision a retention ago.
    private(set) var samples: [Int64] = []
    private var nextSample: Int64 = 0
    /// When the last compaction completed (or the schedule started).
    private var lastSuccess: Int64
    /// How long after `lastSuccess` the next compaction is due: a whole retention at first.
    private var interval: Int64
    /// Revision mode: when the next check is due, and the last revision compacted to.
    private var nextCheck: Int64
    private var lastCompacted: Int64 = 0
    /// The proposal in flight and when to give up waiting for it.
    private var pending: (revision: Int64, deadline: Int64)?

    init(policy: AutoCompaction, now: Int64) {
        self.policy = policy
        lastSuccess = now
        switch policy {
        case .periodic(let retention): interval = retention
        case .revision: interval = AutoCompaction.revisionCheckMilliseconds
        }
        nextCheck = now + AutoCompaction.revisionCheckMilliseconds
    }

    /// How often periodic mode samples revisions and retries: a tenth of the compaction interval.
    var retryInterval: Int64 {
        switch policy {
        case .periodic(let retention): max(min(retention, AutoCompaction.longestPeriodicIntervalMilliseconds) / 10, 1)
        case .revision: AutoCompaction.revisionCheckMilliseconds
        }
    }

    /// How many samples cover one retention.
    private var sampleLimit: Int {
        guard case .periodic(let retention) = policy else { return 0 }
        return Int(retention / retryInterval) + 1
    }

    /// Advances the schedule to `now` (logical milliseconds). Returns the revision to compact to
    /// when the leader should propose a compaction now.
    ///
    /// - Parameters:
    ///   - revision: The current revision.
    ///   - compacted: The applied compaction revision.
    ///   - isLeader: Whether this member leads (only a leader proposes).
    mutating func advance(now: Int64, revision: Int64, compacted: Int64, isLeader: Bool) -> Int64? {
        if let pending {
            if compacted >= pending.revision {
                self.pending = nil
                completed(now: now, revision: pending.revision)
            } else if now >= pending.deadline || !isLeader {
                self.pending = nil
            } else {
                return nil
            }
        }
        switch policy {
        case .periodic:
            if now >= nextSample {
                samples.append(revision)
                if samples.count > sampleLimit { samples.removeFirst(samples.count - sampleLimit) }
                nextSample = now + retryInterval
            }
            guard isLeader, now - lastSuccess >= interval, let target = samples.first else { return nil }
            return propose(target, compacted: compacted, now: now)
        case .revision(let retained):
            guard now >= nextCheck else { return nil }
            nextCheck = now + AutoCompaction.revisionCheckMilliseconds
            let target = revision - retained
            guard isLeader, target > 0, target != lastCompacted else { return nil }
            return propose(target, compacted: compacted, now: now)
        }
    }

    private mutating func propose(_ target: Int64, compacted: Int64, now: Int64) -> Int64? {
        // Already compacted that far (by a client or an earlier leader): etcd counts
        // `ErrCompacted` as success.
        guard target > compacted else {
            completed(now: now, revision: target)
            return nil
        }
        pending = (target, now + retryInterval)
        return target
    }

    private mutating func completed(now: Int64, revision: Int64) {
        lastSuccess = now
        lastCompacted = revision
        if case .periodic(let retention) = policy {
            interval = min(retention, AutoCompaction.longestPeriodicIntervalMilliseconds)
        }
    }
}
