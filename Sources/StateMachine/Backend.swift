import Primitives

/// The backend key layout and record encoding of ``StateStore``.
///
/// The store owns every backend key starting with `k/`, `l/` or `m/`; other keys are ignored on
/// restore (the caller may keep, for example, the Raft applied index under another prefix).
/// All integers in keys are 8-byte big-endian, so byte order equals numeric order.
///
/// | key | value |
/// |---|---|
/// | `k/` main(8) sub(8) | a version record (below) |
/// | `l/` (id XOR 2^63)(8) | a lease record (below) |
/// | `m/alarm/` member(8) type(1) | `0x01` (an alarm raised on a member) |
/// | `m/auth/enabled` | `0x01` while authentication is enabled (absent otherwise) |
/// | `m/auth/revision` | the auth revision, 8-byte big-endian (absent means 1) |
/// | `m/auth/role/` name | a role record (`BackendLayout.encode(role:)`) |
/// | `m/auth/user/` name | a user record (`BackendLayout.encode(user:)`) |
/// | `m/compacted` | compaction revision, 8-byte big-endian (absent if never compacted) |
/// | `m/leaseseq` | state of the automatic lease ID sequence, 8-byte big-endian (absent if unused) |
/// | `m/member/` id(8) | learner flag (0 or 1), then the member's attributes (``ClusterMember/encodedAttributes()``) |
/// | `m/revision` | current store revision, 8-byte big-endian (absent means 1) |
/// | `m/session/` (id XOR 2^63)(8) | a client session's header (``SessionRecord``; see ``BackendLayout/encode(session:)``) |
/// | `m/session/` (id XOR 2^63)(8) sequence(8) | one remembered answer of a session |
///
/// Version record: `0x01` (format), flags (bit 0: tombstone), varint key length, key bytes,
/// zig-zag varint create revision, zig-zag varint version, zig-zag varint lease, varint value
/// length, value bytes. A tombstone has create revision, version and lease 0 and an empty value.
///
/// Lease record: `0x01` (format), then ID, granted TTL and checkpointed remaining TTL, each
/// 8-byte big-endian two's complement.
public enum BackendLayout {
    /// The prefix of version records.
    public static let versionPrefix: [UInt8] = Array("k/".utf8)
    /// The prefix of lease records.
    public static let leasePrefix: [UInt8] = Array("l/".utf8)
    /// The key of the current revision.
    public static let revisionKey: [UInt8] = Array("m/revision".utf8)
    /// The key of the compaction revision.
    public static let compactedKey: [UInt8] = Array("m/compacted".utf8)
    /// The key of the lease ID sequence.
    public static let leaseSequenceKey: [UInt8] = Array("m/leaseseq".utf8)

    /// Returns the backend key of the version stored at `revision`.
    public static func versionKey(_ revision: Revision) -> [UInt8] {
        var key = versionPrefix
        key.reserveCapacity(18)
        key.appendBigEndian(UInt64(bitPattern: revision.main))
        key.appendBigEndian(UInt64(bitPattern: revision.sub))
        return key
    }

    /// Returns the backend key of a lease.
    public static func leaseKey(_ id: Int64) -> [UInt8] {
        var key = leasePrefix
        key.reserveCapacity(10)
        key.appendBigEndian(UInt64(bitPattern: id) ^ (1 << 63))
        return key
    }

    static func encodeInt(_ value: Int64) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8)
        out.appendBigEndian(UInt64(bitPattern: value))
        return out
    }

    static func decodeInt(_ bytes: [UInt8]) throws(ByteDecodingError) -> Int64 {
        guard bytes.count == 8 else { throw ByteDecodingError("integer value must be 8 bytes") }
        var reader = ByteReader(bytes)
        return Int64(bitPattern: try reader.readBigEndianUInt64())
    }

    /// Encodes a version record of `key` whose value is `value`.
    static func encode(key: [UInt8], record: VersionRecord, value: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(key.count + value.count + 12)
        out.append(1)
        out.append(record.isTombstone ? 1 : 0)
        out.appendVarint(UInt64(key.count))
        out.append(contentsOf: key)
        out.appendZigZag(record.createRevision)
        out.appendZigZag(record.version)
        out.appendZigZag(record.lease)
        out.appendVarint(UInt64(value.count))
        out.append(contentsOf: value)
        return out
    }

    /// Decodes a version record; its value is `nil` (not resident) unless `keepingValue`, or
    /// for a tombstone.
    static func decodeVersion(
        key: [UInt8], value: [UInt8], keepingValue: Bool = true
    ) throws(ByteDecodingError) -> (
        key: [UInt8], record: VersionRecord
    ) {
        guard key.count == 18 else { throw ByteDecodingError("version key must be 18 bytes") }
        var keyReader = ByteReader(key, offset: 2)
        let main = Int64(bitPattern: try keyReader.readBigEndianUInt64())
        let sub = Int64(bitPattern: try keyReader.readBigEndianUInt64())
        var reader = ByteReader(value)
        guard try reader.readByte() == 1 else { throw ByteDecodingError("unknown version record format") }
        let flags = try reader.readByte()
        let userKey = try reader.readBytes(count: Int(clamping: try reader.readVarint()))
        let createRevision = try reader.readZigZag()
        let version = try reader.readZigZag()
        let lease = try reader.readZigZag()
        let userValue = try reader.readBytes(count: Int(clamping: try reader.readVarint()))
        guard reader.isAtEnd, !userKey.isEmpty else { throw ByteDecodingError("malformed version record") }
        let record = VersionRecord(
            revision: Revision(main: main, sub: sub),
            createRevision: createRevision,
            version: version,
            lease: lease,
            value: keepingValue || flags & 1 != 0 ? userValue : nil,
            isTombstone: flags & 1 != 0
        )
        return (userKey, record)
    }

    static func encode(lease: Lease) -> [UInt8] {
        var out: [UInt8] = [1]
        out.reserveCapacity(25)
        out.appendBigEndian(UInt64(bitPattern: lease.id))
        out.appendBigEndian(UInt64(bitPattern: lease.ttl))
        out.appendBigEndian(UInt64(bitPattern: lease.remainingTTL))
        return out
    }

    static func decodeLease(_ value: [UInt8]) throws(ByteDecodingError) -> Lease {
        var reader = ByteReader(value)
        guard try reader.readByte() == 1 else { throw ByteDecodingError("unknown lease record format") }
        let id = Int64(bitPattern: try reader.readBigEndianUInt64())
        let ttl = Int64(bitPattern: try reader.readBigEndianUInt64())
        let remaining = Int64(bitPattern: try reader.readBigEndianUInt64())
        guard reader.isAtEnd, id != 0 else { throw ByteDecodingError("malformed lease record") }
        return Lease(id: id, ttl: ttl, remainingTTL: remaining)
    }

    static func hasPrefix(_ bytes: [UInt8], _ prefix: [UInt8]) -> Bool {
        bytes.count >= prefix.count && bytes[0..<prefix.count].elementsEqual(prefix)
    }
}

extension StateStore {
    /// Returns the whole state as backend pairs in key order: exactly what the mutations applied
    /// so far have left in an initially empty backend. Used for Raft snapshots.
    ///
    /// - Complexity: O(v log n) for v retained versions and n keys.
    public func backendPairs() -> [([UInt8], [UInt8])] {
        var pairs: [([UInt8], [UInt8])] = []
        pairs.reserveCapacity(log.count + leaseTable.count + 3)
        forEachBackendPair { key, value in pairs.append((key, value)) }
        return pairs
    }

    /// Calls `body` with each backend pair of the whole state, in key order, without building
    /// the full list first (for streaming a large Raft snapshot).
    ///
    /// - Complexity: O(v log n) for v retained versions and n keys.
    public func forEachBackendPair<E: Error>(_ body: (_ key: [UInt8], _ value: [UInt8]) throws(E) -> Void) throws(E) {
        for logEntry in log {
            guard let entry = index.entry(for: logEntry.key), let i = entry.index(of: logEntry.revision) else {
                continue
            }
            let backendKey = BackendLayout.versionKey(logEntry.revision)
            try body(backendKey, encodedVersion(of: entry.history[i], key: entry.key, backendKey: backendKey))
        }
        for lease in leases() {
            try body(BackendLayout.leaseKey(lease.id), BackendLayout.encode(lease: lease))
        }
        for alarm in alarms() {
            try body(BackendLayout.alarmKey(alarm), [1])
        }
        try forEachAuthPair(body)
        if compactedRevision != -1 {
            try body(BackendLayout.compactedKey, BackendLayout.encodeInt(compactedRevision))
        }
        if leaseIDSequence != 0 {
            try body(BackendLayout.leaseSequenceKey, BackendLayout.encodeInt(Int64(bitPattern: leaseIDSequence)))
        }
        for member in members() {
            try body(BackendLayout.memberKey(member.id), BackendLayout.encode(member: member))
        }
        if currentRevision != 1 {
            try body(BackendLayout.revisionKey, BackendLayout.encodeInt(currentRevision))
        }
        try forEachSessionPair(body)
    }

    /// Rebuilds a store from backend pairs, as a RocksDB iterator yields them (key order is not
    /// required). Keys outside the store's prefixes are ignored.
    ///
    /// - Parameters:
    ///   - pairs: The backend pairs.
    ///   - configuration: The limits.
    ///   - backendReader: The backend the pairs were read from: values are then not kept in
    ///     memory but read back through it when needed. `nil` keeps every value in memory (the
    ///     pairs of a Raft snapshot, not yet written; see ``readValues(from:)``).
    /// - Throws: ``ByteDecodingError`` if a record cannot be decoded or the pairs are inconsistent.
    public init(
        restoringFrom pairs: some Sequence<([UInt8], [UInt8])>,
        configuration: Configuration = Configuration(),
        backendReader: (any BackendReader)? = nil
    ) throws(ByteDecodingError) {
        self.init(configuration: configuration, backendReader: backendReader)
        var versions: [(key: [UInt8], record: VersionRecord)] = []
        var storedRevision: Int64? = nil
        var sessionPairs: [([UInt8], [UInt8])] = []
        for (key, value) in pairs {
            if BackendLayout.hasPrefix(key, BackendLayout.versionPrefix) {
                let version = try BackendLayout.decodeVersion(key: key, value: value, keepingValue: backendReader == nil)
                residentBytes += version.record.residentBytes
                versions.append(version)
            } else if BackendLayout.hasPrefix(key, BackendLayout.leasePrefix) {
                let lease = try BackendLayout.decodeLease(value)
                guard BackendLayout.leaseKey(lease.id) == key else { throw ByteDecodingError("lease key mismatch") }
                leaseTable[lease.id] = lease
            } else if key == BackendLayout.revisionKey {
                storedRevision = try BackendLayout.decodeInt(value)
            } else if key == BackendLayout.compactedKey {
                compactedRevision = try BackendLayout.decodeInt(value)
            } else if key == BackendLayout.leaseSequenceKey {
                leaseIDSequence = UInt64(bitPattern: try BackendLayout.decodeInt(value))
            } else if BackendLayout.hasPrefix(key, BackendLayout.memberPrefix) {
                let member = try BackendLayout.decodeMember(key: key, value: value)
                memberTable[member.id] = member
            } else if BackendLayout.hasPrefix(key, BackendLayout.alarmPrefix) {
                alarmTable.insert(try BackendLayout.decodeAlarm(key: key))
            } else if BackendLayout.hasPrefix(key, BackendLayout.sessionPrefix) {
                sessionPairs.append((key, value))
            } else {
                _ = try restoreAuthPair(key: key, value: value)
            }
        }
        try restoreSessions(sessionPairs)
        for session in sessionTable.keys where leaseTable[session] == nil {
            throw ByteDecodingError("session \(session) has no lease")
        }
        var sorted = true
        for i in versions.indices.dropFirst() where !(versions[i - 1].record.revision < versions[i].record.revision) {
            sorted = false
            break
        }
        if !sorted {
            versions.sort { $0.record.revision < $1.record.revision }
        }

        log.reserveCapacity(versions.count)
        for (key, record) in versions {
            log.append(LogEntry(revision: record.revision, key: key, isTombstone: record.isTombstone))
        }
        // Group versions by key: order them by key, keeping revision order within a key (the
        // positions break ties), unless they already are (keys written in order, as a bulk
        // load writes them), then take runs of equal keys.
        var order = Array(versions.indices)
        var keyOrdered = true
        for i in versions.indices.dropFirst() where compareBytes(versions[i - 1].key, versions[i].key) > 0 {
            keyOrdered = false
            break
        }
        if !keyOrdered {
            order.sort { a, b in
                let c = compareBytes(versions[a].key, versions[b].key)
                return c != 0 ? c < 0 : a < b
            }
        }
        var entries: [KeyEntry] = []
        var start = 0
        while start < order.count {
            let key = versions[order[start]].key
            var end = start + 1
            while end < order.count && versions[order[end]].key == key { end += 1 }
            let entry = KeyEntry(key: key, history: order[start..<end].map { versions[$0].record })
            if let live = entry.live, live.lease != 0, leaseTable[live.lease] != nil {
                leaseKeys[live.lease, default: []].insert(key)
            }
            entries.append(entry)
            start = end
        }
        index = KeyIndex(sortedEntries: entries)

        let lastMain = log.last?.revision.main ?? 1
        let revision = storedRevision ?? 1
        guard revision >= lastMain else {
            throw ByteDecodingError("stored revision \(revision) is below the newest version \(lastMain)")
        }
        guard compactedRevision <= revision else {
            throw ByteDecodingError(
                "compaction revision \(compactedRevision) is above the stored revision \(revision)"
            )
        }
        currentRevision = revision
    }

    /// Replaces the whole state with the one described by backend pairs, keeping the
    /// configuration and the ``backendReader``: the restored values stay in memory until the
    /// next ``releaseDurableValues()``, by which the caller must have written the pairs.
    ///
    /// - Throws: ``ByteDecodingError``; the store is then unchanged.
    public mutating func restore(from pairs: some Sequence<([UInt8], [UInt8])>) throws(ByteDecodingError) {
        var restored = try StateStore(restoringFrom: pairs, configuration: configuration)
        if let reader = valueReader { restored.readValues(from: reader) }
        self = restored
    }
}
