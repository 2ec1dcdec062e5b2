import EtcdWire
import Foundation
import GRPCServer
import GRPCStatus
import RaftCore
import ReplicatedMember
import StateMachine

/// Routes gRPC calls to the etcd v3 services and plain HTTP requests to the health, version
/// and metrics endpoints.
struct Services: Sendable {
    let host: MemberHost
    let kv: KVService
    let watch: WatchService
    let lease: LeaseService
    let cluster: ClusterService
    let maintenance: MaintenanceService
    let lock: LockService
    let election: ElectionService
    let auth: AuthService
    let metrics: ServerMetrics

    init(host: MemberHost, token: String, metrics: ServerMetrics) {
        self.host = host
        kv = KVService(host: host)
        watch = WatchService(host: host)
        lease = LeaseService(host: host)
        cluster = ClusterService(host: host, token: token)
        maintenance = MaintenanceService(host: host)
        lock = LockService(host: host)
        election = ElectionService(host: host)
        auth = AuthService(host: host)
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
        case ("etcdserverpb.Lease", "LeaseGrant"): return unary(call, lease.leaseGrant)
        case ("etcdserverpb.Lease", "LeaseRevoke"): return unary(call, lease.leaseRevoke)
        case ("etcdserverpb.Lease", "LeaseKeepAlive"): return lease.leaseKeepAlive(call)
        case ("etcdserverpb.Lease", "LeaseTimeToLive"): return unary(call, lease.leaseTimeToLive)
        case ("etcdserverpb.Lease", "LeaseLeases"): return unary(call, lease.leaseLeases)
        case ("etcdserverpb.Cluster", "MemberList"): return unary(call, cluster.memberList)
        case ("etcdserverpb.Cluster", "MemberAdd"): return unary(call, cluster.memberAdd)
        case ("etcdserverpb.Cluster", "MemberRemove"): return unary(call, cluster.memberRemove)
        case ("etcdserverpb.Cluster", "MemberUpdate"): return unary(call, cluster.memberUpdate)
        case ("etcdserverpb.Cluster", "MemberPromote"): return unary(call, cluster.memberPromote)
        case ("etcdserverpb.Maintenance", "Status"): return unary(call, maintenance.status)
        case ("etcdserverpb.Maintenance", "Alarm"): return unary(call, maintenance.alarm)
        case ("etcdserverpb.Maintenance", "Hash"): return unary(call, maintenance.hash)
        case ("etcdserverpb.Maintenance", "HashKV"): return unary(call, maintenance.hashKV)
        case ("etcdserverpb.Maintenance", "MoveLeader"): return unary(call, maintenance.moveLeader)
        case ("etcdserverpb.Maintenance", "Defragment"): return unary(call, maintenance.defragment)
        case ("etcdserverpb.Maintenance", "Snapshot"): return maintenance.snapshot(call)
        case ("v3lockpb.Lock", "Lock"): return unary(call, lock.lock)
        case ("v3lockpb.Lock", "Unlock"): return unary(call, lock.unlock)
        case ("v3electionpb.Election", "Campaign"): return unary(call, election.campaign)
        case ("v3electionpb.Election", "Proclaim"): return unary(call, election.proclaim)
        case ("v3electionpb.Election", "Leader"): return unary(call, election.leader)
        case ("v3electionpb.Election", "Resign"): return unary(call, election.resign)
        case ("v3electionpb.Election", "Observe"): return election.observe(call)
        case ("etcdserverpb.Auth", "AuthEnable"): return unary(call, auth.authEnable)
        case ("etcdserverpb.Auth", "AuthDisable"): return unary(call, auth.authDisable)
        case ("etcdserverpb.Auth", "Authenticate"): return unary(call, auth.authenticate)
        case ("etcdserverpb.Auth", "UserAdd"): return unary(call, auth.userAdd)
        case ("etcdserverpb.Auth", "UserGet"): return unary(call, auth.userGet)
        case ("etcdserverpb.Auth", "UserList"): return unary(call, auth.userList)
        case ("etcdserverpb.Auth", "UserDelete"): return unary(call, auth.userDelete)
        case ("etcdserverpb.Auth", "UserChangePassword"): return unary(call, auth.userChangePassword)
        case ("etcdserverpb.Auth", "UserGrantRole"): return unary(call, auth.userGrantRole)
        case ("etcdserverpb.Auth", "UserRevokeRole"): return unary(call, auth.userRevokeRole)
        case ("etcdserverpb.Auth", "RoleAdd"): return unary(call, auth.roleAdd)
        case ("etcdserverpb.Auth", "RoleGet"): return unary(call, auth.roleGet)
        case ("etcdserverpb.Auth", "RoleList"): return unary(call, auth.roleList)
        case ("etcdserverpb.Auth", "RoleDelete"): return unary(call, auth.roleDelete)
        case ("etcdserverpb.Auth", "RoleGrantPermission"): return unary(call, auth.roleGrantPermission)
        case ("etcdserverpb.Auth", "RoleRevokePermission"): return unary(call, auth.roleRevokePermission)
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
                json(200, #"{"etcdserver":"\#(MaintenanceService.apiVersion)","etcdcluster":"\#(MaintenanceService.apiVersion)"}"#)
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
                        reason = "alarm activated: \(MaintenanceService.alarmName(alarm.alarm))"
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
