internal import CRocksDB
internal import Synchronization

/// A RocksDB database opened at a directory on disk.
///
/// Keys and values are arbitrary byte strings (`[UInt8]`), ordered bytewise
/// (unsigned, lexicographic), which is RocksDB's default comparator.
///
/// ```swift
/// let database = try Database(path: "/var/lib/statehouse/db")
/// try database.put(Array("k".utf8), Array("v".utf8), sync: true)
/// let value = try database.get(Array("k".utf8))
/// ```
///
/// The database is closed by ``close()`` or, at the latest, when the last
/// reference to it goes away. Operations on a closed database throw
/// ``RocksDBError``.
///
/// The use of @unchecked Sendable is safe because RocksDB's `DB` object is
/// designed for concurrent reads and writes from many threads, the option
/// objects are created in `init` and never mutated afterwards, and the only
/// mutable state (the database handle, set to `nil` by ``close()``) is guarded
/// by a reader–writer lock: every operation holds the read lock while it uses
/// the handle, and ``close()`` takes the write lock.
public final class Database: @unchecked Sendable {
    /// The directory the database was opened at.
    public let path: String

    private let lock = ReadWriteLock()
    /// Guarded by `lock`; `nil` once closed.
    private var handle: OpaquePointer?
    /// Iterators and snapshots that are alive; they keep the handle in use.
    private let dependents = Atomic<Int>(0)
    private let readOptions: OpaquePointer
    private let syncWriteOptions: OpaquePointer
    private let asyncWriteOptions: OpaquePointer

    /// Opens the database at `path`.
    ///
    /// - Parameters:
    ///   - path: The database directory. Its parent directory must exist.
    ///   - options: How to open and configure the database.
    /// - Throws: ``RocksDBError`` with RocksDB's message if the database cannot
    ///   be opened, for example because `path` is a regular file, another
    ///   process holds its lock, or ``Options/errorIfExists`` is set and the
    ///   database exists.
    public init(path: String, options: Options = Options()) throws {
        let cOptions = options.makeCOptions()
        defer { rocksdb_options_destroy(cOptions) }
        guard let handle = try withErrorPointer({ rocksdb_open(cOptions, path, $0) }) else {
            throw RocksDBError(message: "rocksdb_open returned no handle for \(path)")
        }
        self.path = path
        self.handle = handle
        readOptions = rocksdb_readoptions_create()
        syncWriteOptions = rocksdb_writeoptions_create()
        rocksdb_writeoptions_set_sync(syncWriteOptions, 1)
        asyncWriteOptions = rocksdb_writeoptions_create()
    }

    deinit {
        // Iterators and snapshots retain the database, so none can be alive here.
        if let handle {
            rocksdb_close(handle)
        }
        rocksdb_readoptions_destroy(readOptions)
        rocksdb_writeoptions_destroy(syncWriteOptions)
        rocksdb_writeoptions_destroy(asyncWriteOptions)
    }

    /// Closes the database, releasing its files and lock.
    ///
    /// Closing an already closed database does nothing.
    ///
    /// - Throws: ``RocksDBError`` if iterators or snapshots created from this
    ///   database are still alive; release them first. The database stays open
    ///   in that case.
    public func close() throws {
        try lock.withWriteLock {
            guard let handle else { return }
            let alive = dependents.load(ordering: .acquiring)
            guard alive == 0 else {
                throw RocksDBError(
                    message: "cannot close \(path): \(alive) iterator(s) or snapshot(s) still alive")
            }
            rocksdb_close(handle)
            self.handle = nil
        }
    }

    // MARK: Reads and writes

    /// Returns the value stored for `key`, or `nil` if there is none.
    ///
    /// - Parameters:
    ///   - key: The key to look up.
    ///   - snapshot: A snapshot of this database to read from, or `nil` to read
    ///     the latest state.
    public func get(_ key: [UInt8], snapshot: Snapshot? = nil) throws -> [UInt8]? {
        let options = readOptions(for: snapshot)
        return try withHandle { db in
            try key.withCBytes { keyPointer, keyCount in
                let pinned = try withErrorPointer {
                    rocksdb_get_pinned(db, options, keyPointer, keyCount, $0)
                }
                guard let pinned else { return nil }
                defer { rocksdb_pinnableslice_destroy(pinned) }
                var count = 0
                let value = rocksdb_pinnableslice_value(pinned, &count)
                return [UInt8](copying: value, count: count)
            }
        }
    }

    /// Stores `value` for `key`, replacing any existing value.
    ///
    /// - Parameter sync: Whether to `fsync` the write-ahead log before
    ///   returning. Only synced writes are guaranteed to survive a machine
    ///   crash; unsynced writes survive a process crash.
    public func put(_ key: [UInt8], _ value: [UInt8], sync: Bool) throws {
        let options = writeOptions(sync: sync)
        try withHandle { db in
            try key.withCBytes { keyPointer, keyCount in
                try value.withCBytes { valuePointer, valueCount in
                    try withErrorPointer {
                        rocksdb_put(db, options, keyPointer, keyCount, valuePointer, valueCount, $0)
                    }
                }
            }
        }
    }

    /// Removes the value stored for `key`; does nothing if there is none.
    ///
    /// - Parameter sync: Whether to `fsync` the write-ahead log before returning.
    public func delete(_ key: [UInt8], sync: Bool) throws {
        let options = writeOptions(sync: sync)
        try withHandle { db in
            try key.withCBytes { keyPointer, keyCount in
                try withErrorPointer { rocksdb_delete(db, options, keyPointer, keyCount, $0) }
            }
        }
    }

    /// Applies every operation in `batch` atomically: readers observe either
    /// none or all of them, including after a crash.
    ///
    /// The batch is left unchanged and can be cleared and reused.
    ///
    /// - Parameter sync: Whether to `fsync` the write-ahead log before returning.
    public func write(_ batch: WriteBatch, sync: Bool) throws {
        let options = writeOptions(sync: sync)
        try withHandle { db in
            try withErrorPointer { rocksdb_write(db, options, batch.handle, $0) }
        }
    }

    // MARK: Snapshots and iterators

    /// Returns a consistent, read-only view of the database as of now.
    ///
    /// Pass the snapshot to ``get(_:snapshot:)``, ``makeIterator(snapshot:lowerBound:upperBound:)``
    /// or the `scan` methods. It is released when its last reference goes
    /// away; the database cannot be closed while it is alive.
    public func snapshot() throws -> Snapshot {
        try withHandle { db in
            dependents.add(1, ordering: .relaxed)
            return Snapshot(database: self, databaseHandle: db)
        }
    }

    /// Returns an iterator over the database, initially positioned at no entry.
    ///
    /// Position it with ``Iterator/seekToFirst()``, ``Iterator/seek(to:)`` and
    /// friends before reading. The database cannot be closed while the
    /// iterator is alive.
    ///
    /// - Parameters:
    ///   - snapshot: A snapshot of this database to iterate, or `nil` for an
    ///     implicit snapshot taken now.
    ///   - lowerBound: If given, the iterator sees only keys greater than or
    ///     equal to it.
    ///   - upperBound: If given, the iterator sees only keys strictly less
    ///     than it.
    public func makeIterator(
        snapshot: Snapshot? = nil,
        lowerBound: [UInt8]? = nil,
        upperBound: [UInt8]? = nil
    ) throws -> Iterator {
        if let snapshot {
            precondition(snapshot.database === self, "snapshot belongs to another database")
        }
        return try withHandle { db in
            dependents.add(1, ordering: .relaxed)
            return Iterator(
                database: self, databaseHandle: db, snapshot: snapshot,
                lowerBound: lowerBound, upperBound: upperBound)
        }
    }

    /// Called by iterators and snapshots after they have released their
    /// RocksDB objects.
    func dependentReleased() {
        dependents.subtract(1, ordering: .releasing)
    }

    // MARK: Maintenance

    /// Flushes the memtable to an SST file and waits for the flush to finish.
    public func flush() throws {
        try withHandle { db in
            let options = rocksdb_flushoptions_create()
            defer { rocksdb_flushoptions_destroy(options) }
            rocksdb_flushoptions_set_wait(options, 1)
            try withErrorPointer { rocksdb_flush(db, options, $0) }
        }
    }

    /// Compacts the keys in `start..<end` (or the whole key space for `nil`
    /// bounds), dropping overwritten and deleted data where possible.
    ///
    /// - Parameters:
    ///   - start: The first key to compact, or `nil` for the smallest key.
    ///   - end: The key after the last one to compact, or `nil` for no limit.
    public func compactRange(from start: [UInt8]? = nil, to end: [UInt8]? = nil) throws {
        try withHandle { db in
            withOptionalCBytes(start) { startPointer, startCount in
                withOptionalCBytes(end) { endPointer, endCount in
                    rocksdb_compact_range(db, startPointer, startCount, endPointer, endCount)
                }
            }
        }
    }

    /// Returns the value of a RocksDB property such as
    /// `"rocksdb.total-sst-files-size"`, `"rocksdb.estimate-live-data-size"`,
    /// `"rocksdb.estimate-num-keys"` or `"rocksdb.stats"`, or `nil` if RocksDB
    /// does not know the property.
    public func property(_ name: String) throws -> String? {
        try withHandle { db in
            guard let value = rocksdb_property_value(db, name) else { return nil }
            defer { rocksdb_free(value) }
            return String(cString: value)
        }
    }

    /// Returns the approximate on-disk size, in bytes, of the SST data for keys
    /// in `start..<end`.
    ///
    /// Data still in the memtable is not counted; call ``flush()`` first if it
    /// matters.
    public func approximateSize(from start: [UInt8], to end: [UInt8]) throws -> UInt64 {
        try withHandle { db in
            try start.withCBytes { startPointer, startCount in
                try end.withCBytes { endPointer, endCount in
                    var size: UInt64 = 0
                    try withErrorPointer {
                        rocksdb_approximate_sizes(
                            db, 1, [startPointer], [startCount], [endPointer], [endCount], &size, $0)
                    }
                    return size
                }
            }
        }
    }

    /// Writes a consistent copy of the database to `directory`, which must
    /// not exist yet. SST files are hard-linked when possible, so this is cheap.
    ///
    /// The result is a complete database that ``init(path:options:)`` opens
    /// independently of this one.
    public func createCheckpoint(at directory: String) throws {
        try withHandle { db in
            guard let checkpoint = try withErrorPointer({ rocksdb_checkpoint_object_create(db, $0) }) else {
                throw RocksDBError(message: "rocksdb_checkpoint_object_create returned no object")
            }
            defer { rocksdb_checkpoint_object_destroy(checkpoint) }
            // A log size of 0 flushes the memtable first, so the checkpoint needs no WAL replay.
            try withErrorPointer { rocksdb_checkpoint_create(checkpoint, directory, 0, $0) }
        }
    }

    // MARK: Helpers

    private func withHandle<Result>(_ body: (OpaquePointer) throws -> Result) throws -> Result {
        try lock.withReadLock {
            guard let handle else {
                throw RocksDBError(message: "database at \(path) is closed")
            }
            return try body(handle)
        }
    }

    private func readOptions(for snapshot: Snapshot?) -> OpaquePointer {
        guard let snapshot else { return readOptions }
        precondition(snapshot.database === self, "snapshot belongs to another database")
        return snapshot.readOptions
    }

    private func writeOptions(sync: Bool) -> OpaquePointer {
        sync ? syncWriteOptions : asyncWriteOptions
    }
}

/// Calls `body` with a `const char*` view of `bytes`, or a null pointer and
/// zero count when `bytes` is `nil`.
private func withOptionalCBytes<Result>(
    _ bytes: [UInt8]?, _ body: (UnsafePointer<CChar>?, Int) -> Result
) -> Result {
    guard let bytes else { return body(nil, 0) }
    return bytes.withCBytes { body($0, $1) }
}
