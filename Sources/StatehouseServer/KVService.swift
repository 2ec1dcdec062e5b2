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
        let session: SessionStamp?
        do { session = try SessionHeaders.stamp(in: responder.call.metadata) } catch { return responder.fail(error) }
        submit(.write(.put(PutRequest(request)), session: session), responder) { response, context in
            guard case .write(.put(let result)) = response else { return nil }
            return Etcdserverpb_PutResponse(result, header: header(context, revision: result.revision))
        }
    }

    func deleteRange(_ request: Etcdserverpb_DeleteRangeRequest, _ responder: UnaryResponder) {
        let session: SessionStamp?
        do { session = try SessionHeaders.stamp(in: responder.call.metadata) } catch { return responder.fail(error) }
        submit(.write(.deleteRange(DeleteRangeRequest(request)), session: session), responder) { response, context in
            guard case .write(.deleteRange(let result)) = response else { return nil }
            return Etcdserverpb_DeleteRangeResponse(result, header: header(context, revision: result.revision))
        }
    }

    func txn(_ request: Etcdserverpb_TxnRequest, _ responder: UnaryResponder) {
        let txn: TxnRequest
        do { txn = try TxnRequest(request) } catch { return responder.fail(ServiceError(error.code, error.message)) }
        let session: SessionStamp?
        do { session = try SessionHeaders.stamp(in: responder.call.metadata) } catch { return responder.fail(error) }
        // etcd serves a read-only transaction like a read: serializable ones locally.
        submit(.write(.txn(txn), session: session), responder) { response, context in
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

/// The request metadata that places a KV write (Put, DeleteRange, Txn) in a client session for
/// exactly-once application (see docs/api.md). A request without `statehouse-session` is applied
/// as etcd applies it.
enum SessionHeaders {
    /// The session: the decimal ID of a lease the client keeps alive.
    static let session = "statehouse-session"
    /// The write's decimal sequence number within the session.
    static let sequence = "statehouse-sequence"
    /// The lowest decimal sequence number whose answer the client has not received yet.
    static let acknowledged = "statehouse-acknowledged"
    /// The trailer of a successful write applied in a session: the session's decimal ID.
    static let applied = "statehouse-session-applied"
    /// The trailer of every granted lease: this server applies writes in sessions, so a client
    /// that grants its session lease knows before its first write (etcd sends no such trailer).
    static let supported = "statehouse-sessions"

    /// Reads the session stamp from a call's metadata: nil when `statehouse-session` is absent.
    ///
    /// - Throws: ``ServiceError`` (INVALID_ARGUMENT) when a header is malformed or missing.
    static func stamp(in metadata: [(name: String, value: String)]) throws(ServiceError) -> SessionStamp? {
        func value(_ name: String) -> String? { metadata.first { $0.name == name }?.value }
        guard let sessionText = value(session) else { return nil }
        guard let id = Int64(sessionText), id > 0, let sequenceText = value(sequence), let number = UInt64(sequenceText),
            let acknowledgedText = value(acknowledged), let mark = UInt64(acknowledgedText), mark <= number
        else {
            throw ServiceError(
                .invalidArgument,
                "statehouse: malformed session headers (\(session), \(sequence), \(acknowledged): decimal, acknowledged <= sequence)")
        }
        return SessionStamp(session: id, sequence: number, acknowledged: mark)
    }
}
