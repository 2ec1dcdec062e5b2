import CCRC32C

/// A 32-bit cyclic redundancy check over one of two polynomials, deterministic across processes
/// and platforms. CRC-32C uses the processor's instruction where there is one (SSE4.2), with
/// the same results as the tables.
///
/// - ``castagnoli`` (CRC-32C) digests the key space for `HashKV`, as etcd's `crc32.Castagnoli`.
/// - ``ieee`` (CRC-32 of IEEE 802.3) digests the whole backend for `Hash`, as etcd's
///   `crc32.IEEE`.
public struct CRC32: Sendable {
    /// A reflected polynomial and its lookup tables.
    public struct Polynomial: Sendable {
        /// Eight tables of 256 entries, one after the other, for slicing-by-8: table 0 is the
        /// byte-at-a-time table; entry `n` of table `k` is the CRC of byte `n` followed by `k`
        /// zero bytes.
        @usableFromInline let table: [UInt32]
        /// Whether the processor's CRC-32C instruction computes this polynomial.
        public let usesHardware: Bool

        /// Builds the tables of the reflected polynomial `reversed`.
        init(reversed: UInt32, hardware: Bool = false) {
            usesHardware = hardware
            var table = (0..<256).map { n -> UInt32 in
                var c = UInt32(n)
                for _ in 0..<8 { c = (c & 1) != 0 ? (reversed ^ (c >> 1)) : (c >> 1) }
                return c
            }
            for k in 1..<8 {
                for n in 0..<256 {
                    let previous = table[(k - 1) * 256 + n]
                    table.append((previous >> 8) ^ table[Int(previous & 0xFF)])
                }
            }
            self.table = table
        }

        /// CRC-32C (Castagnoli).
        public static let castagnoli = Polynomial(reversed: 0x82F6_3B78, hardware: statehouse_crc32c_hardware_available() != 0)
        /// CRC-32C computed from the tables only (to check the instruction against them).
        public static let castagnoliTables = Polynomial(reversed: 0x82F6_3B78)
        /// CRC-32 (IEEE 802.3).
        public static let ieee = Polynomial(reversed: 0xEDB8_8320)
    }

    @usableFromInline let table: [UInt32]
    @usableFromInline let usesHardware: Bool
    @usableFromInline var state: UInt32 = 0xFFFF_FFFF

    /// Starts a checksum over `polynomial`.
    public init(_ polynomial: Polynomial) {
        table = polynomial.table
        usesHardware = polynomial.usesHardware
    }

    /// Feeds bytes into the checksum.
    @inlinable
    public mutating func update(_ bytes: [UInt8]) {
        update(bytes[...])
    }

    /// Feeds a slice of bytes into the checksum, without copying it.
    @inlinable
    public mutating func update(_ bytes: ArraySlice<UInt8>) {
        bytes.withUnsafeBufferPointer { update(UnsafeRawBufferPointer($0)) }
    }

    /// Feeds raw bytes into the checksum: with the processor's CRC-32C instruction when the
    /// polynomial uses it, otherwise from the tables eight bytes at a time (slicing-by-8), then
    /// the rest one at a time.
    @inlinable
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        if usesHardware {
            if let base = bytes.baseAddress { state = statehouse_crc32c_hardware_update(state, base, bytes.count) }
            return
        }
        var c = state
        table.withUnsafeBufferPointer { t in
            var i = 0
            let count = bytes.count
            while count - i >= 8 {
                let low =
                    c
                    ^ (UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
                let high = UInt32(bytes[i + 4]) | UInt32(bytes[i + 5]) << 8 | UInt32(bytes[i + 6]) << 16 | UInt32(bytes[i + 7]) << 24
                c =
                    t[7 * 256 + Int(low & 0xFF)] ^ t[6 * 256 + Int((low >> 8) & 0xFF)] ^ t[5 * 256 + Int((low >> 16) & 0xFF)]
                    ^ t[4 * 256 + Int(low >> 24)] ^ t[3 * 256 + Int(high & 0xFF)] ^ t[2 * 256 + Int((high >> 8) & 0xFF)]
                    ^ t[256 + Int((high >> 16) & 0xFF)] ^ t[Int(high >> 24)]
                i += 8
            }
            while i < count {
                c = t[Int((c ^ UInt32(bytes[i])) & 0xFF)] ^ (c >> 8)
                i += 1
            }
        }
        state = c
    }

    /// The checksum of the bytes fed so far.
    @inlinable public var value: UInt32 { state ^ 0xFFFF_FFFF }

    /// Returns the checksum of `bytes` over `polynomial`.
    public static func checksum(_ bytes: [UInt8], _ polynomial: Polynomial) -> UInt32 {
        var crc = CRC32(polynomial)
        crc.update(bytes)
        return crc.value
    }
}
