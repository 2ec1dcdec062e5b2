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
