import Primitives

/// `Maintenance.Hash` over backend pairs fed one at a time: after every pair of a state has been
/// fed in key order, ``value`` equals that state's ``StateStore/digest()``.
///
/// It lets the server hash a pinned RocksDB snapshot of the state off the member loop, never
/// holding more than one pair in memory.
public struct StateDigest: Sendable {
    private var crc = CRC32(.ieee)

    /// Starts an empty digest.
    public init() {}

    /// Adds the next backend pair (in key order).
    public mutating func update(key: [UInt8], value: [UInt8]) {
        crc.update(key)
        crc.update(value)
    }

    /// The digest of the pairs fed so far.
    public var value: UInt32 { crc.value }
}

/// `Maintenance.HashKV` over backend pairs fed one at a time: after the version pairs (`k/…`) of
/// a state have been fed in key order, ``finish()`` equals that state's
/// ``StateStore/hashKV(revision:)``.
///
/// Version keys hold the revision big-endian, so key order is revision order and the caller may
/// stop at the first pair for which ``update(key:value:)`` returns `false`.
public struct KeyValueDigest: Sendable {
    /// The highest main revision included.
    public let upTo: Int64
    private let currentRevision: Int64
    private let compactedRevision: Int64
    private var crc = CRC32(.castagnoli)

    /// Starts the digest of a state at `currentRevision`, compacted at `compactedRevision`
    /// (as ``storedRevisions(current:compacted:)`` reads them from its backend).
    ///
    /// - Parameter revision: The revision to hash up to; 0 or below means the current revision.
    /// - Throws: ``StateError/compacted`` if `0 < revision <= compactedRevision`,
    ///   ``StateError/futureRevision`` if `revision > currentRevision`.
    public init(revision: Int64, currentRevision: Int64, compactedRevision: Int64) throws(StateError) {
        if revision > 0 && revision <= compactedRevision { throw .compacted }
        if revision > currentRevision { throw .futureRevision }
        upTo = revision <= 0 ? currentRevision : revision
        self.currentRevision = currentRevision
        self.compactedRevision = compactedRevision
    }

    /// Adds the next backend pair. Pairs other than key versions are ignored.
    ///
    /// - Returns: `false` once the pair's revision is past ``upTo``: it and every later version
    ///   pair are not part of the digest.
    public mutating func update(key: [UInt8], value: [UInt8]) -> Bool {
        guard key.count == 18, BackendLayout.hasPrefix(key, BackendLayout.versionPrefix) else { return true }
        let main = key[2..<10].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard Int64(bitPattern: main) <= upTo else { return false }
        crc.update(key)
        crc.update(value)
        return true
    }

    /// The response for the pairs fed so far, followed by the compaction revision.
    public func finish() -> HashKVResponse {
        var crc = self.crc
        var tail: [UInt8] = []
        tail.appendBigEndian(UInt64(bitPattern: compactedRevision))
        crc.update(tail)
        return HashKVResponse(revision: currentRevision, hash: crc.value, compactRevision: compactedRevision)
    }

    /// Reads the current and compaction revisions from the values a backend holds under
    /// ``BackendLayout/revisionKey`` and ``BackendLayout/compactedKey`` (`nil` if absent).
    ///
    /// - Throws: ``ByteDecodingError`` if a value is not an 8-byte integer.
    public static func storedRevisions(
        current: [UInt8]?, compacted: [UInt8]?
    ) throws(ByteDecodingError) -> (current: Int64, compacted: Int64) {
        (
            try current.map { value throws(ByteDecodingError) in try BackendLayout.decodeInt(value) } ?? 1,
            try compacted.map { value throws(ByteDecodingError) in try BackendLayout.decodeInt(value) } ?? -1
        )
    }
}
