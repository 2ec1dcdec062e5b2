import EtcdMapping
import EtcdWire
import GRPCServer
import GRPCStatus
import ReplicatedMember
import StateMachine

/// `etcdserverpb.KV`: reads and writes go to the member; answers come back with a full
/// response header.
struct KVService: EtcdService {
    let host: MemberHost

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
}
