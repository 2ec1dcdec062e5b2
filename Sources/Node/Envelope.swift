import MVCC
import RaftCore

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
    var body: MVCCRequest

    static let version: UInt8 = 1

    func encoded() -> [UInt8] {
        var writer = ByteWriter()
        writer.write(Self.version)
        writer.write(origin)
        writer.write(incarnation)
        writer.write(request)
        return writer.bytes + body.encoded()
    }

    /// Decodes an envelope, or returns nil if the bytes are not one.
    init?(decoding bytes: [UInt8]) {
        guard bytes.count >= 25, bytes[0] == Self.version else { return nil }
        var reader = ByteReader(Array(bytes[1..<25]))
        guard let origin = reader.readUInt64(), let incarnation = reader.readUInt64(), let request = reader.readUInt64(),
            let body = try? MVCCRequest(decoding: Array(bytes[25...]))
        else { return nil }
        self.init(origin: origin, incarnation: incarnation, request: request, body: body)
    }

    init(origin: NodeID, incarnation: UInt64, request: RequestID, body: MVCCRequest) {
        self.origin = origin
        self.incarnation = incarnation
        self.request = request
        self.body = body
    }
}

/// Encodes the state machine's backend pairs as snapshot data, and back. The same encoding is
/// the body of a backup file (`Maintenance.Snapshot`).
public enum SnapshotCodec {
    /// The data is not a snapshot.
    public struct MalformedSnapshot: Error {}

    /// Encodes backend pairs.
    public static func encode(_ pairs: [([UInt8], [UInt8])]) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(UInt64(pairs.count))
        for (key, value) in pairs {
            writer.write(bytes: key)
            writer.write(bytes: value)
        }
        return writer.bytes
    }

    /// Decodes backend pairs.
    public static func decode(_ data: [UInt8]) throws -> [([UInt8], [UInt8])] {
        var reader = ByteReader(data)
        guard let count = reader.readUInt64(), count <= UInt64(data.count) else { throw MalformedSnapshot() }
        var pairs: [([UInt8], [UInt8])] = []
        pairs.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let key = reader.readBytes(), let value = reader.readBytes() else { throw MalformedSnapshot() }
            pairs.append((key, value))
        }
        guard reader.isAtEnd else { throw MalformedSnapshot() }
        return pairs
    }
}
