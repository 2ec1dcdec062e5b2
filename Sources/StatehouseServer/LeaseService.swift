import EtcdMapping
import EtcdWire
import Foundation
import GRPCServer
import GRPCStatus
import NIOCore
import ReplicatedMember
import StateMachine
import Synchronization

/// `etcdserverpb.Lease`: grants, revocations and time-to-live go through the member; keep-alives
/// renew through the leader.
struct LeaseService: EtcdService {
    let host: MemberHost

    func leaseGrant(_ request: Etcdserverpb_LeaseGrantRequest, _ responder: UnaryResponder) {
        submit(.write(.leaseGrant(LeaseGrantRequest(ttl: request.ttl, id: request.id))), responder) { response, context in
            guard case .write(.leaseGrant(let result)) = response else { return nil }
            var message = Etcdserverpb_LeaseGrantResponse()
            message.header = header(context, revision: result.revision)
            message.id = result.id
            message.ttl = result.ttl
            return message
        }
    }

    func leaseRevoke(_ request: Etcdserverpb_LeaseRevokeRequest, _ responder: UnaryResponder) {
        submit(.write(.leaseRevoke(LeaseRevokeRequest(id: request.id))), responder) { response, context in
            guard case .write(.leaseRevoke(let result)) = response else { return nil }
            var message = Etcdserverpb_LeaseRevokeResponse()
            message.header = header(context, revision: result.revision)
            return message
        }
    }

    func leaseTimeToLive(
        _ request: Etcdserverpb_LeaseTimeToLiveRequest, _ responder: UnaryResponder
    ) {
        let host = self.host
        submit(.leaseTimeToLive(id: request.id, keys: request.keys), responder) { response, context in
            guard case .leaseTimeToLive(let id, let remaining, let granted, let keys) = response else { return nil }
            var message = Etcdserverpb_LeaseTimeToLiveResponse()
            message.header = header(context, revision: host.lastKnownRevision)
            message.id = id
            message.ttl = remaining
            message.grantedTtl = granted
            message.keys = keys.map { Data($0) }
            return message
        }
    }

    func leaseLeases(_ request: Etcdserverpb_LeaseLeasesRequest, _ responder: UnaryResponder) {
        let host = self.host
        submit(.leaseLeases, responder) { response, context in
            guard case .leaseLeases(let ids) = response else { return nil }
            var message = Etcdserverpb_LeaseLeasesResponse()
            message.header = header(context, revision: host.lastKnownRevision)
            message.leases = ids.map { id in
                var status = Etcdserverpb_LeaseStatus()
                status.id = id
                return status
            }
            return message
        }
    }

    /// `LeaseKeepAlive`: each request renews through the leader and is answered in order of
    /// arrival of the answers. An unknown lease is answered with TTL 0 (as etcd does); other
    /// errors end the stream. When the client half-closes, the stream ends once every request
    /// has been answered.
    func leaseKeepAlive(_ call: ServerCall) -> any ServerCallHandler {
        let host = self.host
        if call.requiresLeader && !host.hasLeaderHint {
            call.fail(.noLeader)
        }
        let outstanding = OutstandingAnswers()
        return StreamingCall<Etcdserverpb_LeaseKeepAliveRequest>(
            call: call,
            onMessage: { request in
                outstanding.begin()
                host.submit(.leaseKeepAlive(id: request.id)) { response, context in
                    var message = Etcdserverpb_LeaseKeepAliveResponse()
                    message.header = header(context, revision: host.lastKnownRevision)
                    message.id = request.id
                    let answer = message
                    // On the call's event loop, where the client's half-close is handled: the
                    // end of the stream can then not overtake the answer.
                    call.eventLoop.execute {
                        var message = answer
                        switch response {
                        case .leaseKeepAlive(let id, let ttl):
                            message.id = id
                            message.ttl = ttl
                            call.send(message)
                        case .failure(.state(.leaseNotFound)):
                            call.send(message)
                        case .failure(let error):
                            call.fail(ServiceError(error))
                        default:
                            call.fail(ServiceError(.internal, "etcdserver: unexpected response"))
                        }
                        if outstanding.end() { call.finish(.ok) }
                    }
                }
            },
            onEnd: { if outstanding.clientEnded() { call.finish(.ok) } })
    }
}

/// Requests of a stream still waiting for their answers, so that a half-closed stream ends only
/// after the last answer.
final class OutstandingAnswers: Sendable {
    private let state = Mutex<(pending: Int, clientEnded: Bool)>((0, false))

    /// A request was submitted.
    func begin() { state.withLock { $0.pending += 1 } }

    /// A request was answered; true if the stream should end now.
    func end() -> Bool {
        state.withLock { state in
            state.pending -= 1
            return state.pending == 0 && state.clientEnded
        }
    }

    /// The client half-closed; true if the stream should end now.
    func clientEnded() -> Bool {
        state.withLock { state in
            state.clientEnded = true
            return state.pending == 0
        }
    }
}
