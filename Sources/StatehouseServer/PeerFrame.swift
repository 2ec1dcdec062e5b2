import GRPCStatus
import Primitives
import RaftCore
import ReplicatedMember
import StateMachine

/// What members send each other over the peer transport: Raft messages, and the few client
/// requests only the leader can answer (lease renewals and time-to-live, membership changes),
/// forwarded from the member a client called.
enum PeerFrame: Sendable, Hashable {
    /// A Raft message.
    case raft(RaftMessage)
    /// A request forwarded to the leader; `id` is the sender's handle for the reply.
    case forward(id: UInt64, ForwardedRequest)
    /// The leader's reply to a forwarded request.
    case reply(id: UInt64, ForwardedReply)

    func encoded() -> [UInt8] {
        var out: [UInt8] = []
        switch self {
        case .raft(let message):
            out.append(0)
            return out + message.encoded()
        case .forward(let id, let request):
            out.append(1)
            out.appendLittleEndian(id)
            request.write(to: &out)
        case .reply(let id, let reply):
            out.append(2)
            out.appendLittleEndian(id)
            reply.write(to: &out)
        }
        return out
    }

    init?(decoding bytes: [UInt8]) {
        guard let kind = bytes.first else { return nil }
        if kind == 0 {
            guard let message = RaftMessage(decoding: Array(bytes.dropFirst())) else { return nil }
            self = .raft(message)
            return
        }
        var reader = ByteReader(Array(bytes.dropFirst()))
        guard let id = try? reader.readLittleEndianUInt64() else { return nil }
        switch kind {
        case 1:
            guard let request = ForwardedRequest(from: &reader), reader.isAtEnd else { return nil }
            self = .forward(id: id, request)
        case 2:
            guard let reply = ForwardedReply(from: &reader), reader.isAtEnd else { return nil }
            self = .reply(id: id, reply)
        default:
            return nil
        }
    }
}

/// A request a follower forwards to the leader.
enum ForwardedRequest: Sendable, Hashable {
    /// Renew a lease.
    case leaseKeepAlive(id: Int64)
    /// Report a lease's remaining TTL.
    case leaseTimeToLive(id: Int64, keys: Bool)
    /// Propose a membership change.
    case confChange(ConfChange)

    func write(to out: inout [UInt8]) {
        switch self {
        case .leaseKeepAlive(let id):
            out.append(0)
            out.appendLittleEndian(UInt64(bitPattern: id))
        case .leaseTimeToLive(let id, let keys):
            out.append(1)
            out.appendLittleEndian(UInt64(bitPattern: id))
            out.appendBool(keys)
        case .confChange(let change):
            out.append(2)
            out.appendUInt32LengthPrefixed(change.encoded())
        }
    }

    init?(from reader: inout ByteReader) {
        switch try? reader.readByte() {
        case 0:
            guard let id = try? reader.readLittleEndianUInt64() else { return nil }
            self = .leaseKeepAlive(id: Int64(bitPattern: id))
        case 1:
            guard let id = try? reader.readLittleEndianUInt64(), let keys = try? reader.readBool() else { return nil }
            self = .leaseTimeToLive(id: Int64(bitPattern: id), keys: keys)
        case 2:
            guard let bytes = try? reader.readUInt32LengthPrefixed(), let change = ConfChange(decoding: bytes) else { return nil }
            self = .confChange(change)
        default:
            return nil
        }
    }
}

/// The leader's answer to a ``ForwardedRequest``.
enum ForwardedReply: Sendable, Hashable {
    /// A lease's TTL after renewal (0 when it does not exist).
    case leaseKeepAlive(id: Int64, ttl: Int64)
    /// A lease's remaining and granted TTL and its keys.
    case leaseTimeToLive(id: Int64, remaining: Int64, granted: Int64, keys: [[UInt8]])
    /// The membership change was applied.
    case confChangeApplied
    /// The request failed with this status and message (how builds before peer protocol 4
    /// refuse a membership change, and before 3 any request).
    case failure(ServiceError)
    /// The leader refused or failed the request with this error.
    case refused(MemberError)

    func write(to out: inout [UInt8]) {
        switch self {
        case .leaseKeepAlive(let id, let ttl):
            out.append(0)
            out.appendLittleEndian(UInt64(bitPattern: id))
            out.appendLittleEndian(UInt64(bitPattern: ttl))
        case .leaseTimeToLive(let id, let remaining, let granted, let keys):
            out.append(1)
            out.appendLittleEndian(UInt64(bitPattern: id))
            out.appendLittleEndian(UInt64(bitPattern: remaining))
            out.appendLittleEndian(UInt64(bitPattern: granted))
            out.appendLittleEndian(UInt64(keys.count))
            for key in keys { out.appendUInt32LengthPrefixed(key) }
        case .confChangeApplied:
            out.append(2)
        case .failure(let error):
            out.append(3)
            out.appendLittleEndian(UInt64(error.code.rawValue))
            out.appendUInt32LengthPrefixed(Array(error.message.utf8))
        case .refused(let error):
            out.append(4)
            error.write(to: &out)
        }
    }

    init?(from reader: inout ByteReader) {
        switch try? reader.readByte() {
        case 0:
            guard let id = try? reader.readLittleEndianUInt64(), let ttl = try? reader.readLittleEndianUInt64() else { return nil }
            self = .leaseKeepAlive(id: Int64(bitPattern: id), ttl: Int64(bitPattern: ttl))
        case 1:
            guard let id = try? reader.readLittleEndianUInt64(), let remaining = try? reader.readLittleEndianUInt64(),
                let granted = try? reader.readLittleEndianUInt64(),
                let count = try? reader.readLittleEndianUInt64(), count < 1 << 24
            else { return nil }
            var keys: [[UInt8]] = []
            for _ in 0..<count {
                guard let key = try? reader.readUInt32LengthPrefixed() else { return nil }
                keys.append(key)
            }
            self = .leaseTimeToLive(
                id: Int64(bitPattern: id), remaining: Int64(bitPattern: remaining), granted: Int64(bitPattern: granted), keys: keys)
        case 2:
            self = .confChangeApplied
        case 3:
            guard let code = try? reader.readLittleEndianUInt64(), let status = StatusCode(rawValue: Int(clamping: code)),
                let message = try? reader.readUInt32LengthPrefixed()
            else { return nil }
            self = .failure(ServiceError(status, String(decoding: message, as: UTF8.self)))
        case 4:
            guard let error = MemberError(from: &reader) else { return nil }
            self = .refused(error)
        default:
            return nil
        }
    }
}

extension PeerFrame {
    /// The frame carrying a member's forward or reply (``Member/takeForwardMessages()``) on a
    /// connection speaking `protocolVersion`. A refusal goes as the member error itself when the
    /// peer reads that case (protocol 3 for the lease errors, 4 for the membership ones), else
    /// (before version 3, or with no connection yet) as a status and message, which the older
    /// build reads.
    init(_ message: ForwardMessage, protocolVersion: UInt8) {
        switch message {
        case .forward(let handle, .keepAlive(let lease)): self = .forward(id: handle, .leaseKeepAlive(id: lease))
        case .forward(let handle, .timeToLive(let lease, let keys)): self = .forward(id: handle, .leaseTimeToLive(id: lease, keys: keys))
        case .forward(let handle, .confChange(let change)): self = .forward(id: handle, .confChange(change))
        case .reply(let handle, .keepAlive(let id, let ttl)): self = .reply(id: handle, .leaseKeepAlive(id: id, ttl: ttl))
        case .reply(let handle, .timeToLive(let id, let remaining, let granted, let keys)):
            self = .reply(id: handle, .leaseTimeToLive(id: id, remaining: remaining, granted: granted, keys: keys))
        case .reply(let handle, .confChangeApplied): self = .reply(id: handle, .confChangeApplied)
        case .reply(let handle, .refused(let error)):
            self = .reply(id: handle, protocolVersion >= error.firstProtocolVersion ? .refused(error) : .failure(ServiceError(error)))
        }
    }
}

extension LeaderRequest {
    /// The request a forwarded request carries.
    init(_ request: ForwardedRequest) {
        switch request {
        case .leaseKeepAlive(let lease): self = .keepAlive(id: lease)
        case .leaseTimeToLive(let lease, let keys): self = .timeToLive(id: lease, keys: keys)
        case .confChange(let change): self = .confChange(change)
        }
    }
}

extension LeaderReply {
    /// The leader's reply to a forwarded request. A leader of an older build refuses with a
    /// status and message (before peer protocol 3 any refusal, before 4 a membership change's),
    /// read as "leader changed": the client may ask again.
    init(_ reply: ForwardedReply) {
        switch reply {
        case .leaseKeepAlive(let id, let ttl): self = .keepAlive(id: id, ttl: ttl)
        case .leaseTimeToLive(let id, let remaining, let granted, let keys):
            self = .timeToLive(id: id, remaining: remaining, granted: granted, keys: keys)
        case .confChangeApplied: self = .confChangeApplied
        case .refused(let error): self = .refused(error)
        case .failure: self = .refused(.leaderChanged)
        }
    }
}

/// A member's error as its case crosses the peer link, so that the member that forwarded a
/// request answers its client with the same error, not one recovered from a message text.
extension MemberError {
    /// The first peer protocol version that carries this case.
    var firstProtocolVersion: UInt8 {
        switch self {
        case .membershipChangePending, .leaderTransferInProgress, .invalidMembershipChange, .learnerNotReady: 4
        default: 3
        }
    }

    func write(to out: inout [UInt8]) {
        switch self {
        case .state(let error):
            out.append(0)
            out.appendUInt32LengthPrefixed(error.encoded())
        case .noLeader: out.append(1)
        case .notLeader(let leader):
            out.append(2)
            out.appendLittleEndian(leader)
        case .leaderChanged: out.append(3)
        case .tooManyRequests: out.append(4)
        case .timedOutDueToLeaderFailure: out.append(5)
        case .badLeaderTransferee: out.append(6)
        case .leaderTransferTimeout: out.append(7)
        case .membershipChangePending: out.append(8)
        case .leaderTransferInProgress: out.append(9)
        case .invalidMembershipChange(let reason):
            out.append(10)
            out.appendUInt32LengthPrefixed(Array(reason.utf8))
        case .learnerNotReady: out.append(11)
        }
    }

    init?(from reader: inout ByteReader) {
        switch try? reader.readByte() {
        case 0:
            guard let bytes = try? reader.readUInt32LengthPrefixed(), let error = try? StateError(decoding: bytes) else { return nil }
            self = .state(error)
        case 1: self = .noLeader
        case 2:
            guard let leader = try? reader.readLittleEndianUInt64() else { return nil }
            self = .notLeader(leader: leader)
        case 3: self = .leaderChanged
        case 4: self = .tooManyRequests
        case 5: self = .timedOutDueToLeaderFailure
        case 6: self = .badLeaderTransferee
        case 7: self = .leaderTransferTimeout
        case 8: self = .membershipChangePending
        case 9: self = .leaderTransferInProgress
        case 10:
            guard let reason = try? reader.readUInt32LengthPrefixed() else { return nil }
            self = .invalidMembershipChange(reason: String(decoding: reason, as: UTF8.self))
        case 11: self = .learnerNotReady
        default: return nil
        }
    }
}
