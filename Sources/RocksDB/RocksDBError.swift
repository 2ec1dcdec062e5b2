internal import CRocksDB

/// An error reported by RocksDB, or by this wrapper when an operation cannot be
/// performed (for example, on a closed database).
///
/// RocksDB reports failures as a status string such as
/// `"IO error: While lock file: /path/LOCK: Resource temporarily unavailable"`
/// or `"Corruption: block checksum mismatch"`; ``message`` carries that string
/// unchanged so that callers can log it or match on its prefix.
public struct RocksDBError: Error, CustomStringConvertible, Hashable, Sendable {
    /// The status message, exactly as reported by RocksDB.
    public let message: String

    /// Creates an error carrying the given message.
    public init(message: String) {
        self.message = message
    }

    /// The message, unchanged.
    public var description: String { message }
}

/// Calls `body` with a fresh `char** errptr` for a RocksDB C function and
/// converts a reported error into a thrown ``RocksDBError``.
///
/// This is the only place that reads and frees RocksDB error strings.
func withErrorPointer<Result>(
    _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) throws -> Result
) throws -> Result {
    var error: UnsafeMutablePointer<CChar>?
    let result = try body(&error)
    if let error {
        defer { rocksdb_free(error) }
        throw RocksDBError(message: String(cString: error))
    }
    return result
}
