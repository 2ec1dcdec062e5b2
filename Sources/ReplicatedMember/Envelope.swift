import Primitives
import RaftCore
import StateMachine

/// The payload of a normal log entry: a state-machine request and who is waiting for it.
///
/// Format 1 (a request outside any session): `0x01`, origin, incarnation and request ID (each
/// 8-byte little-endian), then the request's wire encoding. Format 2 (a write in a client
/// session) adds, after the request ID, the session, sequence number and acknowledged mark (each
/// 8-byte little-endian). Requests without a session are still written in format 1, so entries
/// written before sessions existed and those written now decode alike.
struct Envelope: Hashable, Sendable {
    /// The member that proposed it and will answer the client (``noNode`` for the leader's own
    /// lease expiries and checkpoints, which nobody waits for).
    var origin: NodeID
    /// Which start of `origin` proposed it: request identifiers restart with the process, so an
    /// entry from an earlier start must never answer a request of this one.
    var incarnation: UInt64
    /// The request's identifier on `origin`.
    var request: RequestID
    /// The client session the write belongs to, for exactly-once application; nil for none.
    var session: SessionStamp?
    /// The request itself.
    var body: StateRequest

    static let version: UInt8 = 1
    static let sessionVersion: UInt8 = 2

    func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.append(session == nil ? Self.version : Self.sessionVersion)
        out.appendLittleEndian(origin)
        out.appendLittleEndian(incarnation)
        out.appendLittleEndian(request)
        if let session {
            out.appendLittleEndian(UInt64(bitPattern: session.session))
            out.appendLittleEndian(session.sequence)
            out.appendLittleEndian(session.acknowledged)
        }
        return out + body.encoded()
    }

    /// Decodes an envelope, or returns nil if the bytes are not one.
    init?(decoding bytes: [UInt8]) {
        guard let version = bytes.first, version == Self.version || version == Self.sessionVersion else { return nil }
        let headerLength = version == Self.version ? 25 : 49
        guard bytes.count >= headerLength else { return nil }
        var reader = ByteReader(Array(bytes[1..<headerLength]))
        guard let origin = try? reader.readLittleEndianUInt64(), let incarnation = try? reader.readLittleEndianUInt64(),
            let request = try? reader.readLittleEndianUInt64(), let body = try? StateRequest(decoding: Array(bytes[headerLength...]))
        else { return nil }
        var session: SessionStamp? = nil
        if version == Self.sessionVersion {
            guard let id = try? reader.readLittleEndianUInt64(), let sequence = try? reader.readLittleEndianUInt64(),
                let acknowledged = try? reader.readLittleEndianUInt64()
            else { return nil }
            session = SessionStamp(session: Int64(bitPattern: id), sequence: sequence, acknowledged: acknowledged)
        }
        self.init(origin: origin, incarnation: incarnation, request: request, session: session, body: body)
    }

    init(origin: NodeID, incarnation: UInt64, request: RequestID, session: SessionStamp? = nil, body: StateRequest) {
        self.origin = origin
        self.incarnation = incarnation
        self.request = request
        self.session = session
        self.body = body
    }
}

extension Member {
    /// The member and request that a normal log entry answers, if the entry carries a client
    /// request: the simulator uses it to check that an acknowledged write is the entry at the
    /// index it was acknowledged at.
    @_spi(Testing) public static func requestOrigin(of entry: LogEntry) -> (origin: NodeID, incarnation: UInt64, request: RequestID)? {
        guard entry.kind == .normal, let envelope = Envelope(decoding: entry.data) else { return nil }
        return (envelope.origin, envelope.incarnation, envelope.request)
    }
}
