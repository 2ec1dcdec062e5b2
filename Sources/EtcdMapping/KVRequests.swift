public import EtcdWire
import Foundation
public import StateMachine

// MARK: - Range

extension RangeRequest {
    /// Creates a range request from its wire form, field by field.
    ///
    /// `range_end` keeps etcd's conventions unchanged (empty: the single key; `"\0"`: every key
    /// `>= key`), and the empty-key check is left to the state machine, which makes it as etcd does.
    ///
    /// - Throws: ``WireRequestError/invalidSortOption`` for a sort order or target etcd does not define.
    public init(_ wire: Etcdserverpb_RangeRequest) throws(WireRequestError) {
        guard let sortOrder = StateMachine.SortOrder(rawValue: wire.sortOrder.rawValue),
            let sortTarget = StateMachine.SortTarget(rawValue: wire.sortTarget.rawValue)
        else { throw .invalidSortOption }
        self.init(
            key: Array(wire.key),
            rangeEnd: Array(wire.rangeEnd),
            limit: wire.limit,
            revision: wire.revision,
            sortOrder: sortOrder,
            sortTarget: sortTarget,
            serializable: wire.serializable,
            keysOnly: wire.keysOnly,
            countOnly: wire.countOnly,
            minModRevision: wire.minModRevision,
            maxModRevision: wire.maxModRevision,
            minCreateRevision: wire.minCreateRevision,
            maxCreateRevision: wire.maxCreateRevision
        )
    }
}

extension Etcdserverpb_RangeRequest {
    /// Creates the wire form of a range request, field by field.
    public init(_ request: RangeRequest) {
        self.init()
        key = Data(request.key)
        rangeEnd = Data(request.rangeEnd)
        limit = request.limit
        revision = request.revision
        switch request.sortOrder {
        case .none: sortOrder = .none
        case .ascend: sortOrder = .ascend
        case .descend: sortOrder = .descend
        }
        switch request.sortTarget {
        case .key: sortTarget = .key
        case .version: sortTarget = .version
        case .createRevision: sortTarget = .create
        case .modRevision: sortTarget = .mod
        case .value: sortTarget = .value
        }
        serializable = request.serializable
        keysOnly = request.keysOnly
        countOnly = request.countOnly
        minModRevision = request.minModRevision
        maxModRevision = request.maxModRevision
        minCreateRevision = request.minCreateRevision
        maxCreateRevision = request.maxCreateRevision
    }
}

extension Etcdserverpb_RangeResponse {
    /// Creates the wire answer to a range request.
    ///
    /// - Parameters:
    ///   - response: The state machine's answer.
    ///   - header: The response header; its revision is normally `response.revision`.
    public init(_ response: RangeResponse, header: Etcdserverpb_ResponseHeader) {
        self.init()
        self.header = header
        kvs = response.kvs.map(Mvccpb_KeyValue.init)
        more = response.more
        count = response.count
    }
}

// MARK: - Put

extension PutRequest {
    /// Creates a put request from its wire form, field by field.
    public init(_ wire: Etcdserverpb_PutRequest) {
        self.init(
            key: Array(wire.key),
            value: Array(wire.value),
            lease: wire.lease,
            prevKV: wire.prevKv,
            ignoreValue: wire.ignoreValue,
            ignoreLease: wire.ignoreLease
        )
    }
}

extension Etcdserverpb_PutRequest {
    /// Creates the wire form of a put request, field by field.
    public init(_ request: PutRequest) {
        self.init()
        key = Data(request.key)
        value = Data(request.value)
        lease = request.lease
        prevKv = request.prevKV
        ignoreValue = request.ignoreValue
        ignoreLease = request.ignoreLease
    }
}

extension Etcdserverpb_PutResponse {
    /// Creates the wire answer to a put; `prev_kv` is present only when the response has one.
    ///
    /// - Parameters:
    ///   - response: The state machine's answer.
    ///   - header: The response header; its revision is normally `response.revision`.
    public init(_ response: PutResponse, header: Etcdserverpb_ResponseHeader) {
        self.init()
        self.header = header
        if let prev = response.prevKV { prevKv = Mvccpb_KeyValue(prev) }
    }
}

// MARK: - DeleteRange

extension DeleteRangeRequest {
    /// Creates a delete-range request from its wire form, field by field.
    public init(_ wire: Etcdserverpb_DeleteRangeRequest) {
        self.init(key: Array(wire.key), rangeEnd: Array(wire.rangeEnd), prevKV: wire.prevKv)
    }
}

extension Etcdserverpb_DeleteRangeRequest {
    /// Creates the wire form of a delete-range request, field by field.
    public init(_ request: DeleteRangeRequest) {
        self.init()
        key = Data(request.key)
        rangeEnd = Data(request.rangeEnd)
        prevKv = request.prevKV
    }
}

extension Etcdserverpb_DeleteRangeResponse {
    /// Creates the wire answer to a delete-range request.
    ///
    /// - Parameters:
    ///   - response: The state machine's answer.
    ///   - header: The response header; its revision is normally `response.revision`.
    public init(_ response: DeleteRangeResponse, header: Etcdserverpb_ResponseHeader) {
        self.init()
        self.header = header
        deleted = response.deleted
        prevKvs = response.prevKVs.map(Mvccpb_KeyValue.init)
    }
}

// MARK: - Compaction

extension CompactionRequest {
    /// Creates a compaction request from its wire form.
    public init(_ wire: Etcdserverpb_CompactionRequest) {
        self.init(revision: wire.revision, physical: wire.physical)
    }
}

extension Etcdserverpb_CompactionRequest {
    /// Creates the wire form of a compaction request.
    public init(_ request: CompactionRequest) {
        self.init()
        revision = request.revision
        physical = request.physical
    }
}

extension Etcdserverpb_CompactionResponse {
    /// Creates the wire answer to a compaction.
    ///
    /// - Parameters:
    ///   - response: The state machine's answer.
    ///   - header: The response header; its revision is normally `response.revision`.
    public init(_ response: CompactionResponse, header: Etcdserverpb_ResponseHeader) {
        self.init()
        self.header = header
    }
}
