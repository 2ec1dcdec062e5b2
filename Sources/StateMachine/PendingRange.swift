import Primitives

/// A range read resolved from the key index (``StateStore/planRange(_:)``) whose values are
/// still to be read: the versions it answers, in order, with the values the store still held
/// in memory when it was planned. The rest come from the backend in
/// ``finish(reading:)``, which a server runs off the member loop on a RocksDB snapshot pinned
/// when the range was planned, so a big range does not hold up Raft.
public struct PendingRange: Hashable, Sendable {
    /// The store revision when the range was planned (the answer's `header.revision`).
    public let revision: Int64
    /// The answered versions' metadata (values empty), in answer order.
    var kvs: [KeyValue]
    /// The version records behind `kvs`, one for one: a record's `value` is nil once the store
    /// released it to the backend.
    var records: [VersionRecord]
    /// The number of keys in the range at the read revision.
    let count: Int64
    /// The request's limit (0 for none).
    let limit: Int64
    let keysOnly: Bool
    /// Whether more keys than `limit` matched; set once the limit is applied.
    var more = false
    /// The order to sort by value in once the values are read; nil when already in answer order.
    var valueOrder: SortOrder?

    init(revision: Int64, kvs: [KeyValue], records: [VersionRecord], count: Int64, limit: Int64, keysOnly: Bool) {
        self.revision = revision
        self.kvs = kvs
        self.records = records
        self.count = count
        self.limit = limit
        self.keysOnly = keysOnly
    }

    /// The number of values ``finish(reading:)`` reads from the backend.
    public var unreadValueCount: Int {
        keysOnly ? 0 : records.reduce(0) { $0 + ($1.value == nil ? 1 : 0) }
    }

    /// Reads the values not in memory through `reader` and returns the answer.
    ///
    /// `reader` must see the backend as it was when the range was planned, or later with
    /// nothing deleted since: every released version the range answers is there. A version it
    /// lacks means the member's storage lost a write, and the process stops (as
    /// ``StateStore`` does for any value it cannot read back).
    public func finish(reading reader: (any BackendReader)?) -> RangeResponse {
        var answer = self
        if !keysOnly {
            for i in answer.kvs.indices {
                answer.kvs[i].value =
                    records[i].value ?? StateStore.storedVersion(of: records[i], key: kvs[i].key, reader: reader).value
            }
        }
        if let order = valueOrder {
            answer.sort(by: .value, ascending: order == .ascend)
            answer.applyLimit()
        }
        return RangeResponse(revision: revision, kvs: answer.kvs, more: answer.more, count: count)
    }

    /// Sorts the answer by `target`, then by key.
    mutating func sort(by target: SortTarget, ascending: Bool) {
        let kvs = self.kvs
        // Sorts positions, so that `records` follows `kvs`.
        let permutation = kvs.indices.sorted { a, b in
            var c = StateStore.compare(kvs[a], kvs[b], by: target)
            if c == 0 { c = compareBytes(kvs[a].key, kvs[b].key) }
            return ascending ? c < 0 : c > 0
        }
        self.kvs = permutation.map { kvs[$0] }
        records = permutation.map { records[$0] }
    }

    /// Drops what lies beyond the limit and notes whether anything did.
    mutating func applyLimit() {
        guard limit > 0 && kvs.count > limit else { return }
        kvs.removeSubrange(Int(limit)...)
        records.removeSubrange(Int(limit)...)
        more = true
    }
}
