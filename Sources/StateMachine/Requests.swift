// Request and response types mirroring etcd v3's `etcdserverpb` KV messages.
// Response headers are reduced to `revision`; cluster, member and term are filled in by the server.

/// The order of a range result, mirroring `RangeRequest.SortOrder`.
public enum SortOrder: Int, Hashable, Sendable {
    /// Key order (the store's natural order) unless a non-key target is given.
    case none = 0
    /// Ascending by the sort target.
    case ascend = 1
    /// Descending by the sort target.
    case descend = 2
}

/// The field a range result is sorted by, mirroring `RangeRequest.SortTarget`.
public enum SortTarget: Int, Hashable, Sendable {
    /// The key.
    case key = 0
    /// The version.
    case version = 1
    /// The create revision.
    case createRevision = 2
    /// The mod revision.
    case modRevision = 3
    /// The value.
    case value = 4
}

/// A read of a key or key range, mirroring `RangeRequest`.
///
/// `rangeEnd` follows etcd: empty means the single key `key`; `[0]` means every key `>= key`;
/// anything else means `[key, rangeEnd)`. `key == [0]` with `rangeEnd == [0]` reads every key.
public struct RangeRequest: Hashable, Sendable {
    /// The first key of the range (or the only key).
    public var key: [UInt8]
    /// The exclusive end of the range; see the type documentation.
    public var rangeEnd: [UInt8]
    /// The maximum number of keys returned; 0 or negative means no limit.
    public var limit: Int64
    /// The revision to read at; 0 or negative means the current revision.
    public var revision: Int64
    /// The sort order.
    public var sortOrder: SortOrder
    /// The sort target.
    public var sortTarget: SortTarget
    /// Whether the read may be served locally; ignored by the state machine.
    public var serializable: Bool
    /// Whether to return keys without values.
    public var keysOnly: Bool
    /// Whether to return only the count.
    public var countOnly: Bool
    /// Drops keys with a mod revision below this; 0 disables the filter.
    public var minModRevision: Int64
    /// Drops keys with a mod revision above this; 0 disables the filter.
    public var maxModRevision: Int64
    /// Drops keys with a create revision below this; 0 disables the filter.
    public var minCreateRevision: Int64
    /// Drops keys with a create revision above this; 0 disables the filter.
    public var maxCreateRevision: Int64

    /// Creates a range request.
    public init(
        key: [UInt8],
        rangeEnd: [UInt8] = [],
        limit: Int64 = 0,
        revision: Int64 = 0,
        sortOrder: SortOrder = .none,
        sortTarget: SortTarget = .key,
        serializable: Bool = false,
        keysOnly: Bool = false,
        countOnly: Bool = false,
        minModRevision: Int64 = 0,
        maxModRevision: Int64 = 0,
        minCreateRevision: Int64 = 0,
        maxCreateRevision: Int64 = 0
    ) {
        self.key = key
        self.rangeEnd = rangeEnd
        self.limit = limit
        self.revision = revision
        self.sortOrder = sortOrder
        self.sortTarget = sortTarget
        self.serializable = serializable
        self.keysOnly = keysOnly
        self.countOnly = countOnly
        self.minModRevision = minModRevision
        self.maxModRevision = maxModRevision
        self.minCreateRevision = minCreateRevision
        self.maxCreateRevision = maxCreateRevision
    }
}

/// The answer to a ``RangeRequest``, mirroring `RangeResponse`.
public struct RangeResponse: Hashable, Sendable {
    /// The store revision when the request was served (`header.revision`), even for a historical read.
    public var revision: Int64
    /// The matching key/values (empty for a count-only request).
    public var kvs: [KeyValue]
    /// Whether more keys than `limit` matched (after the revision filters).
    public var more: Bool
    /// The number of keys in the range at the read revision, unaffected by limit and the
    /// min/max revision filters (as in etcd).
    public var count: Int64

    /// Creates a range response.
    public init(revision: Int64, kvs: [KeyValue] = [], more: Bool = false, count: Int64 = 0) {
        self.revision = revision
        self.kvs = kvs
        self.more = more
        self.count = count
    }
}

/// A write of one key, mirroring `PutRequest`.
public struct PutRequest: Hashable, Sendable {
    /// The key.
    public var key: [UInt8]
    /// The value.
    public var value: [UInt8]
    /// The lease to attach, or 0 for none.
    public var lease: Int64
    /// Whether to return the previous key/value.
    public var prevKV: Bool
    /// Whether to keep the current value; the key must exist and `value` must be empty.
    public var ignoreValue: Bool
    /// Whether to keep the current lease; the key must exist and `lease` must be 0.
    public var ignoreLease: Bool

    /// Creates a put request.
    public init(
        key: [UInt8],
        value: [UInt8] = [],
        lease: Int64 = 0,
        prevKV: Bool = false,
        ignoreValue: Bool = false,
        ignoreLease: Bool = false
    ) {
        self.key = key
        self.value = value
        self.lease = lease
        self.prevKV = prevKV
        self.ignoreValue = ignoreValue
        self.ignoreLease = ignoreLease
    }
}

/// The answer to a ``PutRequest``, mirroring `PutResponse`.
public struct PutResponse: Hashable, Sendable {
    /// The store revision after the put (`header.revision`).
    public var revision: Int64
    /// The previous key/value, if requested and the key existed.
    public var prevKV: KeyValue?

    /// Creates a put response.
    public init(revision: Int64, prevKV: KeyValue? = nil) {
        self.revision = revision
        self.prevKV = prevKV
    }
}

/// A deletion of a key or key range, mirroring `DeleteRangeRequest`.
public struct DeleteRangeRequest: Hashable, Sendable {
    /// The first key of the range (or the only key).
    public var key: [UInt8]
    /// The exclusive end of the range, with the same conventions as ``RangeRequest/rangeEnd``.
    public var rangeEnd: [UInt8]
    /// Whether to return the deleted key/values.
    public var prevKV: Bool

    /// Creates a delete-range request.
    public init(key: [UInt8], rangeEnd: [UInt8] = [], prevKV: Bool = false) {
        self.key = key
        self.rangeEnd = rangeEnd
        self.prevKV = prevKV
    }
}

/// The answer to a ``DeleteRangeRequest``, mirroring `DeleteRangeResponse`.
public struct DeleteRangeResponse: Hashable, Sendable {
    /// The store revision after the deletion (`header.revision`); unchanged if nothing was deleted.
    public var revision: Int64
    /// The number of keys deleted.
    public var deleted: Int64
    /// The deleted key/values, if requested.
    public var prevKVs: [KeyValue]

    /// Creates a delete-range response.
    public init(revision: Int64, deleted: Int64 = 0, prevKVs: [KeyValue] = []) {
        self.revision = revision
        self.deleted = deleted
        self.prevKVs = prevKVs
    }
}

/// A condition of a transaction, mirroring `Compare`.
public struct Compare: Hashable, Sendable {
    /// The comparison operator, mirroring `Compare.CompareResult`.
    public enum Result: Int, Hashable, Sendable {
        /// The key's field equals the operand.
        case equal = 0
        /// The key's field is greater than the operand.
        case greater = 1
        /// The key's field is less than the operand.
        case less = 2
        /// The key's field differs from the operand.
        case notEqual = 3
    }

    /// The compared field with its operand, mirroring `Compare.CompareTarget` plus `target_union`.
    public enum Target: Hashable, Sendable {
        /// The key's version.
        case version(Int64)
        /// The key's create revision (0 means "absent").
        case createRevision(Int64)
        /// The key's mod revision.
        case modRevision(Int64)
        /// The key's value; always false if no key matches.
        case value([UInt8])
        /// The key's lease.
        case lease(Int64)
    }

    /// The operator.
    public var result: Result
    /// The compared field and operand.
    public var target: Target
    /// The key.
    public var key: [UInt8]
    /// The exclusive end of a key range, with the conventions of ``RangeRequest/rangeEnd``;
    /// the compare must hold for every key in the range.
    public var rangeEnd: [UInt8]

    /// Creates a compare.
    public init(key: [UInt8], rangeEnd: [UInt8] = [], target: Target, result: Result) {
        self.key = key
        self.rangeEnd = rangeEnd
        self.target = target
        self.result = result
    }
}

/// One operation of a transaction branch, mirroring `RequestOp`.
public enum RequestOp: Hashable, Sendable {
    /// A read.
    case range(RangeRequest)
    /// A put.
    case put(PutRequest)
    /// A deletion.
    case deleteRange(DeleteRangeRequest)
    /// A nested transaction.
    case txn(TxnRequest)
}

/// The answer to one ``RequestOp``, mirroring `ResponseOp`.
public enum ResponseOp: Hashable, Sendable {
    /// The answer to a read.
    case range(RangeResponse)
    /// The answer to a put.
    case put(PutResponse)
    /// The answer to a deletion.
    case deleteRange(DeleteRangeResponse)
    /// The answer to a nested transaction.
    case txn(TxnResponse)
}

/// A transaction, mirroring `TxnRequest`: if every compare holds, `success` runs, otherwise `failure`.
public struct TxnRequest: Hashable, Sendable {
    /// The conditions, a conjunction.
    public var compares: [Compare]
    /// The operations run if every compare holds.
    public var success: [RequestOp]
    /// The operations run otherwise.
    public var failure: [RequestOp]

    /// Creates a transaction.
    /// Whether neither branch writes (etcd's `isTxnReadonly`).
    public var isReadOnly: Bool {
        (success + failure).allSatisfy { op in
            switch op {
            case .range: true
            case .txn(let nested): nested.isReadOnly
            case .put, .deleteRange: false
            }
        }
    }

    /// Whether every operation of both branches is a serializable range (etcd's
    /// `isTxnSerializable`): such a transaction is served from the member's own state, without
    /// confirming leadership. A nested transaction makes it linearizable.
    public var isSerializable: Bool {
        (success + failure).allSatisfy { op in
            if case .range(let range) = op { return range.serializable }
            return false
        }
    }

    public init(compares: [Compare] = [], success: [RequestOp] = [], failure: [RequestOp] = []) {
        self.compares = compares
        self.success = success
        self.failure = failure
    }
}

/// The answer to a ``TxnRequest``, mirroring `TxnResponse`.
public struct TxnResponse: Hashable, Sendable {
    /// The store revision after the transaction (`header.revision`).
    public var revision: Int64
    /// Whether the compares held (and `success` ran).
    public var succeeded: Bool
    /// The answers to the operations of the branch that ran, in order.
    public var responses: [ResponseOp]

    /// Creates a transaction response.
    public init(revision: Int64, succeeded: Bool, responses: [ResponseOp] = []) {
        self.revision = revision
        self.succeeded = succeeded
        self.responses = responses
    }
}

/// A request to discard history, mirroring `CompactionRequest`.
public struct CompactionRequest: Hashable, Sendable {
    /// The revision to compact at: history below it is dropped.
    public var revision: Int64
    /// Whether the caller waits for physical compaction; ignored by the state machine.
    public var physical: Bool

    /// Creates a compaction request.
    public init(revision: Int64, physical: Bool = false) {
        self.revision = revision
        self.physical = physical
    }
}

/// The answer to a ``CompactionRequest``, mirroring `CompactionResponse`.
public struct CompactionResponse: Hashable, Sendable {
    /// The store revision (`header.revision`); compaction does not change it.
    public var revision: Int64

    /// Creates a compaction response.
    public init(revision: Int64) {
        self.revision = revision
    }
}

/// The answer to a hash request, mirroring `HashKVResponse`.
public struct HashKVResponse: Hashable, Sendable {
    /// The current store revision (`header.revision`).
    public var revision: Int64
    /// The CRC-32C digest of the key space up to the requested revision.
    public var hash: UInt32
    /// The compaction revision, or -1 if the store was never compacted.
    public var compactRevision: Int64

    /// Creates a hash response.
    public init(revision: Int64, hash: UInt32, compactRevision: Int64) {
        self.revision = revision
        self.hash = hash
        self.compactRevision = compactRevision
    }
}
