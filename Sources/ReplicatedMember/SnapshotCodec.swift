public import Primitives

/// Encodes the state machine's backend pairs as snapshot data, and back. The same encoding is
/// the body of a backup file (`Maintenance.Snapshot`): a 64-bit little-endian count, then each
/// key and value with a 32-bit little-endian length.
public enum SnapshotCodec {
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
