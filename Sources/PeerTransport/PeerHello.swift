// The peer hello, apart from NIO so that the fuzzer (scripts/fuzz.sh) can compile it alone.

/// The first frame of every connection: who is connecting, for which cluster.
struct PeerHello: Equatable, Sendable {
    /// The four bytes every hello starts with.
    static let magic: [UInt8] = Array("SHPT".utf8)
    /// The protocol version this build speaks.
    static let currentVersion: UInt8 = 1
    /// The payload bytes of a hello frame.
    static let payloadBytes = 4 + 1 + 8 + 8

    /// The protocol version the sender speaks.
    var version: UInt8
    /// The cluster the sender belongs to.
    var clusterID: UInt64
    /// The sender's member ID.
    var senderID: UInt64

    /// Creates the hello of member `senderID` of cluster `clusterID`, in this build's version.
    init(clusterID: UInt64, senderID: UInt64, version: UInt8 = Self.currentVersion) {
        self.version = version
        self.clusterID = clusterID
        self.senderID = senderID
    }

    /// Why a hello was refused.
    enum ParseError: Error, Equatable, CustomStringConvertible {
        case wrongLength(Int)
        case badMagic
        case unsupportedVersion(UInt8)

        var description: String {
            switch self {
            case .wrongLength(let length):
                return "hello of \(length) bytes, expected \(PeerHello.payloadBytes): not a Statehouse peer"
            case .badMagic:
                return "hello does not start with \"SHPT\": not a Statehouse peer"
            case .unsupportedVersion(let version):
                return "peer protocol version \(version) is not supported (this member speaks version \(PeerHello.currentVersion))"
            }
        }
    }

    /// Parses a hello frame's payload, checking its length, magic and version.
    init(parsing payload: [UInt8]) throws(ParseError) {
        guard payload.count == Self.payloadBytes else { throw .wrongLength(payload.count) }
        guard Array(payload[0..<4]) == Self.magic else { throw .badMagic }
        let version = payload[4]
        guard version == Self.currentVersion else { throw .unsupportedVersion(version) }
        self.version = version
        self.clusterID = Self.bigEndianUInt64(payload[5..<13])
        self.senderID = Self.bigEndianUInt64(payload[13..<21])
    }

    private static func bigEndianUInt64(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        bytes.reduce(0) { ($0 << 8) | UInt64($1) }
    }

    /// The hello's payload (without the length prefix).
    var encoded: [UInt8] {
        var bytes = Self.magic
        bytes.reserveCapacity(Self.payloadBytes)
        bytes.append(version)
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: clusterID >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: senderID >> UInt64(shift))) }
        return bytes
    }
}
