import EtcdMapping
import EtcdWire
import Foundation
import GRPCServer
import GRPCStatus
import MVCC
import NIOCore
import Node
import SwiftProtobuf
import Synchronization

/// `etcdserverpb.KV` and `etcdserverpb.Lease`: requests go to the member; answers come back
/// with a full response header.
struct KVAndLeaseServices {
    let host: MemberHost

    func header(_ context: HeaderContext, revision: Int64) -> Etcdserverpb_ResponseHeader {
        EtcdMapping.header(clusterID: context.clusterID, memberID: context.memberID, revision: revision, raftTerm: context.raftTerm)
    }

    /// Submits `request` and hands a successful answer to `success`, or fails the call.
    func submit(
        _ request: ClientRequest, _ responder: UnaryResponder,
        _ success: @escaping @Sendable (ClientResponse, HeaderContext) -> (any SwiftProtobuf.Message)?
    ) {
        host.submit(request) { response, context in
            if case .failure(let error) = response {
                responder.fail(ServiceError(error))
            } else if let message = success(response, context) {
                responder.succeed(message)
            } else {
                responder.fail(ServiceError(.internal, "etcdserver: unexpected response \(response)"))
            }
        }
    }

    // MARK: KV

    func range(_ request: Etcdserverpb_RangeRequest, _ responder: UnaryResponder) {
        let range: RangeRequest
        do { range = try RangeRequest(request) } catch { return responder.fail(ServiceError(error.code, error.message)) }
        submit(.range(range), responder) { response, context in
            guard case .range(let result) = response else { return nil }
            return Etcdserverpb_RangeResponse(result, header: header(context, revision: result.revision))
        }
    }

    func put(_ request: Etcdserverpb_PutRequest, _ responder: UnaryResponder) {
        submit(.write(.put(PutRequest(request))), responder) { response, context in
            guard case .write(.put(let result)) = response else { return nil }
            return Etcdserverpb_PutResponse(result, header: header(context, revision: result.revision))
        }
    }

    func deleteRange(_ request: Etcdserverpb_DeleteRangeRequest, _ responder: UnaryResponder) {
        submit(.write(.deleteRange(DeleteRangeRequest(request))), responder) { response, context in
            guard case .write(.deleteRange(let result)) = response else { return nil }
            return Etcdserverpb_DeleteRangeResponse(result, header: header(context, revision: result.revision))
        }
    }

    func txn(_ request: Etcdserverpb_TxnRequest, _ responder: UnaryResponder) {
        let txn: TxnRequest
        do { txn = try TxnRequest(request) } catch { return responder.fail(ServiceError(error.code, error.message)) }
        // etcd serves a read-only transaction like a read: serializable ones locally.
        submit(.write(.txn(txn)), responder) { response, context in
            guard case .write(.txn(let result)) = response else { return nil }
            return Etcdserverpb_TxnResponse(result, header: header(context, revision: result.revision))
        }
    }

    func compact(_ request: Etcdserverpb_CompactionRequest, _ responder: UnaryResponder) {
        submit(.write(.compaction(CompactionRequest(revision: request.revision, physical: request.physical))), responder) {
            response, context in
            guard case .write(.compaction(let result)) = response else { return nil }
            var message = Etcdserverpb_CompactionResponse()
            message.header = header(context, revision: result.revision)
            return message
        }
    }

    // MARK: Lease

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
                    switch response {
                    case .leaseKeepAlive(let id, let ttl):
                        message.id = id
                        message.ttl = ttl
                        call.send(message)
                    case .failure(.mvcc(.leaseNotFound)):
                        call.send(message)
                    case .failure(let error):
                        call.fail(ServiceError(error))
                    default:
                        call.fail(ServiceError(.internal, "etcdserver: unexpected response"))
                    }
                    if outstanding.end() { call.finish(.ok) }
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

/// `etcdserverpb.Watch`.
struct WatchService {
    let host: MemberHost

    func watch(_ call: ServerCall) -> any ServerCallHandler {
        let host = self.host
        let stream = WatchStream(call: call, requiresLeader: call.requiresLeader)
        if stream.requiresLeader && !host.hasLeaderHint {
            call.fail(.noLeader)
        }
        host.loop.execute { host.watches.open(stream) }
        call.onWritabilityChanged { writable in
            host.loop.execute { host.watches.setWritable(writable, stream: stream) }
        }
        return StreamingCall<Etcdserverpb_WatchRequest>(
            call: call,
            onMessage: { request in host.loop.execute { host.watches.handle(request, on: stream) } },
            onEnd: {
                host.loop.execute { host.watches.close(stream) }
                call.finish(.ok)
            },
            onCancel: { host.loop.execute { host.watches.close(stream) } })
    }
}
