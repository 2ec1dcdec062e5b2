import GRPCStatus
import MVCC
import Node
import RaftCore

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
        var writer = ByteWriter()
        switch self {
        case .raft(let message):
            writer.write(UInt8(0))
            return writer.bytes + message.encoded()
        case .forward(let id, let request):
            writer.write(UInt8(1))
            writer.write(id)
            request.write(to: &writer)
        case .reply(let id, let reply):
            writer.write(UInt8(2))
            writer.write(id)
            reply.write(to: &writer)
        }
        return writer.bytes
    }

    init?(decoding bytes: [UInt8]) {
        guard let kind = bytes.first else { return nil }
        if kind == 0 {
            guard let message = RaftMessage(decoding: Array(bytes.dropFirst())) else { return nil }
            self = .raft(message)
            return
        }
        var reader = ByteReader(Array(bytes.dropFirst()))
        guard let id = reader.readUInt64() else { return nil }
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

    func write(to writer: inout ByteWriter) {
        switch self {
        case .leaseKeepAlive(let id):
            writer.write(UInt8(0))
            writer.write(UInt64(bitPattern: id))
        case .leaseTimeToLive(let id, let keys):
            writer.write(UInt8(1))
            writer.write(UInt64(bitPattern: id))
            writer.write(keys)
        case .confChange(let change):
            writer.write(UInt8(2))
            writer.write(bytes: change.encoded())
        }
    }

    init?(from reader: inout ByteReader) {
        switch reader.readUInt8() {
        case 0:
            guard let id = reader.readUInt64() else { return nil }
            self = .leaseKeepAlive(id: Int64(bitPattern: id))
        case 1:
            guard let id = reader.readUInt64(), let keys = reader.readBool() else { return nil }
            self = .leaseTimeToLive(id: Int64(bitPattern: id), keys: keys)
        case 2:
            guard let bytes = reader.readBytes(), let change = ConfChange(decoding: bytes) else { return nil }
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
    /// The request failed with this error.
    case failure(ServiceError)

    func write(to writer: inout ByteWriter) {
        switch self {
        case .leaseKeepAlive(let id, let ttl):
            writer.write(UInt8(0))
            writer.write(UInt64(bitPattern: id))
            writer.write(UInt64(bitPattern: ttl))
        case .leaseTimeToLive(let id, let remaining, let granted, let keys):
            writer.write(UInt8(1))
            writer.write(UInt64(bitPattern: id))
            writer.write(UInt64(bitPattern: remaining))
            writer.write(UInt64(bitPattern: granted))
            writer.write(UInt64(keys.count))
            for key in keys { writer.write(bytes: key) }
        case .confChangeApplied:
            writer.write(UInt8(2))
        case .failure(let error):
            writer.write(UInt8(3))
            writer.write(UInt64(error.code.rawValue))
            writer.write(bytes: Array(error.message.utf8))
        }
    }

    init?(from reader: inout ByteReader) {
        switch reader.readUInt8() {
        case 0:
            guard let id = reader.readUInt64(), let ttl = reader.readUInt64() else { return nil }
            self = .leaseKeepAlive(id: Int64(bitPattern: id), ttl: Int64(bitPattern: ttl))
        case 1:
            guard let id = reader.readUInt64(), let remaining = reader.readUInt64(), let granted = reader.readUInt64(),
                let count = reader.readUInt64(), count < 1 << 24
            else { return nil }
            var keys: [[UInt8]] = []
            for _ in 0..<count {
                guard let key = reader.readBytes() else { return nil }
                keys.append(key)
            }
            self = .leaseTimeToLive(
                id: Int64(bitPattern: id), remaining: Int64(bitPattern: remaining), granted: Int64(bitPattern: granted), keys: keys)
        case 2:
            self = .confChangeApplied
        case 3:
            guard let code = reader.readUInt64(), let status = StatusCode(rawValue: Int(clamping: code)),
                let message = reader.readBytes()
            else { return nil }
            self = .failure(ServiceError(status, String(decoding: message, as: UTF8.self)))
        default:
            return nil
        }
    }
}
