/// A 32-bit cyclic redundancy check over one of two polynomials, deterministic across processes
/// and platforms.
///
/// - ``castagnoli`` (CRC-32C) digests the key space for `HashKV`, as etcd's `crc32.Castagnoli`.
/// - ``ieee`` (CRC-32 of IEEE 802.3) digests the whole backend for `Hash`, as etcd's
///   `crc32.IEEE`.
public struct CRC32: Sendable {
    /// A reflected polynomial and its lookup table.
    public struct Polynomial: Sendable {
        @usableFromInline let table: [UInt32]

        /// Builds the table of the reflected polynomial `reversed`.
        init(reversed: UInt32) {
            table = (0..<256).map { n -> UInt32 in
                var c = UInt32(n)
                for _ in 0..<8 { c = (c & 1) != 0 ? (reversed ^ (c >> 1)) : (c >> 1) }
                return c
            }
        }

        /// CRC-32C (Castagnoli).
        public static let castagnoli = Polynomial(reversed: 0x82F6_3B78)
        /// CRC-32 (IEEE 802.3).
        public static let ieee = Polynomial(reversed: 0xEDB8_8320)
    }

    @usableFromInline let table: [UInt32]
    @usableFromInline var state: UInt32 = 0xFFFF_FFFF

    /// Starts a checksum over `polynomial`.
    public init(_ polynomial: Polynomial) { table = polynomial.table }

    /// Feeds bytes into the checksum.
    @inlinable
    public mutating func update(_ bytes: [UInt8]) {
        update(bytes[...])
    }

    /// Feeds a slice of bytes into the checksum, without copying it.
    @inlinable
    public mutating func update(_ bytes: ArraySlice<UInt8>) {
        var c = state
        table.withUnsafeBufferPointer { t in
            bytes.withUnsafeBufferPointer { input in
                for b in input { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
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
