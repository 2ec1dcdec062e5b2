import Crypto
import Primitives
import ReplicatedMember

/// The backup file `Maintenance.Snapshot` streams: a magic line, the snapshot codec's encoding
/// of every backend pair, zero padding to a multiple of 512 bytes, and the SHA-256 of all of it.
public enum BackupFile {
    static let magic = Array("statehouse-backup-v1\n".utf8)

    /// Encodes a backup of `pairs`.
    public static func encode(pairs: [([UInt8], [UInt8])]) -> [UInt8] {
        var body = magic
        let payload = SnapshotCodec.encode(pairs)
        body.appendBigEndian(UInt64(payload.count))
        body += payload
        body += [UInt8](repeating: 0, count: (512 - body.count % 512) % 512)
        return body + Array(SHA256.hash(data: body))
    }

    /// Decodes a backup file, checking its SHA-256.
    public static func decode(_ file: [UInt8]) throws -> [([UInt8], [UInt8])] {
        struct InvalidBackup: Error, CustomStringConvertible { var description: String }
        guard file.count >= magic.count + 8 + 32, file.count % 512 == 32 else {
            throw InvalidBackup(description: "not a Statehouse backup (size \(file.count) is not 512·n + 32)")
        }
        let body = Array(file.dropLast(32))
        guard Array(SHA256.hash(data: body)) == Array(file.suffix(32)) else {
            throw InvalidBackup(description: "the backup's SHA-256 does not match its contents")
        }
        guard Array(body.prefix(magic.count)) == magic else { throw InvalidBackup(description: "not a Statehouse backup") }
        var reader = ByteReader(body, offset: magic.count)
        let length = Int(clamping: try reader.readBigEndianUInt64("backup length"))
        let start = reader.offset
        guard length <= body.count - start else { throw InvalidBackup(description: "truncated backup") }
        return try SnapshotCodec.decode(Array(body[start..<(start + length)]))
    }
}

/// Writes a backup file piece by piece, byte for byte what ``BackupFile/encode(pairs:)`` makes of
/// the same pairs, with its SHA-256 computed as the bytes are taken: the server streams a backup
/// of a pinned RocksDB snapshot without holding the whole state in memory.
///
/// The file starts with the payload's length, so the pairs are read twice: once into a ``Size``,
/// then, in the same order, into ``add(key:value:)``.
public struct BackupEncoder {
    /// The number and bytes of the pairs a backup will hold.
    public struct Size: Sendable, Hashable {
        /// How many pairs.
        public private(set) var pairCount = 0
        /// The bytes of their keys and values.
        public private(set) var pairBytes = 0

        /// An empty backup.
        public init() {}

        /// Counts one more pair.
        public mutating func add(key: [UInt8], value: [UInt8]) {
            pairCount += 1
            pairBytes += key.count + value.count
        }

        /// The bytes before the padding: magic, length, pair count, and each pair with its
        /// two 32-bit lengths.
        var unpaddedBytes: Int { BackupFile.magic.count + 8 + 8 + 8 * pairCount + pairBytes }
        var paddingBytes: Int { (512 - unpaddedBytes % 512) % 512 }
        /// The size of the whole file, SHA-256 included.
        public var fileBytes: Int { unpaddedBytes + paddingBytes + 32 }
    }

    /// The pairs were not the ones counted into the ``Size``.
    public struct SizeMismatch: Error, CustomStringConvertible {
        /// What differed.
        public var description: String
    }

    /// The size of the whole file.
    public let fileBytes: Int
    private let size: Size
    private var added = Size()
    private var pending: [UInt8]
    private var hasher = SHA256()
    private var isFinished = false
    /// The bytes handed out by ``take(upTo:)`` so far.
    public private(set) var takenBytes = 0

    /// Starts a backup of pairs of the given size.
    public init(size: Size) {
        self.size = size
        fileBytes = size.fileBytes
        pending = BackupFile.magic
        pending.appendBigEndian(UInt64(size.unpaddedBytes - BackupFile.magic.count - 8))
        pending.appendLittleEndian(UInt64(size.pairCount))
        hasher.update(data: pending)
    }

    /// The bytes encoded but not yet taken.
    public var pendingBytes: Int { pending.count }

    /// Whether every byte of the file has been taken.
    public var isComplete: Bool { isFinished && pending.isEmpty }

    /// Encodes the next pair.
    public mutating func add(key: [UInt8], value: [UInt8]) {
        precondition(!isFinished, "a pair added to a finished backup")
        added.add(key: key, value: value)
        let start = pending.count
        pending.appendUInt32LengthPrefixed(key)
        pending.appendUInt32LengthPrefixed(value)
        hasher.update(data: pending[start...])
    }

    /// Ends the pairs: encodes the padding and the SHA-256 of the file.
    ///
    /// - Throws: ``SizeMismatch`` if the pairs added differ in number or bytes from the size.
    public mutating func finish() throws(SizeMismatch) {
        guard added == size else {
            throw SizeMismatch(
                description: "the backup was sized for \(size.pairCount) pairs of \(size.pairBytes) bytes "
                    + "but got \(added.pairCount) pairs of \(added.pairBytes) bytes")
        }
        guard !isFinished else { return }
        let padding = [UInt8](repeating: 0, count: size.paddingBytes)
        hasher.update(data: padding)
        pending += padding
        pending += Array(hasher.finalize())
        isFinished = true
    }

    /// Removes and returns up to `limit` encoded bytes, the next piece of the file.
    public mutating func take(upTo limit: Int) -> [UInt8] {
        let count = min(limit, pending.count)
        let piece = Array(pending[..<count])
        pending.removeFirst(count)
        takenBytes += count
        return piece
    }
}
