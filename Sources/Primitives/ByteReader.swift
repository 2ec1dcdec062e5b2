/// An error thrown when bytes are not a valid encoding: a truncated or malformed record, log
/// entry, message or snapshot.
public struct ByteDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was malformed, naming the field or type being decoded.
    public var reason: String
    /// The byte offset in the input where the malformed item starts, when one position is to blame.
    public var offset: Int?

    /// Creates a decoding error.
    ///
    /// - Parameters:
    ///   - reason: What was malformed.
    ///   - offset: The byte offset in the input where the malformed item starts, if known.
    public init(_ reason: String, offset: Int? = nil) {
        self.reason = reason
        self.offset = offset
    }

    /// A textual description, including the offset when there is one.
    public var description: String {
        if let offset { "malformed data at byte \(offset): \(reason)" } else { "malformed data: \(reason)" }
    }
}

/// A bounds-checked cursor over an encoding written with the `append…` methods of `[UInt8]`.
///
/// Every read either returns a value and moves past it, or throws ``ByteDecodingError`` naming
/// the field and the offset where it starts; nothing reads past the end. `field` arguments name
/// what is being read, for the error message only.
public struct ByteReader: Sendable {
    @usableFromInline let bytes: [UInt8]
    @usableFromInline var position: Int

    /// The offset of the next unread byte.
    @inlinable public var offset: Int { position }

    /// Starts reading `bytes` at `offset`.
    @inlinable
    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.position = offset
    }

    /// The number of unread bytes.
    @inlinable public var remaining: Int { bytes.count - position }

    /// Whether every byte has been read.
    @inlinable public var isAtEnd: Bool { offset == bytes.count }

    /// Fails unless every byte was read.
    @inlinable
    public func finish() throws(ByteDecodingError) {
        guard remaining == 0 else { throw ByteDecodingError("\(remaining) trailing byte(s)", offset: offset) }
    }

    /// Reads one byte.
    @inlinable
    public mutating func readByte(_ field: String = "byte") throws(ByteDecodingError) -> UInt8 {
        guard offset < bytes.count else { throw ByteDecodingError("truncated \(field)", offset: offset) }
        defer { position += 1 }
        return bytes[offset]
    }

    /// Reads a boolean written as one byte, 0 or 1; any other byte is refused.
    @inlinable
    public mutating func readBool(_ field: String = "boolean") throws(ByteDecodingError) -> Bool {
        let start = offset
        switch try readByte(field) {
        case 0: return false
        case 1: return true
        case let b: throw ByteDecodingError("invalid boolean \(b) for \(field)", offset: start)
        }
    }

    /// Reads a 64-bit integer written in 8 little-endian bytes.
    @inlinable
    public mutating func readLittleEndianUInt64(_ field: String = "integer") throws(ByteDecodingError) -> UInt64 {
        guard remaining >= 8 else { throw ByteDecodingError("truncated \(field)", offset: offset) }
        var value: UInt64 = 0
        for index in 0..<8 { value |= UInt64(bytes[offset + index]) << (8 * UInt64(index)) }
        position += 8
        return value
    }

    /// Reads a 64-bit integer written in 8 big-endian bytes.
    @inlinable
    public mutating func readBigEndianUInt64(_ field: String = "integer") throws(ByteDecodingError) -> UInt64 {
        guard remaining >= 8 else { throw ByteDecodingError("truncated \(field)", offset: offset) }
        var value: UInt64 = 0
        for index in offset..<(offset + 8) { value = (value << 8) | UInt64(bytes[index]) }
        position += 8
        return value
    }

    /// Reads a minimal unsigned LEB128 varint of at most 64 bits; a longer encoding of a value
    /// that has a shorter one is refused, so every value has one encoding.
    @inlinable
    public mutating func readVarint(_ field: String = "varint") throws(ByteDecodingError) -> UInt64 {
        let start = offset
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < bytes.count else { throw ByteDecodingError("truncated \(field)", offset: start) }
            let b = bytes[offset]
            position += 1
            if shift == 63 && b > 1 { throw ByteDecodingError("varint overflow in \(field)", offset: start) }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 {
                if b == 0 && shift > 0 { throw ByteDecodingError("non-minimal varint in \(field)", offset: start) }
                return result
            }
            shift += 7
        }
    }

    /// Reads a signed integer written as a zig-zag varint.
    @inlinable
    public mutating func readZigZag(_ field: String = "integer") throws(ByteDecodingError) -> Int64 {
        let u = try readVarint(field)
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    /// Reads a varint that must fit in 32 bits.
    @inlinable
    public mutating func readUInt32Varint(_ field: String = "integer") throws(ByteDecodingError) -> UInt32 {
        let start = offset
        let u = try readVarint(field)
        guard let v = UInt32(exactly: u) else { throw ByteDecodingError("\(field) exceeds 32 bits", offset: start) }
        return v
    }

    /// Reads a length or count written as a varint, which cannot exceed the unread bytes (every
    /// element takes at least one).
    @inlinable
    public mutating func readCount(_ field: String = "count") throws(ByteDecodingError) -> Int {
        let start = offset
        let n = try readVarint(field)
        guard n <= UInt64(remaining) else {
            throw ByteDecodingError("\(field) length \(n) exceeds the \(remaining) remaining byte(s)", offset: start)
        }
        return Int(n)
    }

    /// Reads `count` bytes.
    @inlinable
    public mutating func readBytes(count: Int, _ field: String = "bytes") throws(ByteDecodingError) -> [UInt8] {
        guard count >= 0, remaining >= count else { throw ByteDecodingError("truncated \(field)", offset: offset) }
        defer { position += count }
        return Array(bytes[offset..<(offset + count)])
    }

    /// Reads a byte string written by `appendLengthPrefixed(_:)`: a varint length, then the bytes.
    @inlinable
    public mutating func readLengthPrefixed(_ field: String = "bytes") throws(ByteDecodingError) -> [UInt8] {
        let n = try readCount(field)
        defer { position += n }
        return Array(bytes[offset..<(offset + n)])
    }

    /// Reads a byte string written by `appendUInt32LengthPrefixed(_:)`: a 32-bit little-endian
    /// length, then the bytes.
    @inlinable
    public mutating func readUInt32LengthPrefixed(_ field: String = "bytes") throws(ByteDecodingError) -> [UInt8] {
        let start = offset
        guard remaining >= 4 else { throw ByteDecodingError("truncated \(field) length", offset: start) }
        var length = 0
        for index in 0..<4 { length |= Int(bytes[offset + index]) << (8 * index) }
        guard remaining - 4 >= length else {
            throw ByteDecodingError("\(field) length \(length) exceeds the \(remaining - 4) remaining byte(s)", offset: start)
        }
        defer { position += 4 + length }
        return Array(bytes[(offset + 4)..<(offset + 4 + length)])
    }

    /// Reads a UTF-8 string written by `appendLengthPrefixed(_:)`; invalid UTF-8 is refused, so
    /// that every string has one encoding.
    @inlinable
    public mutating func readString(_ field: String = "string") throws(ByteDecodingError) -> String {
        let start = offset
        guard let string = String(validating: try readLengthPrefixed(field), as: UTF8.self) else {
            throw ByteDecodingError("invalid UTF-8 in \(field)", offset: start)
        }
        return string
    }
}
