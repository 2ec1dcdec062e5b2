internal import CRocksDB

/// A consistent, read-only view of a ``Database`` at the moment
/// ``Database/snapshot()`` was called.
///
/// Writes made after that moment are invisible to reads through the snapshot.
/// The snapshot is released when its last reference goes away. Until then it
/// keeps its database alive and prevents ``Database/close()``, and it pins old
/// versions of data, so do not keep it longer than needed.
///
/// The use of @unchecked Sendable is safe because a snapshot is immutable
/// after creation: RocksDB snapshots are read-only and may be used from any
/// thread, and its read options are only ever passed to RocksDB as `const`.
public final class Snapshot: @unchecked Sendable {
    let database: Database
    let handle: OpaquePointer
    /// Read options that read from this snapshot.
    let readOptions: OpaquePointer
    /// The handle stays valid: the database cannot close while this snapshot is alive.
    private let databaseHandle: OpaquePointer

    /// Call only while holding `database`'s lock with `databaseHandle` open,
    /// after counting this snapshot as a dependent.
    init(database: Database, databaseHandle: OpaquePointer) {
        self.database = database
        self.databaseHandle = databaseHandle
        handle = rocksdb_create_snapshot(databaseHandle)
        readOptions = rocksdb_readoptions_create()
        rocksdb_readoptions_set_snapshot(readOptions, handle)
    }

    deinit {
        rocksdb_readoptions_destroy(readOptions)
        rocksdb_release_snapshot(databaseHandle, handle)
        database.dependentReleased()
    }
}
