/// Disk faults a ``MemoryEngine`` injects into its writes, armed by the simulator from its seed.
///
/// Faults that act at a crash or at rest are methods of the engine instead:
/// ``MemoryEngine/crash(keepingUnsyncedBatches:tornOperations:)`` (a torn write),
/// ``MemoryEngine/crashLosingLastSyncedWrite()`` (a lost synced write) and
/// ``MemoryEngine/flipBit(ofValueAt:bit:)`` (bit rot).
public struct InjectedFaults: Sendable, Hashable {
    /// Every write fails with "no space left on device", applying nothing, until cleared.
    public var diskFull = false
    /// The next synced write reaches the visible state, but its fsync fails: the write throws
    /// and stays unsynced (a crash may keep it or lose it).
    public var failNextSync = false
    /// Whether synced writes keep what they replaced, so that
    /// ``MemoryEngine/crashLosingLastSyncedWrite()`` can lose the last one.
    public var recordsLostWrites = false
    /// If set, the first put of the next write lands under the key of the durable record at
    /// this position (modulo the number of records) instead of its own, whose old value stays.
    public var misdirectNextWrite: Int?
    /// The number of writes that were misdirected.
    public private(set) var misdirectedWrites = 0

    /// Creates a set of faults with nothing armed.
    public init() {}

    /// `batch` as the disk writes it: with its first put misdirected if that is armed.
    mutating func misdirect(_ batch: StorageBatch, durable: SortedRecords) -> StorageBatch {
        guard let target = misdirectNextWrite, !durable.records.isEmpty else { return batch }
        guard let first = batch.operations.firstIndex(where: { if case .put = $0 { true } else { false } }),
            case .put(let key, let value) = batch.operations[first]
        else { return batch }
        let wrongKey = durable.records[target % durable.records.count].key
        guard wrongKey != key else { return batch }
        misdirectNextWrite = nil
        misdirectedWrites += 1
        var operations = batch.operations
        operations[first] = .put(key: wrongKey, value: value)
        return StorageBatch(operations)
    }
}

/// A batch as a write-ahead log record that may have reached the disk only in part.
struct WriteAheadRecord {
    /// The batch the record holds.
    let batch: StorageBatch
    /// How many of its operations reached the disk.
    let writtenOperations: Int

    init(_ batch: StorageBatch, writtenOperations: Int) {
        self.batch = batch
        self.writtenOperations = writtenOperations
    }

    /// The batch if the whole record reached the disk, or `nil` if it is torn: a record carries
    /// its length and a checksum of its contents, which a torn record fails.
    var recovered: StorageBatch? {
        writtenOperations >= batch.count ? batch : nil
    }
}

extension SortedRecords {
    /// Applies `batch`, adding to `undo` what each change replaced (in order).
    mutating func apply(_ batch: StorageBatch, undo: inout [(key: [UInt8], value: [UInt8]?)]) {
        for operation in batch.operations {
            switch operation {
            case .put(let key, let value):
                undo.append((key, get(key)))
                put(key, value)
            case .delete(let key):
                undo.append((key, get(key)))
                delete(key)
            case .deleteRange(let start, let end):
                for record in scan(from: start, to: end, limit: nil, reverse: false) { undo.append((record.key, record.value)) }
                deleteRange(from: start, to: end)
            }
        }
    }
}
