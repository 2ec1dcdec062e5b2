import RaftCore

/// A lease request only the leader answers (it holds the lease clock), sent to it by the member
/// a client called, as etcd's followers forward keep-alives and time-to-live to their leader.
public enum ForwardedLeaseRequest: Sendable, Hashable {
    /// Renew a lease.
    case keepAlive(id: Int64)
    /// Report a lease's remaining TTL, with its keys if `keys`.
    case timeToLive(id: Int64, keys: Bool)
}

/// The leader's answer to a ``ForwardedLeaseRequest``.
public enum ForwardedLeaseReply: Sendable, Hashable {
    /// The lease's TTL after renewal (0 when it does not exist).
    case keepAlive(id: Int64, ttl: Int64)
    /// A lease's remaining (-1 when it does not exist) and granted TTL, and its keys.
    case timeToLive(id: Int64, remaining: Int64, granted: Int64, keys: [[UInt8]])
    /// The leader refused or failed the request.
    case refused(MemberError)
}

/// What members send each other outside Raft: forwarded lease requests and their replies.
/// `handle` is the forwarding member's: the reply carries it back.
public enum LeaseMessage: Sendable, Hashable {
    /// A lease request forwarded to the leader.
    case forward(handle: UInt64, ForwardedLeaseRequest)
    /// The leader's reply to the forward with `handle`.
    case reply(handle: UInt64, ForwardedLeaseReply)
}

extension Member {
    /// The first request ID the member gives requests it serves for other members; the shell's
    /// request IDs stay below it.
    static let firstServedForwardID: RequestID = 1 << 62

    /// Sends a lease request to the leader for the client's request `requestID`; its handle is
    /// the request ID.
    mutating func forwardLeaseRequest(_ request: ForwardedLeaseRequest, id requestID: RequestID) -> ClientResponse? {
        guard raft.leader != noNode else { return .failure(.noLeader) }
        forwardedLeaseRequests[requestID] = raft.leader
        outgoingLeaseMessages.append((raft.leader, .forward(handle: requestID, request)))
        return nil
    }

    /// Processes a lease message from `peer`: on the leader, serves a forwarded request (the
    /// reply leaves through ``takeLeaseMessages()``); on the forwarding member, answers the
    /// client request a reply belongs to.
    @discardableResult
    public mutating func receive(_ message: LeaseMessage, from peer: NodeID) -> PeerMessageVerdict {
        guard recognizes(peer) else { return .unknownSender }
        switch message {
        case .forward(let handle, let request):
            // Leadership moved after the sender forwarded it: its client may ask again.
            guard raft.role == .leader else {
                outgoingLeaseMessages.append((peer, .reply(handle: handle, .refused(.leaderChanged))))
                return .accepted
            }
            let requestID = nextServedForwardID
            nextServedForwardID += 1
            let clientRequest: ClientRequest =
                switch request {
                case .keepAlive(let lease): .leaseKeepAlive(id: lease)
                case .timeToLive(let lease, let keys): .leaseTimeToLive(id: lease, keys: keys)
                }
            servedForwards[requestID] = (peer, handle)
            if let answer = submit(clientRequest, id: requestID) {
                var answers = [(requestID, answer)]
                routeServedForwards(&answers)
            }
        case .reply(let handle, let reply):
            // Only the member the request went to answers it; a reply after the client's
            // deadline finds nothing waiting.
            guard forwardedLeaseRequests[handle] == peer else { return .accepted }
            forwardedLeaseRequests[handle] = nil
            let response: ClientResponse =
                switch reply {
                case .keepAlive(let id, let ttl): .leaseKeepAlive(id: id, ttl: ttl)
                case .timeToLive(let id, let remaining, let granted, let keys):
                    .leaseTimeToLive(id: id, remaining: remaining, granted: granted, keys: keys)
                case .refused(let error): .failure(error)
                }
            answerLater(RequestID(handle), response)
        }
        return .accepted
    }

    /// The lease messages to send now: forwards to the leader and replies to forwarding members.
    /// They need nothing stored first; take them after every input and batch.
    public mutating func takeLeaseMessages() -> [(to: NodeID, message: LeaseMessage)] {
        defer { outgoingLeaseMessages = [] }
        return outgoingLeaseMessages
    }

    /// Moves the answers to requests served for other members out of `responses` and into
    /// replies to them.
    mutating func routeServedForwards(_ responses: inout [(RequestID, ClientResponse)]) {
        guard !servedForwards.isEmpty else { return }
        responses.removeAll { requestID, response in
            guard let (peer, handle) = servedForwards.removeValue(forKey: requestID) else { return false }
            let reply: ForwardedLeaseReply =
                switch response {
                case .leaseKeepAlive(let id, let ttl): .keepAlive(id: id, ttl: ttl)
                case .leaseTimeToLive(let id, let remaining, let granted, let keys):
                    .timeToLive(id: id, remaining: remaining, granted: granted, keys: keys)
                case .failure(let error): .refused(error)
                default: .refused(.leaderChanged)
                }
            outgoingLeaseMessages.append((peer, .reply(handle: handle, reply)))
            return true
        }
    }
}
