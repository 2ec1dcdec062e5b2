import Primitives

/// The replicated MVCC key/value and lease state machine, with etcd v3.4 semantics.
///
/// The store is a deterministic value type that does no I/O of its own: it reads released values
/// only through its injected ``BackendReader``. Raft-committed requests are applied with
/// the mutating methods (``put(_:)``, ``deleteRange(_:)``, ``txn(_:)``, ``compact(_:)``,
/// ``grantLease(_:)``, ``revokeLease(_:)``, ``checkpointLeases(_:)`` or ``apply(_:)``). Each
/// returns an ``Applied`` value holding the response, the ``BackendMutation``s that the caller must
/// write in one atomic batch together with the Raft applied index, and the watch ``Event``s.
/// A request that throws leaves the store unchanged and produces no mutations.
///
/// Revisions follow etcd: an empty store is at revision 1; every request that changes at least
/// one key takes exactly one new main revision, and the changes within it take sub-revisions
/// 0, 1, 2, … in order.
///
/// Crash recovery and Raft snapshots use ``backendPairs()`` and
/// ``init(restoringFrom:configuration:backendReader:)``; the layout is described in ``BackendLayout``.
///
/// Memory holds the key index (every retained version's revision, create revision, version,
/// lease and tombstone flag). A store given a ``BackendReader`` holds a value only from the
/// apply that wrote it until ``releaseDurableValues()``, which the caller calls once it has
/// written that apply's mutations; later reads of the value go to the backend, as etcd reads
/// values from bbolt. A store without a reader keeps every value in memory.
public struct StateStore: Sendable {
    /// Limits that must be identical on every replica.
    public struct Configuration: Hashable, Sendable {
        /// The maximum number of operations in one transaction level (`--max-txn-ops`, default 128).
        public var maxTxnOperations: Int
        /// The maximum approximate size of a request in bytes (`--max-request-bytes`, default 1.5 MiB).
        /// The size counted is the sum of keys, values and range ends, a lower bound of the encoded size.
        public var maxRequestBytes: Int
        /// The minimum lease TTL in seconds; smaller requested TTLs are silently raised to it.
        public var minLeaseTTL: Int64
        /// The maximum lease TTL in seconds (etcd's `MaxLeaseTTL`, 9,000,000,000).
        public var maxLeaseTTL: Int64
        /// The most client sessions the session table keeps answers for (default 10,000); when a
        /// new session would exceed it, the oldest is evicted (see ``apply(_:in:)``).
        public var maxSessions: Int
        /// The most answers one session keeps (default 256); beyond it the lowest sequence
        /// numbers are forgotten.
        public var maxSessionResults: Int

        /// Creates a configuration; the defaults are etcd 3.4's.
        public init(
            maxTxnOperations: Int = 128,
            maxRequestBytes: Int = 1_572_864,
            minLeaseTTL: Int64 = 2,
            maxLeaseTTL: Int64 = 9_000_000_000,
            maxSessions: Int = 10_000,
            maxSessionResults: Int = 256
        ) {
            self.maxTxnOperations = maxTxnOperations
            self.maxRequestBytes = maxRequestBytes
            self.minLeaseTTL = minLeaseTTL
            self.maxLeaseTTL = maxLeaseTTL
            self.maxSessions = maxSessions
            self.maxSessionResults = maxSessionResults
        }
    }

    /// A position in the revision-ordered change log.
    struct LogEntry: Sendable {
        var revision: Revision
        var key: [UInt8]
        var isTombstone: Bool
    }

    /// The configuration.
    public let configuration: Configuration
    /// The current store revision; 1 for an empty store.
    public internal(set) var currentRevision: Int64 = 1
    /// The revision of the last compaction, or -1 if the store was never compacted.
    public internal(set) var compactedRevision: Int64 = -1

    /// Key → retained versions.
    var index = KeyIndex()
    /// Every retained version, in revision order.
    var log: [LogEntry] = []
    /// Lease ID → lease.
    var leaseTable: [Int64: Lease] = [:]
    /// Lease ID → keys currently attached (only for existing leases).
    var leaseKeys: [Int64: Set<[UInt8]>] = [:]
    /// The state of the deterministic lease ID generator.
    var leaseIDSequence: UInt64 = 0
    /// Member ID → member record.
    var memberTable: [UInt64: ClusterMember] = [:]
    /// The alarms raised.
    var alarmTable: Set<AlarmMember> = []
    /// Lease ID → the client session it carries (exactly-once writes, ``apply(_:in:)``).
    var sessionTable: [Int64: SessionRecord] = [:]
    /// Users, roles, permissions and the enabled flag.
    var auth = AuthState()
    /// Where released values are read back from; `nil` keeps every value in memory.
    var valueReader: (any BackendReader)?
    /// The versions whose values stay in memory until ``releaseDurableValues()``.
    var pendingValues: [(key: [UInt8], revision: Revision)] = []
    /// The bytes of values in memory (``residentValueBytes``).
    var residentBytes = 0

    /// Creates an empty store at revision 1.
    ///
    /// - Parameters:
    ///   - configuration: The limits.
    ///   - backendReader: Where values released by ``releaseDurableValues()`` are read back
    ///     from; `nil` keeps every value in memory.
    public init(configuration: Configuration = Configuration(), backendReader: (any BackendReader)? = nil) {
        self.configuration = configuration
        self.valueReader = backendReader
    }

    /// The number of keys that currently exist.
    ///
    /// - Complexity: O(n) in the number of keys with retained history.
    public var keyCount: Int {
        var n = 0
        for chunk in index.chunks {
            for entry in chunk where entry.live != nil { n += 1 }
        }
        return n
    }

    /// The number of retained versions (puts and tombstones) across all keys.
    public var retainedVersionCount: Int { log.count }

    // MARK: - Range

    /// Reads a key or key range, as etcd's `KV.Range`.
    ///
    /// Follows etcd 3.4: `count` is the number of keys in the range at the read revision, not
    /// reduced by limit or the min/max revision filters; the filters, sorting and limit then apply
    /// in that order; `more` says whether the filtered result was cut by `limit`. A sort target
    /// other than `.key` with order `.none` sorts ascending. Ties sort by key.
    ///
    /// - Throws: ``StateError/emptyKey``, ``StateError/futureRevision``, ``StateError/compacted``.
    public func range(_ request: RangeRequest) throws(StateError) -> RangeResponse {
        try readRange(request, currentRevision: currentRevision)
    }

    func readRange(_ request: RangeRequest, currentRevision current: Int64) throws(StateError) -> RangeResponse {
        try planRange(request, currentRevision: current).finish(reading: valueReader)
    }

    /// Resolves `request` from the key index alone: which versions it answers, in what order,
    /// and the count. The values of versions the store has released to its backend are still to
    /// be read, by ``PendingRange/finish(reading:)``, possibly on another thread, through a
    /// reader that sees the backend as it is now (a snapshot pinned before the member applies
    /// anything more, since a later compaction deletes versions from the backend).
    public func planRange(_ request: RangeRequest) throws(StateError) -> PendingRange {
        try planRange(request, currentRevision: currentRevision)
    }

    func planRange(_ request: RangeRequest, currentRevision current: Int64) throws(StateError) -> PendingRange {
        guard !request.key.isEmpty else { throw .emptyKey }
        var revision = request.revision
        if revision > current { throw .futureRevision }
        if revision <= 0 { revision = current }
        if revision < compactedRevision { throw .compacted }

        let hasFilters =
            request.minModRevision != 0 || request.maxModRevision != 0
            || request.minCreateRevision != 0 || request.maxCreateRevision != 0
        var fetchLimit = request.limit > 0 ? Int(clamping: request.limit) : 0
        if request.sortOrder != .none || hasFilters { fetchLimit = 0 }
        if fetchLimit > 0 && fetchLimit < Int.max { fetchLimit += 1 }

        var count: Int64 = 0
        // Metadata first: values are read (from the backend, if released) only for the versions
        // answered, and not at all for a count or keys-only read.
        var kvs: [KeyValue] = []
        var records: [VersionRecord] = []
        let range = KeyRange(key: request.key, rangeEnd: request.rangeEnd)
        index.forEach(in: range) { entry in
            guard let i = entry.visibleIndex(at: revision) else { return true }
            count += 1
            if !request.countOnly && (fetchLimit == 0 || kvs.count < fetchLimit) {
                kvs.append(entry.history[i].keyValue(key: entry.key, value: []))
                records.append(entry.history[i])
            }
            return true
        }

        if hasFilters {
            var kept = 0
            for i in kvs.indices {
                let kv = kvs[i]
                let dropped =
                    (request.maxModRevision != 0 && kv.modRevision > request.maxModRevision)
                    || (request.minModRevision != 0 && kv.modRevision < request.minModRevision)
                    || (request.minCreateRevision != 0 && kv.createRevision < request.minCreateRevision)
                    || (request.maxCreateRevision != 0 && kv.createRevision > request.maxCreateRevision)
                if !dropped {
                    kvs[kept] = kv
                    records[kept] = records[i]
                    kept += 1
                }
            }
            kvs.removeSubrange(kept...)
            records.removeSubrange(kept...)
        }

        var order = request.sortOrder
        if request.sortTarget != .key && order == .none { order = .ascend }
        var pending = PendingRange(
            revision: current, kvs: kvs, records: records, count: count, limit: request.limit, keysOnly: request.keysOnly)
        if order != .none && request.sortTarget == .value {
            // Sorting by value needs every value: it is done with the reads.
            pending.valueOrder = order
        } else {
            if order != .none { pending.sort(by: request.sortTarget, ascending: order == .ascend) }
            pending.applyLimit()
        }
        return pending
    }

    static func compare(_ a: KeyValue, _ b: KeyValue, by target: SortTarget) -> Int {
        switch target {
        case .key: return compareBytes(a.key, b.key)
        case .version: return a.version < b.version ? -1 : (a.version > b.version ? 1 : 0)
        case .createRevision:
            return a.createRevision < b.createRevision ? -1 : (a.createRevision > b.createRevision ? 1 : 0)
        case .modRevision: return a.modRevision < b.modRevision ? -1 : (a.modRevision > b.modRevision ? 1 : 0)
        case .value: return compareBytes(a.value, b.value)
        }
    }

    // MARK: - Compare

    /// Evaluates one transaction compare against the current state, as etcd's `applyCompare`:
    /// with no matching key a value compare is false and other targets compare against zero;
    /// with a range the compare must hold for every key.
    func evaluate(_ compare: Compare) -> Bool {
        var matched = false
        var holds = true
        index.forEach(in: KeyRange(key: compare.key, rangeEnd: compare.rangeEnd)) { entry in
            guard let record = entry.live else { return true }
            matched = true
            let value: [UInt8]
            if case .value = compare.target { value = self.value(of: record, key: entry.key) } else { value = [] }
            if !Self.check(compare, against: record, value: value) {
                holds = false
                return false
            }
            return true
        }
        if matched { return holds }
        if case .value = compare.target { return false }
        return Self.check(compare, against: VersionRecord.tombstone(at: Revision(main: 0)), value: [])
    }

    /// Whether `compare` holds for `record`, whose value (read only for a value compare) is `value`.
    private static func check(_ compare: Compare, against record: VersionRecord, value: [UInt8]) -> Bool {
        let order: Int
        func cmp(_ x: Int64, _ y: Int64) -> Int { x < y ? -1 : (x > y ? 1 : 0) }
        switch compare.target {
        case .version(let v): order = cmp(record.version, v)
        case .createRevision(let v): order = cmp(record.createRevision, v)
        case .modRevision(let v): order = cmp(record.revision.main, v)
        case .value(let v): order = compareBytes(value, v)
        case .lease(let v): order = cmp(record.lease, v)
        }
        switch compare.result {
        case .equal: return order == 0
        case .notEqual: return order != 0
        case .greater: return order > 0
        case .less: return order < 0
        }
    }

    // MARK: - Watch history

    /// Returns the changes at or after `revision` to keys in the range, in revision order, for
    /// watch replay.
    ///
    /// - Parameters:
    ///   - revision: The first revision to return (inclusive); 0 or below returns all retained history.
    ///   - key: The first key of the range (or the only key).
    ///   - rangeEnd: The range end, with the conventions of ``RangeRequest/rangeEnd``.
    ///   - limit: Stops after at least this many events, at a revision boundary (a revision is never split).
    ///   - through: The last revision to look at: a watch catches up in windows of revisions, so
    ///     that a narrow watcher over a long history does not scan it all at once.
    /// - Returns: The events, each with `prevKV` set when the previous version is retained.
    /// - Throws: ``StateError/compacted`` if `revision` is below the compaction revision.
    public func events(
        from revision: Int64,
        key: [UInt8],
        rangeEnd: [UInt8] = [],
        limit: Int = Int.max,
        through: Int64 = Int64.max
    ) throws(StateError) -> [Event] {
        try planEvents(from: revision, key: key, rangeEnd: rangeEnd, limit: limit, through: through).finish(reading: valueReader)
    }

    /// Resolves what ``events(from:key:rangeEnd:limit:through:)`` returns from the key index
    /// and the change log alone: the values the store has released to its backend are still to
    /// be read, by ``PendingEvents/finish(reading:)``, possibly on another thread, through a
    /// reader that sees the backend as it is now (as for ``planRange(_:)``).
    public func planEvents(
        from revision: Int64,
        key: [UInt8],
        rangeEnd: [UInt8] = [],
        limit: Int = Int.max,
        through: Int64 = Int64.max
    ) throws(StateError) -> PendingEvents {
        if revision < compactedRevision { throw .compacted }
        let range = KeyRange(key: key, rangeEnd: rangeEnd)
        var lo = 0
        var hi = log.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if log[mid].revision.main < revision { lo = mid + 1 } else { hi = mid }
        }
        var pending = PendingEvents()
        var lastMain: Int64 = 0
        for i in lo..<log.count {
            let logEntry = log[i]
            if logEntry.revision.main > through { break }
            if pending.events.count >= limit && logEntry.revision.main != lastMain { break }
            guard range.contains(logEntry.key), let entry = index.entry(for: logEntry.key),
                let version = entry.index(of: logEntry.revision)
            else { continue }
            pending.append(entry, at: version)
            lastMain = logEntry.revision.main
        }
        return pending
    }

    /// Builds the event for version `i` of `entry`. As etcd's watch does, `prevKV` is the version
    /// visible at the previous main revision (the state before the whole write request), if it is
    /// retained and not a tombstone. Released values are read back from the backend; `previous`,
    /// when given, is the key-value of that previous version, already read.
    func event(for entry: KeyEntry, at i: Int, previous: KeyValue? = nil) -> Event {
        let record = entry.history[i]
        var prev: KeyValue? = nil
        if let j = entry.previousVersion(before: i) {
            let earlier = entry.history[j]
            if let previous, previous.modRevision == earlier.revision.main {
                prev = previous
            } else {
                prev = keyValue(of: earlier, key: entry.key)
            }
        }
        if record.isTombstone {
            return Event(kind: .delete, kv: KeyValue(key: entry.key, modRevision: record.revision.main), prevKV: prev)
        }
        return Event(kind: .put, kv: keyValue(of: record, key: entry.key), prevKV: prev)
    }

    // MARK: - Digest

    /// Computes a digest of the key space up to a revision, like etcd's `HashKV`.
    ///
    /// The CRC-32C covers, in revision order, the backend key and encoded record of every retained
    /// version with a main revision at or below `revision` (which, after a compaction, includes the
    /// versions kept by it), followed by the compaction revision. Leases are not included.
    ///
    /// - Parameter revision: The revision to hash up to; 0 or below means the current revision.
    /// - Throws: ``StateError/compacted`` if `0 < revision <= compactedRevision`,
    ///   ``StateError/futureRevision`` if `revision > currentRevision`.
    public func hashKV(revision: Int64 = 0) throws(StateError) -> HashKVResponse {
        if revision > 0 && revision <= compactedRevision { throw .compacted }
        if revision > currentRevision { throw .futureRevision }
        let upTo = revision <= 0 ? currentRevision : revision
        var crc = CRC32(.castagnoli)
        for logEntry in log {
            if logEntry.revision.main > upTo { break }
            guard let entry = index.entry(for: logEntry.key), let i = entry.index(of: logEntry.revision) else {
                continue
            }
            crc.update(BackendLayout.versionKey(logEntry.revision))
            crc.update(encodedVersion(of: entry.history[i], key: entry.key))
        }
        var tail: [UInt8] = []
        tail.appendBigEndian(UInt64(bitPattern: compactedRevision))
        crc.update(tail)
        return HashKVResponse(revision: currentRevision, hash: crc.value, compactRevision: compactedRevision)
    }

    /// Computes a digest of the whole replicated state: every backend pair (key versions, leases,
    /// members, alarms, metadata and the client session table), key and value, with CRC-32 (IEEE).
    /// It is what `Maintenance.Hash` answers; members at the same applied index have equal digests.
    ///
    /// - Complexity: O(v log n) for v retained versions and n keys.
    public func digest() -> UInt32 {
        var crc = CRC32(.ieee)
        forEachBackendPair { key, value in
            crc.update(key)
            crc.update(value)
        }
        return crc.value
    }

    // MARK: - Lease queries

    /// Returns the lease with the given ID, if it exists.
    public func lease(_ id: Int64) -> Lease? {
        leaseTable[id]
    }

    /// Returns every lease, sorted by ID.
    public func leases() -> [Lease] {
        leaseTable.values.sorted { $0.id < $1.id }
    }

    /// Returns the keys currently attached to a lease, sorted; empty for an unknown lease.
    public func keys(attachedTo lease: Int64) -> [[UInt8]] {
        guard let keys = leaseKeys[lease] else { return [] }
        return keys.sorted { compareBytes($0, $1) < 0 }
    }
}
