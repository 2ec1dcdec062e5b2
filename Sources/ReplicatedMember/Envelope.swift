import Primitives
import RaftCore
import StateMachine

/// The payload of a normal log entry: a state-machine request and who is waiting for it.
struct Envelope: Hashable, Sendable {
    /// The member that proposed it and will answer the client (``noNode`` for the leader's own
    /// lease expiries and checkpoints, which nobody waits for).
    var origin: NodeID
    /// Which start of `origin` proposed it: request identifiers restart with the process, so an
    /// entry from an earlier start must never answer a request of this one.
    var incarnation: UInt64
    /// The request's identifier on `origin`.
    var request: RequestID
    /// The request itself.
    var body: StateRequest

    static let version: UInt8 = 1

    func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.append(Self.version)
        out.appendLittleEndian(origin)
        out.appendLittleEndian(incarnation)
        out.appendLittleEndian(request)
        return out + body.encoded()
    }

    /// Decodes an envelope, or returns nil if the bytes are not one.
    init?(decoding bytes: [UInt8]) {
        guard bytes.count >= 25, bytes[0] == Self.version else { return nil }
        var reader = ByteReader(Array(bytes[1..<25]))
        guard let origin = try? reader.readLittleEndianUInt64(), let incarnation = try? reader.readLittleEndianUInt64(),
            let request = try? reader.readLittleEndianUInt64(), let body = try? StateRequest(decoding: Array(bytes[25...]))
        else { return nil }
        self.init(origin: origin, incarnation: incarnation, request: request, body: body)
    }

    init(origin: NodeID, incarnation: UInt64, request: RequestID, body: StateRequest) {
        self.origin = origin
        self.incarnation = incarnation
        self.request = request
        self.body = body
    }
}
