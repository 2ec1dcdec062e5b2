public import Primitives

/// Encodes the state machine's backend pairs as snapshot data, and back.
///
/// The plain encoding (``encode(_:)``) is the body of a backup file (`Maintenance.Snapshot`): a
/// 64-bit little-endian count, then each key and value with a 32-bit little-endian length.
///
/// Snapshot data a leader sends to a follower, and that the follower stores, is checksummed
/// (``encodeChecksummed(_:)``): eight `0xFF` bytes (a count no plain encoding can have), a
/// version byte, the CRC-32C of the plain encoding (32-bit little-endian), then the plain
/// encoding. ``decodeChecksummed(_:)`` verifies the checksum, and still reads plain data, as
/// members stored it before snapshots were checksummed.
public enum SnapshotCodec {
    /// The bytes that start checksummed snapshot data.
    static let checksummedMarker = [UInt8](repeating: 0xFF, count: 8)
    /// The version of the checksummed format this build writes.
    static let checksummedVersion: UInt8 = 1
    /// The marker, version and checksum before the plain encoding.
    static let checksummedHeaderBytes = 8 + 1 + 4

    /// Encodes backend pairs as checksummed snapshot data.
    public static func encodeChecksummed(_ pairs: [([UInt8], [UInt8])]) -> [UInt8] {
        let body = encode(pairs)
        let crc = CRC32.checksum(body, .castagnoli)
        var out = checksummedMarker
        out.reserveCapacity(checksummedHeaderBytes + body.count)
        out.append(checksummedVersion)
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: crc >> UInt32(shift))) }
        return out + body
    }

    /// Decodes snapshot data, checksummed or plain, verifying the checksum first.
    ///
    /// - Throws: ``ByteDecodingError`` if the checksum does not match, the version is unknown,
    ///   or the data is not a snapshot.
    public static func decodeChecksummed(_ data: [UInt8]) throws(ByteDecodingError) -> [([UInt8], [UInt8])] {
        guard data.starts(with: checksummedMarker) else { return try decode(data) }
        guard data.count >= checksummedHeaderBytes else {
            throw ByteDecodingError("checksummed snapshot data of \(data.count) bytes is shorter than its header", offset: 0)
        }
        guard data[8] == checksummedVersion else {
            throw ByteDecodingError("snapshot data version \(data[8]) is not supported", offset: 8)
        }
        let stored = (0..<4).reduce(UInt32(0)) { $0 | UInt32(data[9 + $1]) << UInt32(8 * $1) }
        let body = Array(data[checksummedHeaderBytes...])
        let computed = CRC32.checksum(body, .castagnoli)
        guard stored == computed else {
            throw ByteDecodingError(
                "snapshot data checksum mismatch (stored \(String(stored, radix: 16)), computed \(String(computed, radix: 16)))",
                offset: 9)
        }
        return try decode(body)
    }

    /// Encodes backend pairs.
    public static func encode(_ pairs: [([UInt8], [UInt8])]) -> [UInt8] {
        var out: [UInt8] = []
        out.appendLittleEndian(UInt64(pairs.count))
        for (key, value) in pairs {
            out.appendUInt32LengthPrefixed(key)
            out.appendUInt32LengthPrefixed(value)
        }
        return out
    }

    /// Decodes backend pairs.
    ///
    /// - Throws: ``ByteDecodingError`` if the data is not a snapshot.
    public static func decode(_ data: [UInt8]) throws(ByteDecodingError) -> [([UInt8], [UInt8])] {
        var reader = ByteReader(data)
        let count = try reader.readLittleEndianUInt64("snapshot pair count")
        guard count <= UInt64(data.count) else {
            throw ByteDecodingError("snapshot pair count \(count) exceeds the data", offset: 0)
        }
        var pairs: [([UInt8], [UInt8])] = []
        pairs.reserveCapacity(Int(count))
        for _ in 0..<count {
            let key = try reader.readUInt32LengthPrefixed("snapshot key")
            let value = try reader.readUInt32LengthPrefixed("snapshot value")
            pairs.append((key, value))
        }
        try reader.finish()
        return pairs
    }
}
