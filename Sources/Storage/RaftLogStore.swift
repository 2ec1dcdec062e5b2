import Primitives
public import RaftCore

/// The durable Raft log of one member — entries, hard state and snapshot — kept in a
/// ``StorageEngine`` under keys beginning with `r/`.
///
/// Key layout (every other prefix belongs to someone else and is never touched here; the state
/// machine uses `k/`, `l/`, `m/`, the applied index `a/`):
///
/// | key                                   | value                                        |
/// |---------------------------------------|----------------------------------------------|
/// | `r/e/` + 8-byte big-endian index      | ``LogEntry`` (``LogEntry/encode(into:)``)    |
/// | `r/h`                                 | ``HardState`` (``HardState/encoded()``)      |
/// | `r/s`                                 | ``SnapshotMetadata`` then length-prefixed data |
///
/// Big-endian indexes make bytewise key order equal index order, so entries are scanned in log
/// order and range deletions cover index ranges.
///
/// Writes are prepared as an ``Update`` (a ``StorageBatch`` plus the log bounds it leads to),
/// so a caller can add its own operations to the same atomic batch, and then written with
/// ``write(_:sync:)`` (or written by the caller and reported with ``didWrite(_:)``). Use the
/// store from one isolation domain, one update at a time: prepare, write, then prepare the next.
public final class RaftLogStore {
    /// The keys the store uses.
    public enum Keys {
        /// The prefix of every key the store uses.
        public static let prefix: [UInt8] = Array("r/".utf8)
        /// The prefix of entry keys.
        public static let entryPrefix: [UInt8] = Array("r/e/".utf8)
        /// The key after every entry key (`r/e0`).
        public static let entryPrefixEnd: [UInt8] = keyAfterPrefix(entryPrefix)!
        /// The hard state's key.
        public static let hardState: [UInt8] = Array("r/h".utf8)
        /// The snapshot's key.
        public static let snapshot: [UInt8] = Array("r/s".utf8)

        /// The key of the entry at `index`: `r/e/` followed by the index, 8 bytes big-endian.
        public static func entry(_ index: LogIndex) -> [UInt8] {
            var key = entryPrefix
            key.reserveCapacity(entryPrefix.count + 8)
            for shift in stride(from: 56, through: 0, by: -8) { key.append(UInt8(truncatingIfNeeded: index >> UInt64(shift))) }
            return key
        }

        /// The index an entry key names, or `nil` if `key` is not a well-formed entry key.
        public static func index(fromEntryKey key: [UInt8]) -> LogIndex? {
            guard key.count == entryPrefix.count + 8, key.starts(with: entryPrefix) else { return nil }
            var index: LogIndex = 0
            for byte in key[entryPrefix.count...] { index = index << 8 | LogIndex(byte) }
            return index
        }

        /// The first key after every entry at or below `index`.
        static func entryEnd(after index: LogIndex) -> [UInt8] {
            index == .max ? entryPrefixEnd : entry(index + 1)
        }
    }

    /// The log bounds the store caches so that they are cheap to query.
    public struct Bounds: Sendable, Hashable {
        /// The metadata of the stored snapshot, if any.
        public var snapshot: SnapshotMetadata?
        /// The indexes of the first and last stored entries, or `nil` when no entry is stored.
        /// Entries at or below the snapshot's index may be stored (retained for lagging
        /// followers until compacted); they are ignored by ``RaftLogStore/load(appliedIndex:)``.
        public var storedEntries: ClosedRange<LogIndex>?

        /// Creates bounds.
        public init(snapshot: SnapshotMetadata? = nil, storedEntries: ClosedRange<LogIndex>? = nil) {
            self.snapshot = snapshot
            self.storedEntries = storedEntries
        }
    }

    /// A prepared write: the batch to write atomically and the bounds the log has afterwards.
    ///
    /// Add the state machine's own operations (under other prefixes) to ``batch`` to have them
    /// written in the same atomic batch.
    public struct Update: Sendable {
        /// The operations to write, in order.
        public var batch: StorageBatch
        /// The bounds of the log once `batch` is written.
        public let bounds: Bounds
    }

    /// The engine the log lives in.
    public let engine: any StorageEngine
    /// The cached bounds of the stored log.
    public private(set) var bounds: Bounds

    /// Opens the log stored in `engine`, reading its bounds (one `get` and two one-record scans).
    ///
    /// - Throws: ``StorageError`` if the engine fails or the snapshot record or the first or
    ///   last entry key is corrupt.
    public init(engine: any StorageEngine) throws(StorageError) {
        self.engine = engine
        var bounds = Bounds()
        if let value = try engine.get(Keys.snapshot) {
            bounds.snapshot = try Self.decodeSnapshot(value).metadata
        }
        let first = try engine.scan(prefix: Keys.entryPrefix, limit: 1)
        let last = try engine.scan(prefix: Keys.entryPrefix, limit: 1, reverse: true)
        if let first = first.first, let last = last.first {
            guard let low = Keys.index(fromEntryKey: first.key) else {
                throw StorageError(.corruption, "malformed entry key", key: first.key)
            }
            guard let high = Keys.index(fromEntryKey: last.key) else {
                throw StorageError(.corruption, "malformed entry key", key: last.key)
            }
            bounds.storedEntries = low...high
        }
        self.bounds = bounds
    }

    // MARK: Cheap queries

    /// The index of the stored snapshot, or 0 when there is none.
    public var snapshotIndex: LogIndex { bounds.snapshot?.index ?? 0 }

    /// The index of the last entry in the log: the last stored entry, or the snapshot's index if
    /// no entry after it is stored (0 for an empty log).
    public var lastIndex: LogIndex { max(bounds.storedEntries?.upperBound ?? 0, snapshotIndex) }

    /// The index of the first entry that ``load(appliedIndex:)`` returns (when it returns any):
    /// the one right after the snapshot.
    public var firstIndex: LogIndex { snapshotIndex + 1 }

    // MARK: Preparing writes

    /// Prepares persisting a ``Ready``'s `snapshot`, `entries` and `hardState` as one batch.
    ///
    /// - A received `snapshot` replaces the whole log, as the Raft core's log does when it
    ///   restores one: it is stored under `r/s` and *every* stored entry is deleted (those at or
    ///   below its index are covered; those above it conflict with the leader's log, because the
    ///   core installs a snapshot only when its log does not hold the snapshot's last entry).
    /// - Writing `entries` deletes every stored entry at or above the first one's index, then
    ///   stores them.
    /// - `hardState`, if given, replaces the stored one.
    ///
    /// - Throws: ``StorageError/Kind/invalidOperation`` if `entries` are not contiguous and
    ///   ascending, start at or below the snapshot, or would leave a gap after the last entry.
    public func prepareAppend(
        entries: [LogEntry], hardState: HardState?, snapshot: Snapshot? = nil
    )
        throws(StorageError) -> Update
    {
        var batch = StorageBatch()
        var next = bounds
        if let snapshot {
            batch.deleteRange(from: Keys.entryPrefix, to: Keys.entryPrefixEnd)
            batch.put(Keys.snapshot, Self.encodeSnapshot(snapshot))
            next.snapshot = snapshot.metadata
            next.storedEntries = nil
        }
        if let first = entries.first {
            for (offset, entry) in entries.enumerated() where entry.index != first.index + UInt64(offset) {
                throw StorageError(
                    .invalidOperation,
                    "entries to append are not contiguous: entry \(offset) has index \(entry.index), expected \(first.index + UInt64(offset))"
                )
            }
            let base = next.snapshot?.index ?? 0
            let last = max(next.storedEntries?.upperBound ?? 0, base)
            guard first.index > base else {
                throw StorageError(
                    .invalidOperation, "cannot append entry \(first.index) at or below the snapshot at \(base)")
            }
            guard first.index <= last + 1 else {
                throw StorageError(
                    .invalidOperation, "appending entry \(first.index) after last index \(last) would leave a gap")
            }
            // Only a conflicting suffix needs deleting. Appending past the last entry (nearly every
            // append) writes no range deletion: RocksDB keeps each one in its memtable and write-ahead
            // log, and a member that restarts after thousands of them spends minutes rebuilding them.
            if let stored = next.storedEntries, stored.upperBound >= first.index {
                batch.deleteRange(from: Keys.entry(first.index), to: Keys.entryEnd(after: stored.upperBound))
            }
            for entry in entries {
                var value: [UInt8] = []
                entry.encode(into: &value)
                batch.put(Keys.entry(entry.index), value)
            }
            let low = min(next.storedEntries?.lowerBound ?? first.index, first.index)
            next.storedEntries = low...(first.index + UInt64(entries.count) - 1)
        }
        if let hardState {
            batch.put(Keys.hardState, hardState.encoded())
        }
        return Update(batch: batch, bounds: next)
    }

    /// Prepares storing a snapshot this member took of its own state machine, keeping every
    /// stored entry (compact them afterwards with ``prepareCompaction(through:)``).
    ///
    /// - Throws: ``StorageError/Kind/invalidOperation`` if the snapshot is older than the
    ///   stored one or lies beyond the last entry.
    public func prepareSaveSnapshot(_ snapshot: Snapshot) throws(StorageError) -> Update {
        let index = snapshot.metadata.index
        guard index >= snapshotIndex else {
            throw StorageError(.invalidOperation, "snapshot at \(index) is older than the stored one at \(snapshotIndex)")
        }
        guard index <= lastIndex else {
            throw StorageError(.invalidOperation, "snapshot at \(index) is beyond the last index \(lastIndex)")
        }
        var batch = StorageBatch()
        batch.put(Keys.snapshot, Self.encodeSnapshot(snapshot))
        var next = bounds
        next.snapshot = snapshot.metadata
        return Update(batch: batch, bounds: next)
    }

    /// Prepares deleting every stored entry at or below `index`.
    ///
    /// - Throws: ``StorageError/Kind/invalidOperation`` if `index` is beyond the stored
    ///   snapshot: the entries after the snapshot are the only copy of the log there, and
    ///   deleting them would leave a gap.
    public func prepareCompaction(through index: LogIndex) throws(StorageError) -> Update {
        guard index <= snapshotIndex else {
            throw StorageError(
                .invalidOperation, "cannot compact through \(index): the stored snapshot only covers \(snapshotIndex)")
        }
        var batch = StorageBatch()
        batch.deleteRange(from: Keys.entryPrefix, to: Keys.entryEnd(after: index))
        var next = bounds
        if let stored = next.storedEntries, stored.lowerBound <= index {
            next.storedEntries = stored.upperBound > index ? (index + 1)...stored.upperBound : nil
        }
        return Update(batch: batch, bounds: next)
    }

    // MARK: Writing

    /// Writes `update.batch` atomically and records its bounds.
    ///
    /// - Parameter sync: Whether the write must be durable when this returns. The Ready
    ///   contract requires `true` for entries, hard state and snapshot before messages are sent.
    public func write(_ update: Update, sync: Bool = true) throws(StorageError) {
        try engine.write(update.batch, sync: sync)
        bounds = update.bounds
    }

    /// Records that the caller wrote `update.batch` to ``engine`` itself.
    ///
    /// Call only after the write succeeded, and before preparing the next update.
    public func didWrite(_ update: Update) {
        bounds = update.bounds
    }

    /// Persists a ``Ready``'s snapshot, entries and hard state in one batch (see
    /// ``prepareAppend(entries:hardState:snapshot:)``), synced unless `sync` is false (a batch
    /// that only moves the commit index, ``Ready/mustSync``).
    public func append(entries: [LogEntry], hardState: HardState?, snapshot: Snapshot? = nil, sync: Bool = true) throws(StorageError) {
        try write(prepareAppend(entries: entries, hardState: hardState, snapshot: snapshot), sync: sync)
    }

    /// Durably stores a snapshot of this member's own state machine, keeping the entries.
    public func saveSnapshot(_ snapshot: Snapshot) throws(StorageError) {
        try write(prepareSaveSnapshot(snapshot), sync: true)
    }

    /// Deletes every stored entry at or below `index` in one batch.
    ///
    /// - Parameter sync: Whether to sync. Losing a compaction in a crash is harmless (the entries
    ///   are still covered by the snapshot), so an unsynced compaction is safe.
    public func compact(through index: LogIndex, sync: Bool = true) throws(StorageError) {
        try write(prepareCompaction(through: index), sync: sync)
    }

    // MARK: Loading

    /// Reads what a member needs to restart: the hard state (a zero one if none is stored), the
    /// snapshot, and the entries after the snapshot.
    ///
    /// - Parameter appliedIndex: The state machine's applied index (see ``AppliedIndex``),
    ///   passed through into the result.
    /// - Throws: ``StorageError`` — ``StorageError/Kind/corruption`` naming the key of a record
    ///   that cannot be decoded, whose index differs from its key's, or whose term is lower than
    ///   its predecessor's; ``StorageError/Kind/missingEntry`` naming the key where an entry is
    ///   missing (a gap after the snapshot or between entries); ``StorageError/Kind/engine`` if
    ///   the engine fails.
    public func load(appliedIndex: LogIndex) throws(StorageError) -> PersistentState {
        var hardState = HardState()
        if let value = try engine.get(Keys.hardState) {
            guard let decoded = HardState(decoding: value) else {
                throw StorageError(.corruption, "undecodable hard state (\(value.count) bytes)", key: Keys.hardState)
            }
            hardState = decoded
        }
        var snapshot: Snapshot?
        if let value = try engine.get(Keys.snapshot) {
            snapshot = try Self.decodeSnapshot(value)
        }
        let base = snapshot?.metadata.index ?? 0
        var previousTerm = snapshot?.metadata.term ?? 0
        var entries: [LogEntry] = []
        let records =
            base == .max ? [] : try engine.scan(from: Keys.entry(base + 1), to: Keys.entryPrefixEnd, limit: nil)
        for record in records {
            let expected = base + UInt64(entries.count) + 1
            guard let index = Keys.index(fromEntryKey: record.key) else {
                throw StorageError(.corruption, "malformed entry key (\(record.key.count) bytes)", key: record.key)
            }
            guard index == expected else {
                throw StorageError(
                    .missingEntry,
                    "entry \(expected) is missing: the log after the snapshot at \(base) must be contiguous, found entry \(index) next",
                    key: Keys.entry(expected))
            }
            var reader = ByteReader(record.value)
            guard let entry = try? LogEntry(from: &reader), reader.isAtEnd else {
                throw StorageError(.corruption, "undecodable log entry (\(record.value.count) bytes)", key: record.key)
            }
            guard entry.index == index else {
                throw StorageError(.corruption, "entry stored under index \(index) claims index \(entry.index)", key: record.key)
            }
            guard entry.term >= previousTerm else {
                throw StorageError(
                    .corruption, "entry term \(entry.term) is lower than the preceding term \(previousTerm)", key: record.key)
            }
            previousTerm = entry.term
            entries.append(entry)
        }
        return PersistentState(hardState: hardState, snapshot: snapshot, entries: entries, appliedIndex: appliedIndex)
    }

    // MARK: Encoding

    static func encodeSnapshot(_ snapshot: Snapshot) -> [UInt8] {
        var out: [UInt8] = []
        snapshot.metadata.encode(into: &out)
        out.appendUInt32LengthPrefixed(snapshot.data)
        return out
    }

    static func decodeSnapshot(_ value: [UInt8]) throws(StorageError) -> Snapshot {
        var reader = ByteReader(value)
        guard let metadata = try? SnapshotMetadata(from: &reader), let data = try? reader.readUInt32LengthPrefixed(),
            reader.isAtEnd
        else {
            throw StorageError(.corruption, "undecodable snapshot (\(value.count) bytes)", key: Keys.snapshot)
        }
        return Snapshot(metadata: metadata, data: data)
    }
}
