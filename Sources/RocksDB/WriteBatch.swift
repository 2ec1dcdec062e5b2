internal import CRocksDB

/// A group of writes that ``Database/write(_:sync:)`` applies atomically.
///
/// Operations are applied in the order they were added, so a later `put`
/// overrides an earlier `delete` of the same key and vice versa.
///
/// A batch is not thread-safe: build and write it from one thread at a time.
public final class WriteBatch {
    let handle: OpaquePointer

    /// Creates an empty batch.
    public init() {
        handle = rocksdb_writebatch_create()
    }

    deinit {
        rocksdb_writebatch_destroy(handle)
    }

    /// The number of operations in the batch.
    public var count: Int {
        Int(rocksdb_writebatch_count(handle))
    }

    /// Adds storing `value` for `key`.
    public func put(_ key: [UInt8], _ value: [UInt8]) {
        key.withCBytes { keyPointer, keyCount in
            value.withCBytes { valuePointer, valueCount in
                rocksdb_writebatch_put(handle, keyPointer, keyCount, valuePointer, valueCount)
            }
        }
    }

    /// Adds removing the value stored for `key`.
    public func delete(_ key: [UInt8]) {
        key.withCBytes { rocksdb_writebatch_delete(handle, $0, $1) }
    }

    /// Adds removing every key in `start..<end`.
    ///
    /// Does nothing if `end` does not sort after `start`, since that range is empty.
    public func deleteRange(from start: [UInt8], to end: [UInt8]) {
        guard start.lexicographicallyPrecedes(end) else { return }
        start.withCBytes { startPointer, startCount in
            end.withCBytes { endPointer, endCount in
                rocksdb_writebatch_delete_range(handle, startPointer, startCount, endPointer, endCount)
            }
        }
    }

    /// Removes every operation from the batch.
    public func clear() {
        rocksdb_writebatch_clear(handle)
    }
}
