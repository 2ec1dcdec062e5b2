import Primitives

/// Member and cluster IDs.
///
/// These are Statehouse's own hashes, not etcd's (etcd takes the first 8 bytes of a SHA-1), so a
/// Statehouse member's ID differs from the ID etcd would give the same member. They are
/// deterministic and portable: the same URLs and token give the same IDs on every machine and in
/// every version, which existing data directories rely on, so the functions must never change.
extension ServerConfiguration {
    /// The ID of a member with `peerURLs` in the cluster of `token`: never 0 (Raft's "no member").
    ///
    /// The hash is FNV-1a 64 over the UTF-8 bytes of the URLs sorted by their bytes and joined by
    /// `,`, then a 0 byte, then the token's UTF-8 bytes; the result goes through SplitMix64's
    /// finalizer, and a 0 becomes 1. Pass URLs in normal form (as ``InitialMember/peerURLs``)
    /// for IDs that match the configuration's.
    public static func memberID(peerURLs: [String], token: String) -> UInt64 {
        var hash = FNV1a64()
        hash.append(sortedURLs(peerURLs).joined(separator: ",").utf8)
        hash.append(0)
        hash.append(token.utf8)
        return finalized(hash.value)
    }

    /// The ID of the cluster of `memberIDs` started with `token`: never 0.
    ///
    /// The hash is FNV-1a 64 over the member IDs sorted in increasing order, each as 8 big-endian
    /// bytes, then a 0 byte, then the token's UTF-8 bytes; the result goes through SplitMix64's
    /// finalizer, and a 0 becomes 1.
    public static func clusterID(memberIDs: [UInt64], token: String) -> UInt64 {
        var hash = FNV1a64()
        for id in memberIDs.sorted() {
            var bytes: [UInt8] = []
            bytes.appendBigEndian(id)
            hash.append(bytes)
        }
        hash.append(0)
        hash.append(token.utf8)
        return finalized(hash.value)
    }

    /// SplitMix64's finalizer applied to `value`, with 0 mapped to 1.
    static func finalized(_ value: UInt64) -> UInt64 {
        let z = SeededGenerator.mix(value)
        return z == 0 ? 1 : z
    }
}

/// The 64-bit FNV-1a hash of a byte stream.
struct FNV1a64 {
    /// The hash of the bytes appended so far.
    private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    /// Adds `byte` to the hash.
    mutating func append(_ byte: UInt8) {
        value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
    }

    /// Adds `bytes` to the hash, in order.
    mutating func append(_ bytes: some Sequence<UInt8>) {
        for byte in bytes { append(byte) }
    }
}
