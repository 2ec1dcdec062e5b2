import EtcdWire
import Foundation
import Primitives

/// Something that can be a key or a value: `String` (UTF-8), `[UInt8]`, `Data`.
public protocol BytesConvertible: Sendable {
    /// The bytes sent to the server.
    var statehouseBytes: [UInt8] { get }
}

extension String: BytesConvertible {
    public var statehouseBytes: [UInt8] { Array(utf8) }
}

extension Substring: BytesConvertible {
    public var statehouseBytes: [UInt8] { Array(utf8) }
}

extension Array: BytesConvertible where Element == UInt8 {
    public var statehouseBytes: [UInt8] { self }
}

extension Data: BytesConvertible {
    public var statehouseBytes: [UInt8] { Array(self) }
}

/// The header every response carries.
public struct ResponseHeader: Sendable, Hashable {
    /// The cluster that answered.
    public var clusterID: UInt64
    /// The member that answered.
    public var memberID: UInt64
    /// The store's revision when the request was served.
    public var revision: Int64
    /// The member's Raft term.
    public var raftTerm: UInt64

    init(_ header: Etcdserverpb_ResponseHeader) {
        clusterID = header.clusterID
        memberID = header.memberID
        revision = header.revision
        raftTerm = header.raftTerm
    }
}

/// A key and its value at some revision.
public struct KeyValue: Sendable, Hashable {
    /// The key's bytes.
    public var key: [UInt8]
    /// The value's bytes (empty for keys-only reads).
    public var value: [UInt8]
    /// The revision of the key's last creation.
    public var createRevision: Int64
    /// The revision of the key's last modification.
    public var modRevision: Int64
    /// How many times the key has been written since its creation (1 after creation).
    public var version: Int64
    /// The lease the key is attached to (0 for none).
    public var lease: Int64

    /// The key as UTF-8 text.
    public var keyString: String { String(decoding: key, as: UTF8.self) }
    /// The value as UTF-8 text.
    public var valueString: String { String(decoding: value, as: UTF8.self) }

    init(_ kv: Mvccpb_KeyValue) {
        key = Array(kv.key)
        value = Array(kv.value)
        createRevision = kv.createRevision
        modRevision = kv.modRevision
        version = kv.version
        lease = kv.lease
    }
}

/// Which keys a read or delete covers.
public struct KeyRange: Sendable, Hashable {
    /// The first key.
    public var key: [UInt8]
    /// One past the last key; empty for the single key `key`; `[0]` for every key from `key` on.
    public var rangeEnd: [UInt8]

    /// The keys from `key` (inclusive) to `end` (exclusive).
    public init(key: some BytesConvertible, end: some BytesConvertible) {
        self.key = key.statehouseBytes
        self.rangeEnd = end.statehouseBytes
    }

    init(key: [UInt8], rangeEnd: [UInt8]) {
        self.key = key
        self.rangeEnd = rangeEnd
    }

    /// Exactly `key`.
    public static func key(_ key: some BytesConvertible) -> KeyRange {
        KeyRange(key: key.statehouseBytes, rangeEnd: [])
    }

    /// Every key that starts with `prefix` (every key if `prefix` is empty).
    public static func prefix(_ prefix: some BytesConvertible) -> KeyRange {
        let bytes = prefix.statehouseBytes
        return KeyRange(key: bytes.isEmpty ? [0] : bytes, rangeEnd: prefixEnd(bytes))
    }

    /// Every key greater than or equal to `key`.
    public static func from(_ key: some BytesConvertible) -> KeyRange {
        KeyRange(key: key.statehouseBytes, rangeEnd: [0])
    }

    /// Every key.
    public static var all: KeyRange { KeyRange(key: [0], rangeEnd: [0]) }
}

/// How a read orders its results.
public struct SortOrder: Sendable, Hashable {
    /// What to sort by.
    public enum Target: Sendable, Hashable {
        case key, version, createRevision, modRevision, value
    }

    /// What to sort by.
    public var target: Target
    /// Ascending (true) or descending.
    public var ascending: Bool

    /// Sorts by `target`, ascending or descending.
    public init(_ target: Target, ascending: Bool = true) {
        self.target = target
        self.ascending = ascending
    }
}

/// Options of a read.
public struct GetOptions: Sendable, Hashable {
    /// At most this many keys (0: no limit).
    public var limit: Int64 = 0
    /// Read at this revision (0: the latest).
    public var revision: Int64 = 0
    /// The order of the results (nil: by key, ascending).
    public var sort: SortOrder?
    /// Serve the read from the member's local state without a quorum round (may be stale).
    public var serializable = false
    /// Return keys without values.
    public var keysOnly = false
    /// Return only the count.
    public var countOnly = false
    /// Only keys modified at or after this revision (0: no bound).
    public var minModRevision: Int64 = 0
    /// Only keys modified at or before this revision (0: no bound).
    public var maxModRevision: Int64 = 0
    /// Only keys created at or after this revision (0: no bound).
    public var minCreateRevision: Int64 = 0
    /// Only keys created at or before this revision (0: no bound).
    public var maxCreateRevision: Int64 = 0

    /// Options with the given values; every other option keeps its default.
    public init(
        limit: Int64 = 0, revision: Int64 = 0, sort: SortOrder? = nil, serializable: Bool = false,
        keysOnly: Bool = false, countOnly: Bool = false
    ) {
        self.limit = limit
        self.revision = revision
        self.sort = sort
        self.serializable = serializable
        self.keysOnly = keysOnly
        self.countOnly = countOnly
    }
}

/// The result of a read.
public struct GetResult: Sendable, Hashable {
    public var header: ResponseHeader
    /// The keys read, in the requested order.
    public var kvs: [KeyValue]
    /// Whether more keys matched than `limit` let through.
    public var more: Bool
    /// How many keys matched in all.
    public var count: Int64

    init(_ response: Etcdserverpb_RangeResponse) {
        header = ResponseHeader(response.header)
        kvs = response.kvs.map(KeyValue.init)
        more = response.more
        count = response.count
    }
}

/// The result of a put.
public struct PutResult: Sendable, Hashable {
    public var header: ResponseHeader
    /// The key's previous value, if asked for and the key existed.
    public var previous: KeyValue?

    init(_ response: Etcdserverpb_PutResponse) {
        header = ResponseHeader(response.header)
        previous = response.hasPrevKv ? KeyValue(response.prevKv) : nil
    }
}

/// The result of a delete.
public struct DeleteResult: Sendable, Hashable {
    public var header: ResponseHeader
    /// How many keys were deleted.
    public var deleted: Int64
    /// The deleted keys' last values, if asked for.
    public var previous: [KeyValue]

    init(_ response: Etcdserverpb_DeleteRangeResponse) {
        header = ResponseHeader(response.header)
        deleted = response.deleted
        previous = response.prevKvs.map(KeyValue.init)
    }
}

extension GetOptions {
    func request(for range: KeyRange) -> Etcdserverpb_RangeRequest {
        var request = Etcdserverpb_RangeRequest()
        request.key = Data(range.key)
        request.rangeEnd = Data(range.rangeEnd)
        request.limit = limit
        request.revision = revision
        if let sort {
            request.sortOrder = sort.ascending ? .ascend : .descend
            switch sort.target {
            case .key: request.sortTarget = .key
            case .version: request.sortTarget = .version
            case .createRevision: request.sortTarget = .create
            case .modRevision: request.sortTarget = .mod
            case .value: request.sortTarget = .value
            }
        }
        request.serializable = serializable
        request.keysOnly = keysOnly
        request.countOnly = countOnly
        request.minModRevision = minModRevision
        request.maxModRevision = maxModRevision
        request.minCreateRevision = minCreateRevision
        request.maxCreateRevision = maxCreateRevision
        return request
    }
}

func putRequest(key: [UInt8], value: [UInt8], lease: Int64, prevKV: Bool) -> Etcdserverpb_PutRequest {
    var request = Etcdserverpb_PutRequest()
    request.key = Data(key)
    request.value = Data(value)
    request.lease = lease
    request.prevKv = prevKV
    return request
}

func deleteRequest(range: KeyRange, prevKV: Bool) -> Etcdserverpb_DeleteRangeRequest {
    var request = Etcdserverpb_DeleteRangeRequest()
    request.key = Data(range.key)
    request.rangeEnd = Data(range.rangeEnd)
    request.prevKv = prevKV
    return request
}

extension StatehouseClient {
    /// Reads the keys in `range`.
    ///
    /// Reads are linearizable unless `options.serializable` is set; they are retried on
    /// another endpoint when one is unavailable.
    public func get(_ range: KeyRange, options: GetOptions = GetOptions()) async throws -> GetResult {
        let response: Etcdserverpb_RangeResponse = try await unary(
            Methods.range, options.request(for: range), policy: .idempotent)
        return GetResult(response)
    }

    /// Reads one key; nil if it does not exist.
    public func get(_ key: some BytesConvertible, serializable: Bool = false) async throws -> KeyValue? {
        try await get(.key(key), options: GetOptions(serializable: serializable)).kvs.first
    }

    /// Writes `value` under `key`, attached to `lease` if given.
    ///
    /// The put goes through the client's write session (``StatehouseClientConfiguration/exactlyOnceWrites``):
    /// on Statehouse, one whose answer was lost is sent again and applied once; otherwise it is
    /// sent again only when it provably never reached a server.
    @discardableResult
    public func put(
        _ key: some BytesConvertible, _ value: some BytesConvertible, lease: LeaseID? = nil, prevKV: Bool = false
    ) async throws -> PutResult {
        let request = putRequest(
            key: key.statehouseBytes, value: value.statehouseBytes, lease: lease?.rawValue ?? 0, prevKV: prevKV)
        let response: Etcdserverpb_PutResponse = try await sessionWrite(Methods.put, request)
        return PutResult(response)
    }

    /// Deletes the keys in `range`, through the client's write session as ``put(_:_:lease:prevKV:)``.
    @discardableResult
    public func delete(_ range: KeyRange, prevKV: Bool = false) async throws -> DeleteResult {
        let response: Etcdserverpb_DeleteRangeResponse = try await sessionWrite(
            Methods.deleteRange, deleteRequest(range: range, prevKV: prevKV))
        return DeleteResult(response)
    }

    /// Compacts the history: revisions before `revision` can no longer be read or watched.
    ///
    /// - Parameters:
    ///   - revision: The oldest revision to keep.
    ///   - physical: Return only once the compaction has been applied to the backend.
    @discardableResult
    public func compact(revision: Int64, physical: Bool = false) async throws -> ResponseHeader {
        var request = Etcdserverpb_CompactionRequest()
        request.revision = revision
        request.physical = physical
        let response: Etcdserverpb_CompactionResponse = try await unary(Methods.compact, request, policy: .unsentOnly)
        return ResponseHeader(response.header)
    }
}
