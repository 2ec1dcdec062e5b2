import EtcdGateway
import EtcdWire
import Foundation
import GRPCServer
import GRPCStatus
import SwiftProtobuf
import Testing

@Suite("etcd's grpc-gateway JSON mapping")
struct EtcdGatewayTests {
    private func route(_ path: String) throws -> GatewayRoute {
        try #require(EtcdGateway.gateway(maxRequestBytes: 1 << 20).routes[path])
    }

    private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    // MARK: - Paths

    @Test("Every path of etcd 3.4's gateway maps to its gRPC method, with the aliases")
    func paths() throws {
        let expected: [String: (String, String)] = [
            "/v3/kv/range": ("etcdserverpb.KV", "Range"),
            "/v3/kv/put": ("etcdserverpb.KV", "Put"),
            "/v3/kv/deleterange": ("etcdserverpb.KV", "DeleteRange"),
            "/v3/kv/txn": ("etcdserverpb.KV", "Txn"),
            "/v3/kv/compaction": ("etcdserverpb.KV", "Compact"),
            "/v3/watch": ("etcdserverpb.Watch", "Watch"),
            "/v3/lease/grant": ("etcdserverpb.Lease", "LeaseGrant"),
            "/v3/lease/revoke": ("etcdserverpb.Lease", "LeaseRevoke"),
            "/v3/kv/lease/revoke": ("etcdserverpb.Lease", "LeaseRevoke"),
            "/v3/lease/keepalive": ("etcdserverpb.Lease", "LeaseKeepAlive"),
            "/v3/lease/timetolive": ("etcdserverpb.Lease", "LeaseTimeToLive"),
            "/v3/kv/lease/timetolive": ("etcdserverpb.Lease", "LeaseTimeToLive"),
            "/v3/lease/leases": ("etcdserverpb.Lease", "LeaseLeases"),
            "/v3/kv/lease/leases": ("etcdserverpb.Lease", "LeaseLeases"),
            "/v3/cluster/member/list": ("etcdserverpb.Cluster", "MemberList"),
            "/v3/cluster/member/promote": ("etcdserverpb.Cluster", "MemberPromote"),
            "/v3/maintenance/status": ("etcdserverpb.Maintenance", "Status"),
            "/v3/maintenance/hash": ("etcdserverpb.Maintenance", "Hash"),
            "/v3/maintenance/hashkv": ("etcdserverpb.Maintenance", "HashKV"),
            "/v3/maintenance/snapshot": ("etcdserverpb.Maintenance", "Snapshot"),
            "/v3/maintenance/transfer-leadership": ("etcdserverpb.Maintenance", "MoveLeader"),
            "/v3/auth/user/changepw": ("etcdserverpb.Auth", "UserChangePassword"),
            "/v3/auth/role/revoke": ("etcdserverpb.Auth", "RoleRevokePermission"),
            "/v3/lock/lock": ("v3lockpb.Lock", "Lock"),
            "/v3/lock/unlock": ("v3lockpb.Lock", "Unlock"),
            "/v3/election/campaign": ("v3electionpb.Election", "Campaign"),
            "/v3/election/observe": ("v3electionpb.Election", "Observe"),
            "/v3beta/kv/range": ("etcdserverpb.KV", "Range"),
        ]
        for (path, (service, method)) in expected {
            let route = try route(path)
            #expect(route.service == service && route.method == method, "\(path)")
        }
        // etcd 3.4 registers 49 patterns, Hash and HashKV on the same path; HashKV gets 3.5's.
        #expect(EtcdGateway.routes.count == 49)
        #expect(try route("/v3/watch").streamsRequests && route("/v3/watch").streamsResponses)
        #expect(try !route("/v3/election/observe").streamsRequests && route("/v3/election/observe").streamsResponses)
        #expect(try !route("/v3/kv/range").streamsRequests && !route("/v3/kv/range").streamsResponses)
    }

    // MARK: - Requests

    @Test("Requests take base64 bytes, int64 as strings or numbers, proto or JSON names, and ignore unknown fields")
    func requestMapping() throws {
        let json = #"{"key":"Zm9v","range_end":"Zm9w","limit":"10","revision":7,"sortOrder":"DESCEND","serializable":true,"x":1}"#
        let bytes = try route("/v3/kv/range").decodeRequest(Array(json.utf8))
        let request = try Etcdserverpb_RangeRequest(serializedBytes: bytes)
        #expect(request.key == Data("foo".utf8))
        #expect(request.rangeEnd == Data("fop".utf8))
        #expect(request.limit == 10)
        #expect(request.revision == 7)
        #expect(request.sortOrder == .descend)
        #expect(request.serializable)

        let lease = try Etcdserverpb_LeaseGrantRequest(
            serializedBytes: route("/v3/lease/grant").decodeRequest(Array(#"{"TTL":"30","ID":5}"#.utf8)))
        #expect(lease.ttl == 30 && lease.id == 5)
    }

    @Test("A transaction's compares and operations decode from etcd's JSON")
    func txnRequest() throws {
        let json = #"""
            {"compare":[{"target":"CREATE","key":"YQ==","create_revision":"0"}],
             "success":[{"request_put":{"key":"YQ==","value":"MQ==","lease":"42"}}],
             "failure":[{"request_range":{"key":"YQ=="}}]}
            """#
        let request = try Etcdserverpb_TxnRequest(serializedBytes: route("/v3/kv/txn").decodeRequest(Array(json.utf8)))
        #expect(request.compare.first?.target == .create)
        #expect(request.compare.first?.createRevision == 0)
        #expect(request.success.first?.requestPut.lease == 42)
        #expect(request.failure.first?.requestRange.key == Data("a".utf8))
    }

    @Test("Malformed JSON is a decoding error naming the request message")
    func malformedRequest() throws {
        let route = try route("/v3/kv/put")
        for json in [#"{"key": }"#, #"{"lease":"x"}"#, #"{"key":"not base64!"}"#] {
            #expect {
                try route.decodeRequest(Array(json.utf8))
            } throws: { error in
                (error as? GatewayDecodingError)?.message.contains("etcdserverpb.PutRequest") == true
            }
        }
    }

    // MARK: - Responses

    @Test("Responses use proto field names, int64 as strings, base64 bytes, and leave defaults out")
    func responseMapping() throws {
        var response = Etcdserverpb_RangeResponse()
        response.header.clusterID = 14_841_639_068_965_178_418
        response.header.revision = 5
        var kv = Mvccpb_KeyValue()
        kv.key = Data("foo".utf8)
        kv.value = Data("bar".utf8)
        kv.createRevision = 2
        kv.modRevision = 5
        kv.version = 1
        response.kvs = [kv]
        response.count = 1
        let json = text(try route("/v3/kv/range").encodeResponse(try response.serializedBytes()))
        #expect(
            json
                == #"{"header":{"cluster_id":"14841639068965178418","revision":"5"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"5","version":"1","value":"YmFy"}],"count":"1"}"#
        )

        var lease = Etcdserverpb_LeaseTimeToLiveResponse()
        lease.id = 7
        lease.ttl = -1
        lease.grantedTtl = 0
        #expect(text(try route("/v3/lease/timetolive").encodeResponse(try lease.serializedBytes())) == #"{"ID":"7","TTL":"-1"}"#)
    }

    @Test("Watch events name their type, except PUT (the default, left out as etcd does)")
    func watchEvents() throws {
        var response = Etcdserverpb_WatchResponse()
        response.watchID = 0
        response.created = true
        var delete = Mvccpb_Event()
        delete.type = .delete
        delete.kv.key = Data("a".utf8)
        var put = Mvccpb_Event()
        put.kv.key = Data("b".utf8)
        response.events = [delete, put]
        let json = text(try route("/v3/watch").encodeResponse(try response.serializedBytes()))
        #expect(json == #"{"created":true,"events":[{"type":"DELETE","kv":{"key":"YQ=="}},{"kv":{"key":"Yg=="}}]}"#)
    }

    // MARK: - Errors and framing

    @Test("gRPC codes map to grpc-gateway's HTTP statuses")
    func httpStatuses() {
        #expect(GatewayJSON.httpStatus(for: .invalidArgument) == 400)
        #expect(GatewayJSON.httpStatus(for: .failedPrecondition) == 400)
        #expect(GatewayJSON.httpStatus(for: .outOfRange) == 400)
        #expect(GatewayJSON.httpStatus(for: .notFound) == 404)
        #expect(GatewayJSON.httpStatus(for: .resourceExhausted) == 429)
        #expect(GatewayJSON.httpStatus(for: .unimplemented) == 501)
        #expect(GatewayJSON.httpStatus(for: .unavailable) == 503)
        #expect(GatewayJSON.httpStatus(for: .cancelled) == 408)
    }

    @Test("Error bodies and stream chunks have grpc-gateway v1's shape")
    func errorShapes() {
        #expect(
            text(GatewayJSON.errorBody(.outOfRange, message: "etcdserver: mvcc: required revision has been compacted"))
                == #"{"error":"etcdserver: mvcc: required revision has been compacted","message":"etcdserver: mvcc: required revision has been compacted","code":11}"#
        )
        #expect(
            text(GatewayJSON.streamErrorChunk(.unavailable, message: "etcdserver: no leader"))
                == #"{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}"#
        )
        #expect(text(GatewayJSON.resultChunk(Array("{}".utf8))) == "{\"result\":{}}\n")
        #expect(GatewayJSON.quote("a\"b\\c\n<&>\u{1}") == #""a\"b\\c\n\u003c\u0026\u003e\u0001""#)
    }
}
