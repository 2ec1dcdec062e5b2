/// What a leader knows about one follower's log, and how it paces replication to it.
///
/// A follower is in one of three states (as in etcd-io/raft's design):
/// - probe: the leader does not know where the logs match; it sends one append per heartbeat
///   until one is accepted;
/// - replicate: the leader streams appends optimistically, up to `maxInflightMessages` unacknowledged;
/// - snapshot: the follower needs a snapshot; appends pause while chunks are streamed.
struct Progress: Sendable {
    enum State: Sendable { case probe, replicate, snapshot }

    /// The highest index known to match the leader's log.
    var match: LogIndex = 0
    /// The next index to send.
    var next: LogIndex
    var state: State = .probe
    /// In the probe state: an append was sent and no answer has come since the last heartbeat.
    var probeSent = false
    /// Last index of each append in flight, ascending.
    var inflights: [LogIndex] = []
    /// Whether the follower was heard from during the current check-quorum window.
    var recentActive = false
    var isLearner: Bool

    /// In the snapshot state: the index of the snapshot being sent.
    var pendingSnapshot: LogIndex = 0
    /// In the snapshot state: the snapshot being sent. A transfer finishes with the snapshot it
    /// started with, even if the leader takes newer ones meanwhile (restarting would never finish
    /// a large snapshot under steady writes).
    var snapshotInTransfer: Snapshot?
    /// Bytes of the pending snapshot the follower has confirmed.
    var snapshotAcked: UInt64 = 0
    /// Bytes of the pending snapshot sent so far.
    var snapshotSent: UInt64 = 0

    init(next: LogIndex, isLearner: Bool) {
        self.next = next
        self.isLearner = isLearner
    }

    /// Whether the leader must wait before sending more appends.
    func isPaused(maxInflight: Int) -> Bool {
        switch state {
        case .probe: probeSent
        case .replicate: inflights.count >= maxInflight
        case .snapshot: true
        }
    }

    mutating func becomeProbe() {
        if state == .snapshot {
            next = max(match + 1, pendingSnapshot + 1)
        } else {
            next = match + 1
        }
        state = .probe
        probeSent = false
        inflights.removeAll()
        pendingSnapshot = 0
        snapshotInTransfer = nil
    }

    mutating func becomeReplicate() {
        state = .replicate
        next = match + 1
        probeSent = false
        inflights.removeAll()
        pendingSnapshot = 0
        snapshotInTransfer = nil
    }

    mutating func becomeSnapshot(_ snapshot: Snapshot) {
        state = .snapshot
        pendingSnapshot = snapshot.metadata.index
        snapshotInTransfer = snapshot
        snapshotAcked = 0
        snapshotSent = 0
        probeSent = false
        inflights.removeAll()
    }

    /// Records an acknowledgement of entries through `index`; returns whether it was new.
    /// With `evenBackwards` (a deliberate bug, ``RaftMutation/matchMovesBackwards``), an older
    /// acknowledgement lowers `match` and `next` too.
    mutating func maybeUpdate(_ index: LogIndex, evenBackwards: Bool = false) -> Bool {
        if evenBackwards && index < match {
            match = index
            next = index + 1
            return true
        }
        var updated = false
        if match < index {
            match = index
            updated = true
            probeSent = false
        }
        next = max(next, index + 1)
        if let firstKept = inflights.firstIndex(where: { $0 > index }) {
            inflights.removeFirst(firstKept)
        } else {
            inflights.removeAll()
        }
        return updated
    }

    /// Handles a rejected append of (`rejected`); moves `next` back to `hint + 1`.
    /// Returns false if the rejection is stale.
    mutating func maybeDecrease(rejected: LogIndex, hint: LogIndex) -> Bool {
        if state == .replicate {
            // Anything at or below match was already accepted: the rejection is stale.
            guard rejected > match else { return false }
            next = match + 1
            return true
        }
        // In probe, only the answer to the most recent probe (index next - 1) counts.
        guard next - 1 == rejected else { return false }
        next = max(min(rejected, hint + 1), match + 1)
        probeSent = false
        return true
    }
}
