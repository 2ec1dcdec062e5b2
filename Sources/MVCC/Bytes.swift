/// Compares two byte strings lexicographically (unsigned bytes, shorter prefix first).
///
/// - Returns: A negative number, zero or a positive number.
@inline(__always)
func compareBytes(_ a: [UInt8], _ b: [UInt8]) -> Int {
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            let n = Swift.min(pa.count, pb.count)
            var i = 0
            while i < n {
                let x = pa[i]
                let y = pb[i]
                if x != y { return x < y ? -1 : 1 }
                i += 1
            }
            return pa.count - pb.count
        }
    }
}

/// A key interval in etcd's `key`/`range_end` convention.
enum KeyRange: Hashable, Sendable {
    /// Exactly one key.
    case single([UInt8])
    /// Every key greater than or equal to the bound (`range_end == "\0"`).
    case from([UInt8])
    /// Keys in `[lower, upper)`; empty if `upper <= lower`.
    case interval([UInt8], [UInt8])

    /// Creates the interval etcd reads for `key` and `rangeEnd`.
    init(key: [UInt8], rangeEnd: [UInt8]) {
        if rangeEnd.isEmpty {
            self = .single(key)
        } else if rangeEnd.count == 1 && rangeEnd[0] == 0 {
            self = .from(key)
        } else {
            self = .interval(key, rangeEnd)
        }
    }

    /// The smallest key in the interval.
    var lowerBound: [UInt8] {
        switch self {
        case .single(let k), .from(let k), .interval(let k, _): return k
        }
    }

    /// Returns whether `key` lies in the interval.
    func contains(_ key: [UInt8]) -> Bool {
        switch self {
        case .single(let k): return k == key
        case .from(let k): return compareBytes(key, k) >= 0
        case .interval(let lo, let hi): return compareBytes(key, lo) >= 0 && compareBytes(key, hi) < 0
        }
    }

    /// Returns whether `key` is past the end of the interval (for a forward scan from the lower bound).
    func isPastEnd(_ key: [UInt8]) -> Bool {
        switch self {
        case .single(let k): return compareBytes(key, k) > 0
        case .from: return false
        case .interval(_, let hi): return compareBytes(key, hi) >= 0
        }
    }
}

// MARK: - Fixed-width and variable-width integer coding

extension Array where Element == UInt8 {
    /// Appends `value` as 8 big-endian bytes.
    @inline(__always)
    mutating func appendBigEndian(_ value: UInt64) {
        var shift: UInt64 = 56
        while true {
            append(UInt8(truncatingIfNeeded: value >> shift))
            if shift == 0 { break }
            shift -= 8
        }
    }

    /// Appends `value` as an unsigned LEB128 varint.
    @inline(__always)
    mutating func appendVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        append(UInt8(v))
    }

    /// Appends `value` as a zig-zag varint.
    @inline(__always)
    mutating func appendZigZag(_ value: Int64) {
        appendVarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }
}

/// A cursor decoding bytes written with the `append…` helpers.
struct ByteReader {
    let bytes: [UInt8]
    var offset: Int

    init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var isAtEnd: Bool { offset == bytes.count }

    mutating func readByte() throws(BackendFormatError) -> UInt8 {
        guard offset < bytes.count else { throw BackendFormatError("truncated record") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func readBigEndian() throws(BackendFormatError) -> UInt64 {
        guard bytes.count - offset >= 8 else { throw BackendFormatError("truncated integer") }
        var v: UInt64 = 0
        for i in offset..<(offset + 8) {
            v = (v << 8) | UInt64(bytes[i])
        }
        offset += 8
        return v
    }

    mutating func readVarint() throws(BackendFormatError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try readByte()
            guard shift < 64 else { throw BackendFormatError("varint overflow") }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
        }
    }

    mutating func readZigZag() throws(BackendFormatError) -> Int64 {
        let u = try readVarint()
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    mutating func readBytes(count: Int) throws(BackendFormatError) -> [UInt8] {
        guard count >= 0, bytes.count - offset >= count else { throw BackendFormatError("truncated bytes") }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }
}
