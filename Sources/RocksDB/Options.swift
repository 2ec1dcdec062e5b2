internal import CRocksDB

extension Database {
    /// Block compression applied to SST files.
    public enum Compression: Sendable, Hashable, CaseIterable {
        /// No compression.
        case none
        /// Snappy: fast, moderate ratio. RocksDB's default.
        case snappy
        /// LZ4: fast, moderate ratio.
        case lz4
        /// Zstandard: slower, better ratio.
        case zstd

        var rawValue: Int32 {
            switch self {
            case .none: Int32(rocksdb_no_compression)
            case .snappy: Int32(rocksdb_snappy_compression)
            case .lz4: Int32(rocksdb_lz4_compression)
            case .zstd: Int32(rocksdb_zstd_compression)
            }
        }
    }

    /// Settings used when opening a ``Database``.
    public struct Options: Sendable, Hashable {
        /// Whether to create the database if it does not exist. Defaults to `true`.
        public var createIfMissing: Bool
        /// Whether opening fails if the database already exists. Defaults to `false`.
        public var errorIfExists: Bool
        /// Compression for SST files. Defaults to ``Compression/snappy``.
        public var compression: Compression
        /// Bytes buffered in a memtable before it is flushed to disk, or `nil`
        /// for RocksDB's default (64 MiB).
        public var writeBufferSize: Int?
        /// The maximum number of files RocksDB keeps open, `-1` for no limit,
        /// or `nil` for RocksDB's default (no limit).
        public var maxOpenFiles: Int?

        /// Creates options; every parameter defaults to RocksDB's behavior,
        /// except that a missing database is created.
        public init(
            createIfMissing: Bool = true,
            errorIfExists: Bool = false,
            compression: Compression = .snappy,
            writeBufferSize: Int? = nil,
            maxOpenFiles: Int? = nil
        ) {
            self.createIfMissing = createIfMissing
            self.errorIfExists = errorIfExists
            self.compression = compression
            self.writeBufferSize = writeBufferSize
            self.maxOpenFiles = maxOpenFiles
        }

        /// Returns a new `rocksdb_options_t`; the caller destroys it.
        func makeCOptions() -> OpaquePointer {
            let options: OpaquePointer = rocksdb_options_create()
            rocksdb_options_set_create_if_missing(options, createIfMissing ? 1 : 0)
            rocksdb_options_set_error_if_exists(options, errorIfExists ? 1 : 0)
            rocksdb_options_set_compression(options, compression.rawValue)
            if let writeBufferSize {
                rocksdb_options_set_write_buffer_size(options, writeBufferSize)
            }
            if let maxOpenFiles {
                rocksdb_options_set_max_open_files(options, Int32(maxOpenFiles))
            }
            return options
        }
    }
}
