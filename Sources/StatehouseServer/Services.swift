import EtcdWire
import Foundation
import GRPCServer
import GRPCStatus
import MVCC
import Node
import RaftCore

/// Routes gRPC calls to the etcd v3 services and plain HTTP requests to the health, version
/// and metrics endpoints.
struct Services: Sendable {
    let host: MemberHost
    let kv: KVAndLeaseServices
    let watch: WatchService
    let cluster: ClusterServices
    let recipes: RecipeServices
    let metrics: ServerMetrics

    init(host: MemberHost, token: String, metrics: ServerMetrics) {
        self.host = host
        kv = KVAndLeaseServices(host: host)
        watch = WatchService(host: host)
        cluster = ClusterServices(host: host, token: token)
        recipes = RecipeServices(host: host)
        self.metrics = metrics
    }

    private func unary<Request: SwiftProtobufMessageSendable>(
        _ call: ServerCall, _ handler: @escaping (Request, UnaryResponder) -> Void
    ) -> any ServerCallHandler {
        UnaryCall<Request>(call: call, handler: handler)
    }

    /// The gRPC router: nil means "unknown method" (the layer answers UNIMPLEMENTED).
    var route: CallRouter {
        let services = self
        return { call in services.handler(for: call) }
    }

    func handler(for call: ServerCall) -> (any ServerCallHandler)? {
        switch (call.service, call.method) {
        case ("etcdserverpb.KV", "Range"): return unary(call, kv.range)
        case ("etcdserverpb.KV", "Put"): return unary(call, kv.put)
        case ("etcdserverpb.KV", "DeleteRange"): return unary(call, kv.deleteRange)
        case ("etcdserverpb.KV", "Txn"): return unary(call, kv.txn)
        case ("etcdserverpb.KV", "Compact"): return unary(call, kv.compact)
        case ("etcdserverpb.Watch", "Watch"): return watch.watch(call)
        case ("etcdserverpb.Lease", "LeaseGrant"): return unary(call, kv.leaseGrant)
        case ("etcdserverpb.Lease", "LeaseRevoke"): return unary(call, kv.leaseRevoke)
        case ("etcdserverpb.Lease", "LeaseKeepAlive"): return kv.leaseKeepAlive(call)
        case ("etcdserverpb.Lease", "LeaseTimeToLive"): return unary(call, kv.leaseTimeToLive)
        case ("etcdserverpb.Lease", "LeaseLeases"): return unary(call, kv.leaseLeases)
        case ("etcdserverpb.Cluster", "MemberList"): return unary(call, cluster.memberList)
        case ("etcdserverpb.Cluster", "MemberAdd"): return unary(call, cluster.memberAdd)
        case ("etcdserverpb.Cluster", "MemberRemove"): return unary(call, cluster.memberRemove)
        case ("etcdserverpb.Cluster", "MemberUpdate"): return unary(call, cluster.memberUpdate)
        case ("etcdserverpb.Cluster", "MemberPromote"): return unary(call, cluster.memberPromote)
        case ("etcdserverpb.Maintenance", "Status"): return unary(call, cluster.status)
        case ("etcdserverpb.Maintenance", "Alarm"): return unary(call, cluster.alarm)
        case ("etcdserverpb.Maintenance", "Hash"): return unary(call, cluster.hash)
        case ("etcdserverpb.Maintenance", "HashKV"): return unary(call, cluster.hashKV)
        case ("etcdserverpb.Maintenance", "MoveLeader"): return unary(call, cluster.moveLeader)
        case ("etcdserverpb.Maintenance", "Defragment"): return unary(call, cluster.defragment)
        case ("etcdserverpb.Maintenance", "Snapshot"): return cluster.snapshot(call)
        case ("v3lockpb.Lock", "Lock"): return unary(call, recipes.lock)
        case ("v3lockpb.Lock", "Unlock"): return unary(call, recipes.unlock)
        case ("v3electionpb.Election", "Campaign"): return unary(call, recipes.campaign)
        case ("v3electionpb.Election", "Proclaim"): return unary(call, recipes.proclaim)
        case ("v3electionpb.Election", "Leader"): return unary(call, recipes.leader)
        case ("v3electionpb.Election", "Resign"): return unary(call, recipes.resign)
        case ("v3electionpb.Election", "Observe"): return recipes.observe(call)
        default: return nil
        }
    }

    // MARK: - HTTP

    /// `/health` (etcd 3.4's: a linearizable read must succeed and no alarm may be raised),
    /// `/livez`, `/readyz`, `/version` and `/metrics`.
    var http: HTTPRouter {
        let host = self.host
        let metrics = self.metrics
        return { request, respond in
            @Sendable func json(_ status: Int, _ body: String) {
                respond(HTTPResponse(status: status, contentType: "application/json", body: Array(body.utf8)))
            }
            let path = request.path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.path
            switch path {
            case "/version":
                json(200, #"{"etcdserver":"\#(ClusterServices.apiVersion)","etcdcluster":"\#(ClusterServices.apiVersion)"}"#)
            case "/metrics":
                respond(HTTPResponse(status: 200, contentType: "text/plain; version=0.0.4", body: metrics.render()))
            case "/livez":
                respond(HTTPResponse(status: 200, contentType: "text/plain", body: Array("ok".utf8)))
            case "/health", "/readyz":
                let readyz = path == "/readyz"
                host.submit(.range(RangeRequest(key: Array("health".utf8)))) { response, _ in
                    let alarms = host.member.store.alarms()
                    let healthy: Bool
                    var reason = ""
                    if case .failure(let error) = response {
                        healthy = false
                        reason = error.message
                    } else if let alarm = alarms.first {
                        healthy = false
                        reason = "alarm activated: \(ClusterServices.alarmName(alarm.alarm))"
                    } else {
                        healthy = true
                    }
                    if readyz {
                        let body = healthy ? "ok" : "not ready: \(reason)"
                        respond(HTTPResponse(status: healthy ? 200 : 503, contentType: "text/plain", body: Array(body.utf8)))
                    } else {
                        json(healthy ? 200 : 503, #"{"health":"\#(healthy)","reason":"\#(reason)"}"#)
                    }
                }
            default:
                respond(HTTPResponse(status: 404, contentType: "text/plain", body: Array("404 page not found\n".utf8)))
            }
        }
    }
}
