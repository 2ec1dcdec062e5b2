import RaftCore

/// A request only the leader serves, sent to it by the member a client called: lease requests
/// (the leader holds the lease clock), as etcd's followers forward keep-alives and
/// time-to-live, and membership changes (only a leader proposes them).
public enum LeaderRequest: Sendable, Hashable {
    /// Renew a lease.
    case keepAlive(id: Int64)
    /// Report a lease's remaining TTL, with its keys if `keys`.
    case timeToLive(id: Int64, keys: Bool)
    /// Propose a membership change and reply once the leader has applied it.
    case confChange(ConfChange)
}

/// The leader's answer to a ``LeaderRequest``.
public enum LeaderReply: Sendable, Hashable {
    /// The lease's TTL after renewal (0 when it does not exist).
    case keepAlive(id: Int64, ttl: Int64)
    /// A lease's remaining (-1 when it does not exist) and granted TTL, and its keys.
    case timeToLive(id: Int64, remaining: Int64, granted: Int64, keys: [[UInt8]])
    /// The leader applied the membership change.
    case confChangeApplied
    /// The leader refused or failed the request.
    case refused(MemberError)
}

/// What members send each other outside Raft: requests forwarded to the leader and its replies.
/// `handle` is the forwarding member's: the reply carries it back.
public enum ForwardMessage: Sendable, Hashable {
    /// A request forwarded to the leader.
    case forward(handle: UInt64, LeaderRequest)
    /// The leader's reply to the forward with `handle`.
    case reply(handle: UInt64, LeaderReply)
}

extension Member {
    /// The first request ID the member gives requests it serves for other members; the shell's
    /// request IDs stay below it.
    static let firstServedForwardID: RequestID = 1 << 62

    /// Sends a request to the leader for the client's request `requestID`; its handle is the
    /// request ID.
    mutating func forwardToLeader(_ request: LeaderRequest, id requestID: RequestID) -> ClientResponse? {
        guard raft.leader != noNode else { return .failure(.noLeader) }
        forwardedRequests[requestID] = raft.leader
        outgoingForwardMessages.append((raft.leader, .forward(handle: requestID, request)))
        return nil
    }

    /// Processes a forward message from `peer`: on the leader, serves a forwarded request (the
    /// reply leaves through ``takeForwardMessages()``); on the forwarding member, answers the
    /// client request a reply belongs to. A membership change the leader applied is answered
    /// once this member has applied it too: after a ReadIndex round (the leader's commit index
    /// covers the change), so that the answer and what the client does next see the new
    /// membership, as etcd answers a change after applying it.
    @discardableResult
    public mutating func receive(_ message: ForwardMessage, from peer: NodeID) -> PeerMessageVerdict {
        guard recognizes(peer) else { return .unknownSender }
        switch message {
        case .forward(let handle, let request):
            // Leadership moved after the sender forwarded it: its client may ask again.
            guard raft.role == .leader else {
                outgoingForwardMessages.append((peer, .reply(handle: handle, .refused(.leaderChanged))))
                return .accepted
            }
            let requestID = nextServedForwardID
            nextServedForwardID += 1
            let clientRequest: ClientRequest =
                switch request {
                case .keepAlive(let lease): .leaseKeepAlive(id: lease)
                case .timeToLive(let lease, let keys): .leaseTimeToLive(id: lease, keys: keys)
                case .confChange(let change): .confChange(change)
                }
            servedForwards[requestID] = (peer, handle)
            if let answer = submit(clientRequest, id: requestID) {
                var answers = [(requestID, answer)]
                routeServedForwards(&answers)
            }
        case .reply(let handle, let reply):
            // Only the member the request went to answers it; a reply after the client's
            // deadline finds nothing waiting.
            guard forwardedRequests[handle] == peer else { return .accepted }
            forwardedRequests[handle] = nil
            let response: ClientResponse
            switch reply {
            case .keepAlive(let id, let ttl): response = .leaseKeepAlive(id: id, ttl: ttl)
            case .timeToLive(let id, let remaining, let granted, let keys):
                response = .leaseTimeToLive(id: id, remaining: remaining, granted: granted, keys: keys)
            case .confChangeApplied:
                guard let failure = confirmLeadership(for: .membershipApplied(RequestID(handle))) else { return .accepted }
                response = failure
            case .refused(let error): response = .failure(error)
            }
            answerLater(RequestID(handle), response)
        }
        return .accepted
    }

    /// The forward messages to send now: forwards to the leader and replies to forwarding members.
    /// They need nothing stored first; take them after every input and batch.
    public mutating func takeForwardMessages() -> [(to: NodeID, message: ForwardMessage)] {
        defer { outgoingForwardMessages = [] }
        return outgoingForwardMessages
    }

    /// Moves the answers to requests served for other members out of `responses` and into
    /// replies to them.
    mutating func routeServedForwards(_ responses: inout [(RequestID, ClientResponse)]) {
        guard !servedForwards.isEmpty else { return }
        responses.removeAll { requestID, response in
            guard let (peer, handle) = servedForwards.removeValue(forKey: requestID) else { return false }
            let reply: LeaderReply =
                switch response {
                case .leaseKeepAlive(let id, let ttl): .keepAlive(id: id, ttl: ttl)
                case .leaseTimeToLive(let id, let remaining, let granted, let keys):
                    .timeToLive(id: id, remaining: remaining, granted: granted, keys: keys)
                case .confChangeApplied: .confChangeApplied
                case .failure(let error): .refused(error)
                default: .refused(.leaderChanged)
                }
            outgoingForwardMessages.append((peer, .reply(handle: handle, reply)))
            return true
        }
    }
}
