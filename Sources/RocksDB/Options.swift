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

    /// What recovery does with a damaged record in the write-ahead log when the database opens
    /// (RocksDB's `WALRecoveryMode`).
    public enum WALRecovery: Sendable, Hashable, CaseIterable {
        /// Drops a damaged record at the end of a log (a write torn by the crash) and refuses to
        /// open if any other record is damaged. The default: see ``Options/walRecovery``.
        case tolerateTornTail
        /// Refuses to open if any record is damaged, even a torn last one.
        case absoluteConsistency
        /// Replays up to the first damaged record and drops everything after it.
        case pointInTime
        /// Skips every damaged record.
        case skipDamagedRecords

        var rawValue: Int32 {
            switch self {
            case .tolerateTornTail: Int32(rocksdb_tolerate_corrupted_tail_records_recovery)
            case .absoluteConsistency: Int32(rocksdb_absolute_consistency_recovery)
            case .pointInTime: Int32(rocksdb_point_in_time_recovery)
            case .skipDamagedRecords: Int32(rocksdb_skip_any_corrupted_records_recovery)
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
        /// Whether RocksDB checks aggressively for damage: damage found while opening or
        /// replaying the log is an error rather than skipped, and after a failed write the
        /// database refuses further writes. Defaults to `true`.
        public var paranoidChecks: Bool
        /// How recovery treats a damaged write-ahead-log record. Defaults to
        /// ``WALRecovery/tolerateTornTail``.
        ///
        /// Statehouse syncs every write that anything depends on (Raft log and hard state) before
        /// acting on it, so the only records a crash can damage are unsynced ones at the end of
        /// the newest log: dropping those loses nothing acknowledged, and the member must restart
        /// after a power cut (which ``WALRecovery/absoluteConsistency`` would refuse). A damaged
        /// record anywhere else is the disk's fault and is followed by synced records;
        /// ``WALRecovery/pointInTime`` would silently drop those synced writes, so opening fails
        /// instead, naming the corruption.
        public var walRecovery: WALRecovery

        /// Creates options; every parameter defaults to RocksDB's behavior,
        /// except that a missing database is created.
        public init(
            createIfMissing: Bool = true,
            errorIfExists: Bool = false,
            compression: Compression = .snappy,
            writeBufferSize: Int? = nil,
            maxOpenFiles: Int? = nil,
            paranoidChecks: Bool = true,
            walRecovery: WALRecovery = .tolerateTornTail
        ) {
            self.createIfMissing = createIfMissing
            self.errorIfExists = errorIfExists
            self.compression = compression
            self.writeBufferSize = writeBufferSize
            self.maxOpenFiles = maxOpenFiles
            self.paranoidChecks = paranoidChecks
            self.walRecovery = walRecovery
        }

        /// Returns a new `rocksdb_options_t`; the caller destroys it.
        func makeCOptions() -> OpaquePointer {
            let options: OpaquePointer = rocksdb_options_create()
            rocksdb_options_set_create_if_missing(options, createIfMissing ? 1 : 0)
            rocksdb_options_set_error_if_exists(options, errorIfExists ? 1 : 0)
            rocksdb_options_set_compression(options, compression.rawValue)
            rocksdb_options_set_paranoid_checks(options, paranoidChecks ? 1 : 0)
            rocksdb_options_set_wal_recovery_mode(options, walRecovery.rawValue)
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
