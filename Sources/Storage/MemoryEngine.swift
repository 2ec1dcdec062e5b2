import Primitives
internal import Synchronization

/// Records sorted by key (bytewise), searched by binary search. Deterministic by construction.
struct SortedRecords: Sendable, Hashable {
    private(set) var records: [StorageRecord] = []

    /// The position of the first record whose key is not less than `key`.
    func lowerBound(_ key: [UInt8]) -> Int {
        var low = 0
        var high = records.count
        while low < high {
            let middle = (low + high) / 2
            if compareBytes(records[middle].key, key) < 0 { low = middle + 1 } else { high = middle }
        }
        return low
    }

    func get(_ key: [UInt8]) -> [UInt8]? {
        let position = lowerBound(key)
        guard position < records.count, records[position].key == key else { return nil }
        return records[position].value
    }

    mutating func put(_ key: [UInt8], _ value: [UInt8]) {
        let position = lowerBound(key)
        if position < records.count, records[position].key == key {
            records[position].value = value
        } else {
            records.insert(StorageRecord(key: key, value: value), at: position)
        }
    }

    mutating func delete(_ key: [UInt8]) {
        let position = lowerBound(key)
        if position < records.count, records[position].key == key { records.remove(at: position) }
    }

    mutating func deleteRange(from start: [UInt8], to end: [UInt8]) {
        guard start.lexicographicallyPrecedes(end) else { return }
        let low = lowerBound(start)
        let high = lowerBound(end)
        if low < high { records.removeSubrange(low..<high) }
    }

    mutating func apply(_ batch: StorageBatch) {
        for operation in batch.operations {
            switch operation {
            case .put(let key, let value): put(key, value)
            case .delete(let key): delete(key)
            case .deleteRange(let start, let end): deleteRange(from: start, to: end)
            }
        }
    }

    func scan(from start: [UInt8], to end: [UInt8]?, limit: Int?, reverse: Bool) -> [StorageRecord] {
        let limit = limit ?? .max
        guard limit > 0 else { return [] }
        if let end, !start.lexicographicallyPrecedes(end) { return [] }
        let low = lowerBound(start)
        let high = end.map(lowerBound) ?? records.count
        guard low < high else { return [] }
        let count = min(limit, high - low)
        return reverse ? Array(records[(high - count)..<high].reversed()) : Array(records[low..<(low + count)])
    }
}

/// An in-memory ``StorageEngine`` for the deterministic simulator, with the crash semantics of
/// RocksDB with a write-ahead log.
///
/// - A write with `sync: false` is visible to reads at once but not yet durable.
/// - A write with `sync: true` makes itself and every earlier write durable.
/// - ``crash(keepingUnsyncedBatches:)`` discards what is not durable and restores the durable
///   state (optionally keeping a prefix of the unsynced batches, as a real WAL may).
/// - A batch is all or nothing, in the visible and in the durable state.
///
/// Contents are kept in a sorted array searched by binary search, so every result is
/// deterministic. The state is guarded by a `Mutex`, which makes the engine `Sendable` without
/// `@unchecked`.
public final class MemoryEngine: StorageEngine, Sendable {
    private struct State: Sendable {
        var visible = SortedRecords()
        var durable = SortedRecords()
        /// Batches written without sync since the last synced write, oldest first.
        var unsynced: [StorageBatch] = []
        var failures: [StorageError] = []
        var writeCount = 0
        var syncedWriteCount = 0
        var faults = InjectedFaults()
        /// How to undo the last synced write in the durable state (newest change last), kept
        /// only while ``InjectedFaults/recordsLostWrites`` is set.
        var lastSyncUndo: [(key: [UInt8], value: [UInt8]?)] = []
    }

    private let state = Mutex(State())

    /// Creates an empty engine.
    public init() {}

    /// Creates an engine whose durable (and visible) contents are `records`.
    public init(durable records: [StorageRecord]) {
        state.withLock { state in
            for record in records { state.durable.put(record.key, record.value) }
            state.visible = state.durable
        }
    }

    /// Returns the value stored for `key` in the visible state.
    public func get(_ key: [UInt8]) throws(StorageError) -> [UInt8]? {
        state.withLock { $0.visible.get(key) }
    }

    /// Applies `batch` to the visible state; with `sync`, also makes it and every earlier
    /// unsynced batch durable.
    ///
    /// Throws (applying nothing) if a failure was injected with ``failNextWrite(_:)`` or the
    /// disk is full (``InjectedFaults/diskFull``); applies the batch without making it durable
    /// and throws if ``InjectedFaults/failNextSync`` is armed; lands the first put under another
    /// key if ``InjectedFaults/misdirectNextWrite`` is armed.
    public func write(_ batch: StorageBatch, sync: Bool) throws(StorageError) {
        let failure: StorageError? = state.withLock { state in
            if !state.failures.isEmpty { return state.failures.removeFirst() }
            if state.faults.diskFull { return MemoryEngine.noSpace }
            let batch = state.faults.misdirect(batch, durable: state.durable)
            state.writeCount += 1
            state.visible.apply(batch)
            if sync && state.faults.failNextSync {
                // The data reached the page cache but not the disk: a crash may keep it or not.
                state.faults.failNextSync = false
                state.unsynced.append(batch)
                return StorageError(.engine, "fsync failed: input/output error (injected)")
            }
            if sync {
                state.syncedWriteCount += 1
                if state.faults.recordsLostWrites {
                    state.lastSyncUndo = []
                    for earlier in state.unsynced { state.durable.apply(earlier, undo: &state.lastSyncUndo) }
                    state.durable.apply(batch, undo: &state.lastSyncUndo)
                } else {
                    for earlier in state.unsynced { state.durable.apply(earlier) }
                    state.durable.apply(batch)
                }
                state.unsynced = []
            } else {
                state.unsynced.append(batch)
            }
            return nil
        }
        if let failure { throw failure }
    }

    /// Returns records of the visible state with a key in `start..<end`.
    public func scan(from start: [UInt8], to end: [UInt8]?, limit: Int?, reverse: Bool) throws(StorageError) -> [StorageRecord] {
        precondition((limit ?? 0) >= 0, "negative scan limit")
        return state.withLock { $0.visible.scan(from: start, to: end, limit: limit, reverse: reverse) }
    }

    /// Simulates a machine crash and restart: the visible state becomes the durable state.
    ///
    /// - Parameter keepingUnsyncedBatches: How many of the oldest unsynced batches survive
    ///   anyway (a real write-ahead log may have reached the disk partly; it always keeps a
    ///   prefix, never a later write without an earlier one). Default: none survives.
    public func crash(keepingUnsyncedBatches: Int = 0) {
        precondition(keepingUnsyncedBatches >= 0, "negative number of surviving batches")
        state.withLock { state in
            for batch in state.unsynced.prefix(keepingUnsyncedBatches) { state.durable.apply(batch) }
            state.unsynced = []
            state.visible = state.durable
        }
    }

    /// Simulates a crash in which the batch after the `keepingUnsyncedBatches` surviving ones
    /// reached the write-ahead log only in part (a torn write): `tornOperations` of its
    /// operations were written before the power went.
    ///
    /// Like RocksDB's log reader, recovery checks every log record against its length and
    /// checksum and stops at the first torn one, so the torn batch is dropped whole and nothing
    /// after it survives: batches stay atomic. Returns whether a torn batch was dropped (there
    /// was an unsynced batch after the surviving ones and only part of it was written).
    @discardableResult
    public func crash(keepingUnsyncedBatches kept: Int, tornOperations: Int) -> Bool {
        precondition(kept >= 0 && tornOperations >= 0, "negative crash parameters")
        return state.withLock { state in
            for batch in state.unsynced.prefix(kept) { state.durable.apply(batch) }
            var torn = false
            if kept < state.unsynced.count && tornOperations > 0 {
                // The record holds its operations up to the tear, then a tail its checksum fails.
                let record = WriteAheadRecord(state.unsynced[kept], writtenOperations: tornOperations)
                if let complete = record.recovered { state.durable.apply(complete) } else { torn = true }
            }
            state.unsynced = []
            state.visible = state.durable
            return torn
        }
    }

    /// Simulates a crash in which the disk lost the last synced write (and every unsynced one)
    /// although it reported it durable: a firmware or controller bug no checksum can see.
    ///
    /// Requires ``InjectedFaults/recordsLostWrites`` to have been set before that write.
    /// Returns whether there was a synced write to lose.
    @discardableResult
    public func crashLosingLastSyncedWrite() -> Bool {
        state.withLock { state in
            let lost = !state.lastSyncUndo.isEmpty
            for change in state.lastSyncUndo.reversed() {
                if let value = change.value { state.durable.put(change.key, value) } else { state.durable.delete(change.key) }
            }
            state.lastSyncUndo = []
            state.unsynced = []
            state.visible = state.durable
            return lost
        }
    }

    /// Flips bit `bit` (counted from the first byte's lowest bit, modulo the value's length) of
    /// the value stored for `key`, on disk and in what reads return: a bit rotted at rest.
    /// Returns whether `key` holds a non-empty value.
    @discardableResult
    public func flipBit(ofValueAt key: [UInt8], bit: Int) -> Bool {
        state.withLock { state in
            guard let value = state.durable.get(key), !value.isEmpty else { return false }
            var damaged = value
            let position = bit % (value.count * 8)
            damaged[position / 8] ^= UInt8(1) << UInt8(position % 8)
            state.durable.put(key, damaged)
            if state.visible.get(key) == value { state.visible.put(key, damaged) }
            return true
        }
    }

    /// The faults armed in this engine.
    public var faults: InjectedFaults {
        get { state.withLock { $0.faults } }
        set { state.withLock { $0.faults = newValue } }
    }

    /// The error a write returns while the disk is full.
    static let noSpace = StorageError(.engine, "no space left on device (injected)")

    /// Makes the next write throw `error` without applying anything (each call queues one failure).
    public func failNextWrite(_ error: StorageError = StorageError(.engine, "injected write failure")) {
        state.withLock { $0.failures.append(error) }
    }

    /// Every record that would survive a crash now, in key order.
    public var durableSnapshot: [StorageRecord] { state.withLock { $0.durable.records } }

    /// Every record visible to reads now, in key order.
    public var visibleSnapshot: [StorageRecord] { state.withLock { $0.visible.records } }

    /// The number of batches written without sync since the last synced write.
    public var unsyncedBatchCount: Int { state.withLock { $0.unsynced.count } }

    /// The number of successful writes so far (synced or not).
    public var writeCount: Int { state.withLock { $0.writeCount } }

    /// The number of successful synced writes so far.
    public var syncedWriteCount: Int { state.withLock { $0.syncedWriteCount } }
}
