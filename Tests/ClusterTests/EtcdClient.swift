import EtcdWire
import Foundation
import GRPCStatus
import Primitives

/// etcd's v3 calls the tests make, over one ``GRPCConnection`` to one member.
struct EtcdClient: Sendable {
    /// The connection the calls go over.
    let connection: GRPCConnection

    /// Connects to the member serving clients on `127.0.0.1:port`.
    static func connect(port: Int) async throws -> EtcdClient {
        EtcdClient(connection: try await GRPCConnection.connect(host: "127.0.0.1", port: port))
    }

    /// Closes the connection.
    func close() async { await connection.close() }

    // MARK: - KV

    /// `KV/Put` of `key` = `value`.
    @discardableResult
    func put(
        _ key: String, _ value: String, lease: Int64 = 0, timeout: Duration = .seconds(10)
    ) async throws
        -> Etcdserverpb_PutResponse
    {
        var request = Etcdserverpb_PutRequest()
        request.key = Data(key.utf8)
        request.value = Data(value.utf8)
        request.lease = lease
        return try await connection.unary("/etcdserverpb.KV/Put", request, timeout: timeout)
    }

    /// `KV/Range` of one key, or of every key starting with it when `prefix` is set.
    func get(
        _ key: String, prefix: Bool = false, serializable: Bool = false, revision: Int64 = 0, timeout: Duration = .seconds(10)
    ) async throws -> Etcdserverpb_RangeResponse {
        var request = Etcdserverpb_RangeRequest()
        request.key = Data(key.utf8)
        if prefix { request.rangeEnd = Self.prefixEnd(of: Data(key.utf8)) }
        request.serializable = serializable
        request.revision = revision
        return try await range(request, timeout: timeout)
    }

    /// `KV/Range` as given.
    func range(_ request: Etcdserverpb_RangeRequest, timeout: Duration = .seconds(10)) async throws -> Etcdserverpb_RangeResponse {
        try await connection.unary("/etcdserverpb.KV/Range", request, timeout: timeout)
    }

    /// The value of `key` as text, or nil if it does not exist.
    func value(of key: String, serializable: Bool = false) async throws -> String? {
        let response = try await get(key, serializable: serializable)
        return response.kvs.first.map { String(decoding: $0.value, as: UTF8.self) }
    }

    /// `KV/DeleteRange` of one key.
    @discardableResult
    func delete(_ key: String) async throws -> Etcdserverpb_DeleteRangeResponse {
        var request = Etcdserverpb_DeleteRangeRequest()
        request.key = Data(key.utf8)
        return try await connection.unary("/etcdserverpb.KV/DeleteRange", request)
    }

    /// `KV/Compact` at `revision`.
    @discardableResult
    func compact(revision: Int64) async throws -> Etcdserverpb_CompactionResponse {
        var request = Etcdserverpb_CompactionRequest()
        request.revision = revision
        return try await connection.unary("/etcdserverpb.KV/Compact", request)
    }

    /// `KV/Txn` as given.
    func txn(_ request: Etcdserverpb_TxnRequest) async throws -> Etcdserverpb_TxnResponse {
        try await connection.unary("/etcdserverpb.KV/Txn", request)
    }

    /// The range end that selects every key starting with `key`, as etcd computes it.
    static func prefixEnd(of key: Data) -> Data { Data(Primitives.prefixEnd(Array(key))) }

    // MARK: - Maintenance and cluster

    /// `Maintenance/Status` of the member this client is connected to.
    func status(timeout: Duration = .seconds(5)) async throws -> Etcdserverpb_StatusResponse {
        try await connection.unary("/etcdserverpb.Maintenance/Status", Etcdserverpb_StatusRequest(), timeout: timeout)
    }

    /// `Maintenance/HashKV` at `revision` (0: the latest).
    func hashKV(revision: Int64) async throws -> Etcdserverpb_HashKVResponse {
        var request = Etcdserverpb_HashKVRequest()
        request.revision = revision
        return try await connection.unary("/etcdserverpb.Maintenance/HashKV", request)
    }

    /// `Maintenance/MoveLeader` to member `target`; must be sent to the leader.
    func moveLeader(to target: UInt64) async throws {
        var request = Etcdserverpb_MoveLeaderRequest()
        request.targetID = target
        let _: Etcdserverpb_MoveLeaderResponse = try await connection.unary(
            "/etcdserverpb.Maintenance/MoveLeader", request, timeout: .seconds(15))
    }

    /// `Cluster/MemberList`.
    func memberList() async throws -> Etcdserverpb_MemberListResponse {
        try await connection.unary("/etcdserverpb.Cluster/MemberList", Etcdserverpb_MemberListRequest())
    }

    /// `Cluster/MemberAdd` of a member with `peerURLs`.
    func memberAdd(peerURLs: [String], isLearner: Bool) async throws -> Etcdserverpb_MemberAddResponse {
        var request = Etcdserverpb_MemberAddRequest()
        request.peerUrls = peerURLs
        request.isLearner = isLearner
        return try await connection.unary("/etcdserverpb.Cluster/MemberAdd", request, timeout: .seconds(15))
    }

    /// `Cluster/MemberPromote` of learner `id`.
    func memberPromote(id: UInt64) async throws -> Etcdserverpb_MemberPromoteResponse {
        var request = Etcdserverpb_MemberPromoteRequest()
        request.id = id
        return try await connection.unary("/etcdserverpb.Cluster/MemberPromote", request, timeout: .seconds(15))
    }

    /// `Cluster/MemberRemove` of member `id`.
    func memberRemove(id: UInt64) async throws -> Etcdserverpb_MemberRemoveResponse {
        var request = Etcdserverpb_MemberRemoveRequest()
        request.id = id
        return try await connection.unary("/etcdserverpb.Cluster/MemberRemove", request, timeout: .seconds(15))
    }

    // MARK: - Lease

    /// `Lease/LeaseGrant` of a lease with `ttl` seconds.
    func grantLease(ttl: Int64) async throws -> Etcdserverpb_LeaseGrantResponse {
        var request = Etcdserverpb_LeaseGrantRequest()
        request.ttl = ttl
        return try await connection.unary("/etcdserverpb.Lease/LeaseGrant", request)
    }

    // MARK: - Watch

    /// Opens a `Watch/Watch` stream (with `metadata`, such as an auth token), creates one watcher
    /// with `request`, checks the `created` answer, and runs `body` with the stream; the stream is
    /// closed when `body` returns.
    func watch<Result: Sendable>(
        _ request: Etcdserverpb_WatchCreateRequest, metadata: [(String, String)] = [], timeout: Duration = .seconds(20),
        _ body: (_ created: Etcdserverpb_WatchResponse, _ stream: WatchStream) async throws -> Result
    ) async throws -> Result {
        try await connection.call("/etcdserverpb.Watch/Watch", metadata: [("hasleader", "true")] + metadata, timeout: timeout) {
            call in
            var create = Etcdserverpb_WatchRequest()
            create.createRequest = request
            try await call.send(create)
            let stream = WatchStream(call: call)
            guard let created = try await call.receive(Etcdserverpb_WatchResponse.self) else {
                throw GRPCCallError(code: .internal, message: "the watch stream ended before answering the create request")
            }
            guard created.created else {
                throw GRPCCallError(code: .internal, message: "the first watch response is not `created`: \(created)")
            }
            return try await body(created, stream)
        }
    }
}

/// A watch stream the server answers on: the events of one watcher, in the order sent.
struct WatchStream {
    fileprivate let call: GRPCCall

    /// Reads responses until `count` events arrived (or more, if the last response carried
    /// several), and returns them. Progress responses without events are skipped.
    ///
    /// - Throws: if the watch is canceled or the stream ends first.
    func events(count: Int) async throws -> [Mvccpb_Event] {
        var events: [Mvccpb_Event] = []
        while events.count < count {
            guard let response = try await call.receive(Etcdserverpb_WatchResponse.self) else {
                throw GRPCCallError(code: .internal, message: "the watch stream ended after \(events.count) of \(count) events")
            }
            if response.canceled {
                throw GRPCCallError(
                    code: .cancelled,
                    message: "the watch was canceled after \(events.count) events: \(response.cancelReason)"
                        + " (compact revision \(response.compactRevision))")
            }
            events += response.events
        }
        return events
    }
}
