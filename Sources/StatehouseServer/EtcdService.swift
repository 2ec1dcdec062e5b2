import EtcdMapping
import EtcdWire
import GRPCServer
import GRPCStatus
import NIOCore
import ReplicatedMember
import StateMachine
import SwiftProtobuf

/// The type constraint of responses built on the member loop.
typealias SwiftProtobufMessageSendable = SwiftProtobuf.Message & Sendable

/// One of etcd's gRPC services, served by the member in `host`: one type per service
/// (`KVService`, `WatchService`, `LeaseService`, `ClusterService`, `MaintenanceService`,
/// `LockService`, `ElectionService`), routed by ``Services``.
protocol EtcdService: Sendable {
    /// The member the service answers for.
    var host: MemberHost { get }
}

extension EtcdService {
    /// A response header with the member's identity and term, at `revision`.
    func header(_ context: HeaderContext, revision: Int64) -> Etcdserverpb_ResponseHeader {
        EtcdMapping.header(clusterID: context.clusterID, memberID: context.memberID, revision: revision, raftTerm: context.raftTerm)
    }

    /// Submits `request` and hands a successful answer to `success`, or fails the call. A
    /// successful write in a client session carries the `statehouse-session-applied` trailer, by
    /// which the client knows its retries are deduplicated (etcd sends no such trailer).
    func submit(
        _ request: ClientRequest, _ responder: UnaryResponder,
        _ success: @escaping @Sendable (ClientResponse, HeaderContext) -> (any SwiftProtobuf.Message)?
    ) {
        var trailers: [(String, String)] = []
        switch request {
        case .write(_, let session?): trailers.append((SessionHeaders.applied, String(session.session)))
        case .write(.leaseGrant, nil): trailers.append((SessionHeaders.supported, "1"))
        default: break
        }
        host.submit(request, call: responder.call) { [trailers] response, context in
            if case .failure(let error) = response {
                responder.fail(ServiceError(error))
            } else if let message = success(response, context) {
                responder.succeed(message, trailers: trailers)
            } else {
                responder.fail(ServiceError(.internal, "etcdserver: unexpected response \(response)"))
            }
        }
    }

    /// Runs `body` on the member loop, then answers with its result or error. With `admin`,
    /// the call must be made by a root user while auth is enabled.
    func onLoop<Response: SwiftProtobufMessageSendable>(
        _ responder: UnaryResponder, admin: Bool = false,
        _ body: @escaping @Sendable (@escaping @Sendable (Result<Response, ServiceError>) -> Void) -> Void
    ) {
        host.loop.execute {
            if admin {
                do throws(StateError) {
                    try host.checkAdminOnLoop(responder.call)
                } catch {
                    return responder.fail(ServiceError(error))
                }
            }
            body { result in
                switch result {
                case .success(let response): responder.succeed(response)
                case .failure(let error): responder.fail(error)
                }
            }
        }
    }
}
