/// The in-memory view of one member's log: a compacted prefix summarised by a snapshot, then the
/// entries after it. The shell keeps the durable copy; this view tracks how much of it is durable.
struct RaftLog: Sendable {
    /// The index of the last entry folded into the snapshot (0 when there is none).
    private(set) var snapshotIndex: LogIndex
    /// The term of the entry at `snapshotIndex`.
    private(set) var snapshotTerm: Term
    /// Entries `snapshotIndex + 1 ... lastIndex`, contiguous.
    private(set) var entries: [LogEntry]
    /// The highest index known committed.
    private(set) var committed: LogIndex
    /// The highest index handed to the shell for applying.
    var applied: LogIndex
    /// The highest index the shell has made durable (entries at or below it are on disk).
    private(set) var stableIndex: LogIndex

    init(snapshot: SnapshotMetadata?, entries: [LogEntry], committed: LogIndex, applied: LogIndex) {
        let base = snapshot?.index ?? 0
        precondition(
            entries.first.map { $0.index == base + 1 } ?? true,
            "log entries must start right after the snapshot (snapshot \(base), first \(entries.first!.index))")
        snapshotIndex = base
        snapshotTerm = snapshot?.term ?? 0
        self.entries = entries
        let last = base + UInt64(entries.count)
        self.committed = min(max(committed, snapshotIndex), last)
        self.applied = min(max(applied, snapshotIndex), self.committed)
        stableIndex = last
    }

    var firstIndex: LogIndex { snapshotIndex + 1 }
    var lastIndex: LogIndex { snapshotIndex + UInt64(entries.count) }
    var lastTerm: Term { entries.last?.term ?? snapshotTerm }

    /// The term of the entry at `index`, or nil when it is compacted away or past the end.
    func term(at index: LogIndex) -> Term? {
        if index == snapshotIndex { return snapshotTerm }
        guard index > snapshotIndex, index <= lastIndex else { return nil }
        return entries[Int(index - snapshotIndex - 1)].term
    }

    /// The entry at `index`, if it is held.
    func entry(at index: LogIndex) -> LogEntry? {
        guard index > snapshotIndex, index <= lastIndex else { return nil }
        return entries[Int(index - snapshotIndex - 1)]
    }

    func matchTerm(_ index: LogIndex, _ term: Term) -> Bool {
        self.term(at: index) == term
    }

    /// Whether a candidate whose log ends at (`index`, `term`) is at least as up to date (§5.4.1).
    func isUpToDate(index: LogIndex, term: Term) -> Bool {
        term > lastTerm || (term == lastTerm && index >= lastIndex)
    }

    /// Entries in `from ... through`, stopping after `maxBytes` (at least one entry is returned).
    func entries(from: LogIndex, through: LogIndex, maxBytes: Int) -> [LogEntry] {
        guard from > snapshotIndex, from <= through, through <= lastIndex else { return [] }
        var result: [LogEntry] = []
        var size = 0
        for index in from...through {
            let entry = entries[Int(index - snapshotIndex - 1)]
            size += entry.byteSize
            if !result.isEmpty && size > maxBytes { break }
            result.append(entry)
        }
        return result
    }

    /// Entries not yet durable, which the next ``Ready`` asks the shell to write.
    var unstableEntries: ArraySlice<LogEntry> {
        entries[Int(stableIndex - snapshotIndex)...]
    }

    /// Appends entries created by this member as leader.
    mutating func append(_ newEntries: [LogEntry]) {
        precondition(newEntries.first.map { $0.index == lastIndex + 1 } ?? true, "leader append must extend the log")
        entries.append(contentsOf: newEntries)
    }

    /// Appends entries from a leader after the entry at (`prevIndex`, `prevTerm`), truncating only
    /// on a real term conflict (a stale or reordered message never removes matching entries).
    /// Returns the index of the last entry the message vouches for, or nil if the log does not
    /// contain the previous entry.
    /// With `truncatingSuffix` (a deliberate bug, ``RaftMutation/truncateOnStaleAppend``),
    /// entries after the message's last one are dropped even when nothing conflicts.
    mutating func maybeAppend(
        prevIndex: LogIndex, prevTerm: Term, leaderCommit: LogIndex, entries newEntries: [LogEntry],
        truncatingSuffix: Bool = false
    ) -> LogIndex? {
        guard matchTerm(prevIndex, prevTerm) else { return nil }
        let lastNew = prevIndex + UInt64(newEntries.count)
        var conflicted = false
        for (offset, entry) in newEntries.enumerated() where !matchTerm(entry.index, entry.term) {
            precondition(
                entry.index > committed,
                "entry \(entry.index) conflicts with a committed entry (committed \(committed))")
            truncate(after: entry.index - 1)
            entries.append(contentsOf: newEntries[offset...])
            conflicted = true
            break
        }
        if truncatingSuffix && !conflicted && lastNew < lastIndex && lastNew >= committed { truncate(after: lastNew) }
        commit(to: min(leaderCommit, lastNew))
        return lastNew
    }

    private mutating func truncate(after index: LogIndex) {
        entries.removeLast(Int(lastIndex - index))
        stableIndex = min(stableIndex, index)
    }

    /// Raises the commit index (never lowers it).
    mutating func commit(to index: LogIndex) {
        guard index > committed else { return }
        precondition(index <= lastIndex, "commit \(index) is beyond the last index \(lastIndex)")
        committed = index
    }

    /// Records that entries through `index` with `term` are durable.
    mutating func stable(to index: LogIndex, term: Term) {
        if matchTerm(index, term), index > stableIndex { stableIndex = index }
    }

    /// Replaces the log with a received snapshot's position.
    mutating func restore(_ metadata: SnapshotMetadata) {
        snapshotIndex = metadata.index
        snapshotTerm = metadata.term
        entries = []
        committed = metadata.index
        applied = metadata.index
        stableIndex = metadata.index
    }

    /// Drops entries through `index`, which a snapshot now covers.
    mutating func compact(through index: LogIndex) {
        guard index > snapshotIndex else { return }
        precondition(index <= applied, "cannot compact past the applied index (\(index) > \(applied))")
        let term = self.term(at: index)!
        entries.removeFirst(Int(index - snapshotIndex))
        snapshotIndex = index
        snapshotTerm = term
    }

    /// Finds where a leader should retry after a rejection: the last index at or below `index`
    /// whose term is at most `term` (etcd-io/raft's fast back-off).
    func conflictHint(index: LogIndex, term: Term) -> (index: LogIndex, term: Term) {
        var candidate = min(index, lastIndex)
        while candidate > snapshotIndex, let t = self.term(at: candidate), t > term {
            candidate -= 1
        }
        return (candidate, self.term(at: candidate) ?? 0)
    }
}
