import EtcdWire
public import GRPCServer
import SwiftProtobuf

/// etcd 3.4's grpc-gateway: the JSON API on the client port (`POST /v3/kv/range`, …), every
/// path whose gRPC method etcd 3.4 maps, with etcd's JSON mapping.
///
/// The mapping is proto3's JSON mapping with the proto field names (grpc-gateway's
/// `JSONPb{OrigName: true}`, etcd 3.4's default marshaler): `bytes` as base64, 64-bit integers
/// as strings, enums by name, and fields at their default value left out. Requests accept the
/// proto names and the lowerCamelCase JSON names, integers as numbers or strings, and ignore
/// unknown fields (as grpc-gateway v1 does).
public enum EtcdGateway {
    /// The path prefixes the gateway owns: `/v3/`, and `/v3beta/` (which etcd 3.4 still
    /// accepts as an alias of `/v3/`).
    public static let prefixes = ["/v3/", "/v3beta/"]

    /// The gateway, reading JSON request messages of at most `maxRequestBytes` bytes.
    public static func gateway(maxRequestBytes: Int) -> Gateway {
        var routes: [String: GatewayRoute] = [:]
        for (path, route) in Self.routes {
            routes["/v3/" + path] = route
            routes["/v3beta/" + path] = route
        }
        return Gateway(prefixes: prefixes, routes: routes, maxRequestBytes: maxRequestBytes)
    }

    /// The routes, by path below `/v3/`, as etcd 3.4's generated gateway registers them.
    public static let routes: [(path: String, route: GatewayRoute)] = [
        ("kv/range", unary("etcdserverpb.KV", "Range", Etcdserverpb_RangeRequest.self, Etcdserverpb_RangeResponse.self)),
        ("kv/put", unary("etcdserverpb.KV", "Put", Etcdserverpb_PutRequest.self, Etcdserverpb_PutResponse.self)),
        (
            "kv/deleterange",
            unary("etcdserverpb.KV", "DeleteRange", Etcdserverpb_DeleteRangeRequest.self, Etcdserverpb_DeleteRangeResponse.self)
        ),
        ("kv/txn", unary("etcdserverpb.KV", "Txn", Etcdserverpb_TxnRequest.self, Etcdserverpb_TxnResponse.self)),
        (
            "kv/compaction",
            unary("etcdserverpb.KV", "Compact", Etcdserverpb_CompactionRequest.self, Etcdserverpb_CompactionResponse.self)
        ),
        (
            "watch",
            route(
                "etcdserverpb.Watch", "Watch", Etcdserverpb_WatchRequest.self, Etcdserverpb_WatchResponse.self,
                streamsRequests: true, streamsResponses: true)
        ),
        (
            "lease/grant",
            unary("etcdserverpb.Lease", "LeaseGrant", Etcdserverpb_LeaseGrantRequest.self, Etcdserverpb_LeaseGrantResponse.self)
        ),
        ("lease/revoke", leaseRevoke),
        ("kv/lease/revoke", leaseRevoke),
        (
            "lease/keepalive",
            route(
                "etcdserverpb.Lease", "LeaseKeepAlive", Etcdserverpb_LeaseKeepAliveRequest.self,
                Etcdserverpb_LeaseKeepAliveResponse.self, streamsRequests: true, streamsResponses: true)
        ),
        ("lease/timetolive", leaseTimeToLive),
        ("kv/lease/timetolive", leaseTimeToLive),
        ("lease/leases", leaseLeases),
        ("kv/lease/leases", leaseLeases),
        (
            "cluster/member/add",
            unary("etcdserverpb.Cluster", "MemberAdd", Etcdserverpb_MemberAddRequest.self, Etcdserverpb_MemberAddResponse.self)
        ),
        (
            "cluster/member/remove",
            unary(
                "etcdserverpb.Cluster", "MemberRemove", Etcdserverpb_MemberRemoveRequest.self, Etcdserverpb_MemberRemoveResponse.self)
        ),
        (
            "cluster/member/update",
            unary(
                "etcdserverpb.Cluster", "MemberUpdate", Etcdserverpb_MemberUpdateRequest.self, Etcdserverpb_MemberUpdateResponse.self)
        ),
        (
            "cluster/member/list",
            unary("etcdserverpb.Cluster", "MemberList", Etcdserverpb_MemberListRequest.self, Etcdserverpb_MemberListResponse.self)
        ),
        (
            "cluster/member/promote",
            unary(
                "etcdserverpb.Cluster", "MemberPromote", Etcdserverpb_MemberPromoteRequest.self,
                Etcdserverpb_MemberPromoteResponse.self)
        ),
        (
            "maintenance/alarm",
            unary("etcdserverpb.Maintenance", "Alarm", Etcdserverpb_AlarmRequest.self, Etcdserverpb_AlarmResponse.self)
        ),
        (
            "maintenance/status",
            unary("etcdserverpb.Maintenance", "Status", Etcdserverpb_StatusRequest.self, Etcdserverpb_StatusResponse.self)
        ),
        (
            "maintenance/defragment",
            unary(
                "etcdserverpb.Maintenance", "Defragment", Etcdserverpb_DefragmentRequest.self, Etcdserverpb_DefragmentResponse.self)
        ),
        // etcd 3.4 maps both Hash and HashKV to /v3/maintenance/hash, and the first (Hash)
        // wins; 3.5 moved HashKV to /v3/maintenance/hashkv. Both are served.
        (
            "maintenance/hash",
            unary("etcdserverpb.Maintenance", "Hash", Etcdserverpb_HashRequest.self, Etcdserverpb_HashResponse.self)
        ),
        (
            "maintenance/hashkv",
            unary("etcdserverpb.Maintenance", "HashKV", Etcdserverpb_HashKVRequest.self, Etcdserverpb_HashKVResponse.self)
        ),
        (
            "maintenance/snapshot",
            route(
                "etcdserverpb.Maintenance", "Snapshot", Etcdserverpb_SnapshotRequest.self, Etcdserverpb_SnapshotResponse.self,
                streamsRequests: false, streamsResponses: true)
        ),
        (
            "maintenance/transfer-leadership",
            unary(
                "etcdserverpb.Maintenance", "MoveLeader", Etcdserverpb_MoveLeaderRequest.self, Etcdserverpb_MoveLeaderResponse.self)
        ),
        (
            "auth/enable",
            unary("etcdserverpb.Auth", "AuthEnable", Etcdserverpb_AuthEnableRequest.self, Etcdserverpb_AuthEnableResponse.self)
        ),
        (
            "auth/disable",
            unary("etcdserverpb.Auth", "AuthDisable", Etcdserverpb_AuthDisableRequest.self, Etcdserverpb_AuthDisableResponse.self)
        ),
        (
            "auth/authenticate",
            unary(
                "etcdserverpb.Auth", "Authenticate", Etcdserverpb_AuthenticateRequest.self, Etcdserverpb_AuthenticateResponse.self)
        ),
        (
            "auth/user/add",
            unary("etcdserverpb.Auth", "UserAdd", Etcdserverpb_AuthUserAddRequest.self, Etcdserverpb_AuthUserAddResponse.self)
        ),
        (
            "auth/user/get",
            unary("etcdserverpb.Auth", "UserGet", Etcdserverpb_AuthUserGetRequest.self, Etcdserverpb_AuthUserGetResponse.self)
        ),
        (
            "auth/user/list",
            unary("etcdserverpb.Auth", "UserList", Etcdserverpb_AuthUserListRequest.self, Etcdserverpb_AuthUserListResponse.self)
        ),
        (
            "auth/user/delete",
            unary(
                "etcdserverpb.Auth", "UserDelete", Etcdserverpb_AuthUserDeleteRequest.self, Etcdserverpb_AuthUserDeleteResponse.self)
        ),
        (
            "auth/user/changepw",
            unary(
                "etcdserverpb.Auth", "UserChangePassword", Etcdserverpb_AuthUserChangePasswordRequest.self,
                Etcdserverpb_AuthUserChangePasswordResponse.self)
        ),
        (
            "auth/user/grant",
            unary(
                "etcdserverpb.Auth", "UserGrantRole", Etcdserverpb_AuthUserGrantRoleRequest.self,
                Etcdserverpb_AuthUserGrantRoleResponse.self)
        ),
        (
            "auth/user/revoke",
            unary(
                "etcdserverpb.Auth", "UserRevokeRole", Etcdserverpb_AuthUserRevokeRoleRequest.self,
                Etcdserverpb_AuthUserRevokeRoleResponse.self)
        ),
        (
            "auth/role/add",
            unary("etcdserverpb.Auth", "RoleAdd", Etcdserverpb_AuthRoleAddRequest.self, Etcdserverpb_AuthRoleAddResponse.self)
        ),
        (
            "auth/role/get",
            unary("etcdserverpb.Auth", "RoleGet", Etcdserverpb_AuthRoleGetRequest.self, Etcdserverpb_AuthRoleGetResponse.self)
        ),
        (
            "auth/role/list",
            unary("etcdserverpb.Auth", "RoleList", Etcdserverpb_AuthRoleListRequest.self, Etcdserverpb_AuthRoleListResponse.self)
        ),
        (
            "auth/role/delete",
            unary(
                "etcdserverpb.Auth", "RoleDelete", Etcdserverpb_AuthRoleDeleteRequest.self, Etcdserverpb_AuthRoleDeleteResponse.self)
        ),
        (
            "auth/role/grant",
            unary(
                "etcdserverpb.Auth", "RoleGrantPermission", Etcdserverpb_AuthRoleGrantPermissionRequest.self,
                Etcdserverpb_AuthRoleGrantPermissionResponse.self)
        ),
        (
            "auth/role/revoke",
            unary(
                "etcdserverpb.Auth", "RoleRevokePermission", Etcdserverpb_AuthRoleRevokePermissionRequest.self,
                Etcdserverpb_AuthRoleRevokePermissionResponse.self)
        ),
        ("lock/lock", unary("v3lockpb.Lock", "Lock", V3lockpb_LockRequest.self, V3lockpb_LockResponse.self)),
        ("lock/unlock", unary("v3lockpb.Lock", "Unlock", V3lockpb_UnlockRequest.self, V3lockpb_UnlockResponse.self)),
        (
            "election/campaign",
            unary("v3electionpb.Election", "Campaign", V3electionpb_CampaignRequest.self, V3electionpb_CampaignResponse.self)
        ),
        (
            "election/proclaim",
            unary("v3electionpb.Election", "Proclaim", V3electionpb_ProclaimRequest.self, V3electionpb_ProclaimResponse.self)
        ),
        (
            "election/leader",
            unary("v3electionpb.Election", "Leader", V3electionpb_LeaderRequest.self, V3electionpb_LeaderResponse.self)
        ),
        (
            "election/observe",
            route(
                "v3electionpb.Election", "Observe", V3electionpb_LeaderRequest.self, V3electionpb_LeaderResponse.self,
                streamsRequests: false, streamsResponses: true)
        ),
        (
            "election/resign",
            unary("v3electionpb.Election", "Resign", V3electionpb_ResignRequest.self, V3electionpb_ResignResponse.self)
        ),
    ]

    private static let leaseRevoke = unary(
        "etcdserverpb.Lease", "LeaseRevoke", Etcdserverpb_LeaseRevokeRequest.self, Etcdserverpb_LeaseRevokeResponse.self)
    private static let leaseTimeToLive = unary(
        "etcdserverpb.Lease", "LeaseTimeToLive", Etcdserverpb_LeaseTimeToLiveRequest.self,
        Etcdserverpb_LeaseTimeToLiveResponse.self)
    private static let leaseLeases = unary(
        "etcdserverpb.Lease", "LeaseLeases", Etcdserverpb_LeaseLeasesRequest.self, Etcdserverpb_LeaseLeasesResponse.self)

    // MARK: - JSON mapping

    /// How responses are written: proto field names, enums by name, 64-bit integers as strings.
    static var encodingOptions: JSONEncodingOptions {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        return options
    }

    /// How requests are read: unknown fields are ignored.
    static var decodingOptions: JSONDecodingOptions {
        var options = JSONDecodingOptions()
        options.ignoreUnknownFields = true
        return options
    }

    /// A JSON request object as `Request`'s protobuf encoding.
    /// - Throws: ``GatewayDecodingError`` if the JSON does not fit `Request`.
    public static func decode<Request: SwiftProtobuf.Message>(_ json: [UInt8], as _: Request.Type) throws -> [UInt8] {
        let request: Request
        do {
            request = try Request(jsonUTF8Bytes: json, options: decodingOptions)
        } catch {
            throw GatewayDecodingError("gateway: the body is not a valid JSON \(Request.protoMessageName): \(error)")
        }
        return try request.serializedBytes()
    }

    /// A protobuf-encoded `Response` as its JSON object.
    public static func encode<Response: SwiftProtobuf.Message>(_ message: [UInt8], as _: Response.Type) throws -> [UInt8] {
        try Response(serializedBytes: message).jsonUTF8Bytes(options: encodingOptions)
    }

    private static func unary<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ service: String, _ method: String, _ request: Request.Type, _ response: Response.Type
    ) -> GatewayRoute {
        route(service, method, request, response, streamsRequests: false, streamsResponses: false)
    }

    private static func route<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ service: String, _ method: String, _ request: Request.Type, _ response: Response.Type, streamsRequests: Bool,
        streamsResponses: Bool
    ) -> GatewayRoute {
        GatewayRoute(
            service: service, method: method, streamsRequests: streamsRequests, streamsResponses: streamsResponses,
            decodeRequest: { try decode($0, as: Request.self) }, encodeResponse: { try encode($0, as: Response.self) })
    }
}
