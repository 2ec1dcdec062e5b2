/// Writing the encodings that ``ByteReader`` reads: fixed-width integers in either byte order,
/// LEB128 and zig-zag varints, and length-prefixed byte strings.
///
/// Raft's log entries, hard state and messages use little-endian integers and 32-bit lengths;
/// the state machine's records and wire encoding use varints, and big-endian integers where the
/// bytes must sort as the numbers do (RocksDB keys).
extension [UInt8] {
    /// Appends a boolean as one byte, 0 or 1.
    @inlinable
    public mutating func appendBool(_ value: Bool) { append(value ? 1 : 0) }

    /// Appends `value` as 8 little-endian bytes.
    @inlinable
    public mutating func appendLittleEndian(_ value: UInt64) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    /// Appends `value` as 8 big-endian bytes, so that byte order sorts as numeric order.
    @inlinable
    public mutating func appendBigEndian(_ value: UInt64) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    /// Appends `value` as a minimal unsigned LEB128 varint.
    @inlinable
    public mutating func appendVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        append(UInt8(v))
    }

    /// Appends `value` as a zig-zag varint (small magnitudes, of either sign, take few bytes).
    @inlinable
    public mutating func appendZigZag(_ value: Int64) {
        appendVarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    /// Appends a varint length, then `bytes`.
    @inlinable
    public mutating func appendLengthPrefixed(_ bytes: [UInt8]) {
        appendVarint(UInt64(bytes.count))
        append(contentsOf: bytes)
    }

    /// Appends a 32-bit little-endian length, then `bytes`.
    @inlinable
    public mutating func appendUInt32LengthPrefixed(_ bytes: [UInt8]) {
        Swift.withUnsafeBytes(of: UInt32(bytes.count).littleEndian) { append(contentsOf: $0) }
        append(contentsOf: bytes)
    }
}
