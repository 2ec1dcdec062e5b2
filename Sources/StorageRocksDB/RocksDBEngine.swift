public import RocksDB
public import Storage

/// A ``StorageEngine`` over a RocksDB database on disk.
///
/// A ``StorageBatch`` becomes one RocksDB write batch (so it is atomic, including across a
/// crash); `sync: true` maps to a RocksDB synced write (the write-ahead log is fsynced before
/// the call returns); `deleteRange` maps to RocksDB's range deletion. RocksDB's failures are
/// reported as ``StorageError`` of kind ``StorageError/Kind/engine`` carrying RocksDB's message.
///
/// The engine is `Sendable` because its only state is the immutable reference to a
/// ``RocksDB/Database``, which is itself safe to use from many threads.
public final class RocksDBEngine: StorageEngine, Sendable {
    /// The underlying database (for checkpoints, properties and maintenance).
    public let database: Database

    /// Opens (by default creating) the database in the directory at `path`.
    public init(path: String, options: Database.Options = Database.Options()) throws(StorageError) {
        do {
            database = try Database(path: path, options: options)
        } catch {
            throw Self.wrap(error, "cannot open RocksDB at \(path)")
        }
    }

    /// Closes the database. Every later operation throws.
    public func close() throws(StorageError) {
        do { try database.close() } catch { throw Self.wrap(error, "close") }
    }

    /// Returns the value stored for `key`, or `nil` if there is none.
    public func get(_ key: [UInt8]) throws(StorageError) -> [UInt8]? {
        do { return try database.get(key) } catch { throw Self.wrap(error, "get", key: key) }
    }

    /// Writes `batch` as one RocksDB write batch; with `sync`, fsyncs the write-ahead log before
    /// returning (an empty batch is written too, so a synced empty write still syncs the log).
    public func write(_ batch: StorageBatch, sync: Bool) throws(StorageError) {
        let writeBatch = WriteBatch()
        for operation in batch.operations {
            switch operation {
            case .put(let key, let value): writeBatch.put(key, value)
            case .delete(let key): writeBatch.delete(key)
            case .deleteRange(let start, let end): writeBatch.deleteRange(from: start, to: end)
            }
        }
        do { try database.write(writeBatch, sync: sync) } catch { throw Self.wrap(error, "write") }
    }

    /// Returns the records with a key in `start..<end`, in key order (descending if `reverse`).
    public func scan(from start: [UInt8], to end: [UInt8]?, limit: Int?, reverse: Bool) throws(StorageError) -> [StorageRecord] {
        precondition((limit ?? 0) >= 0, "negative scan limit")
        do {
            return try database.scan(from: start, to: end, reverse: reverse, limit: limit)
                .map { StorageRecord(key: $0.key, value: $0.value) }
        } catch {
            throw Self.wrap(error, "scan")
        }
    }

    private static func wrap(_ error: any Error, _ operation: String, key: [UInt8]? = nil) -> StorageError {
        let message = (error as? RocksDBError)?.message ?? String(describing: error)
        return StorageError(.engine, "\(operation): \(message)", key: key)
    }
}
