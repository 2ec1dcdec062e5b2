// The peer hello and its reply, apart from NIO so that the fuzzer (scripts/fuzz.sh) can compile
// them alone.

/// The first frame of every connection: who is connecting, for which cluster, speaking which
/// versions of the peer protocol.
///
/// The peer protocol's versions:
/// - **1**: the hello is 21 bytes (`SHPT`, the version byte 1, the cluster ID, the sender's ID)
///   and only the connecting side writes; the accepting side never answers. Builds from before
///   version ranges speak only this version, and refuse any other hello.
/// - **2**: the hello also carries the lowest version the sender speaks (22 bytes, the version
///   byte being the highest); the accepting side answers it with a ``PeerHelloReply`` naming its
///   own range and the version chosen (or none), and answers every empty frame (a probe) with an
///   empty frame, which the connecting side times as the round trip to that peer.
/// - **3**: the hello and the framing are version 2's; a leader refuses a lease request
///   forwarded over the connection with the member's error itself (its case, and for a state
///   error its wire tag) rather than the error's gRPC status and message, so that the follower
///   answers its client with the same error. A leader sends version 2's form over a connection
///   that speaks version 2 or none yet, and a follower reads either.
///
/// A member whose highest version is 1 sends the 21-byte hello, so that builds from before
/// version ranges accept it.
struct PeerHello: Equatable, Sendable {
    /// The four bytes every hello starts with.
    static let magic: [UInt8] = Array("SHPT".utf8)
    /// The protocol versions this build speaks.
    static let supportedVersions: ClosedRange<UInt8> = 1...4
    /// The payload bytes of a version-1 hello (no range).
    static let versionOnePayloadBytes = 4 + 1 + 8 + 8
    /// The payload bytes of a hello carrying a range.
    static let rangePayloadBytes = versionOnePayloadBytes + 1
    /// The longest hello payload.
    static let maxPayloadBytes = rangePayloadBytes

    /// The protocol versions the sender speaks.
    var versions: ClosedRange<UInt8>
    /// The cluster the sender belongs to.
    var clusterID: UInt64
    /// The sender's member ID.
    var senderID: UInt64

    /// Creates the hello of member `senderID` of cluster `clusterID`, speaking `versions`
    /// (whose lowest version must be at least 1).
    init(clusterID: UInt64, senderID: UInt64, versions: ClosedRange<UInt8> = Self.supportedVersions) {
        precondition(versions.lowerBound >= 1, "peer protocol versions start at 1")
        self.versions = versions
        self.clusterID = clusterID
        self.senderID = senderID
    }

    /// Why a hello or a reply was refused.
    enum ParseError: Error, Equatable, CustomStringConvertible {
        case wrongLength(Int)
        case badMagic
        case unsupportedVersion(UInt8)
        case badRange(lowest: UInt8, highest: UInt8)
        case badReply

        var description: String {
            switch self {
            case .wrongLength(let length):
                return
                    "hello of \(length) bytes, expected \(PeerHello.versionOnePayloadBytes) or \(PeerHello.rangePayloadBytes): not a Statehouse peer"
            case .badMagic:
                return "hello does not start with \"SHPT\": not a Statehouse peer"
            case .unsupportedVersion(let version):
                return "peer protocol version \(version) is not supported in a hello without a range (only version 1 is)"
            case .badRange(let lowest, let highest):
                return "hello names the peer protocol versions \(lowest)...\(highest), which is not a range of versions above 1"
            case .badReply:
                return "the answer to the hello is malformed: not a Statehouse peer"
            }
        }
    }

    /// Parses a hello frame's payload, checking its length, magic and versions: a hello without a
    /// range speaks version 1 only; a range must start at 1 or above and end above 1.
    init(parsing payload: [UInt8]) throws(ParseError) {
        guard payload.count == Self.versionOnePayloadBytes || payload.count == Self.rangePayloadBytes else {
            throw .wrongLength(payload.count)
        }
        guard Array(payload[0..<4]) == Self.magic else { throw .badMagic }
        let highest = payload[4]
        if payload.count == Self.versionOnePayloadBytes {
            guard highest == 1 else { throw .unsupportedVersion(highest) }
            versions = 1...1
        } else {
            let lowest = payload[Self.versionOnePayloadBytes]
            guard lowest >= 1, highest >= 2, lowest <= highest else { throw .badRange(lowest: lowest, highest: highest) }
            versions = lowest...highest
        }
        clusterID = Self.bigEndianUInt64(payload[5..<13])
        senderID = Self.bigEndianUInt64(payload[13..<21])
    }

    fileprivate static func bigEndianUInt64(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        bytes.reduce(0) { ($0 << 8) | UInt64($1) }
    }

    /// The hello's payload (without the length prefix): 21 bytes when the sender speaks version
    /// 1 only, else 22 with the range.
    var encoded: [UInt8] {
        var bytes = Self.magic
        bytes.reserveCapacity(Self.maxPayloadBytes)
        bytes.append(versions.upperBound)
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: clusterID >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: senderID >> UInt64(shift))) }
        if versions.upperBound >= 2 { bytes.append(versions.lowerBound) }
        return bytes
    }

    /// The highest version in both `ours` and `theirs`, or nil when they do not overlap.
    static func negotiate(_ ours: ClosedRange<UInt8>, _ theirs: ClosedRange<UInt8>) -> UInt8? {
        ours.overlaps(theirs) ? min(ours.upperBound, theirs.upperBound) : nil
    }

    /// `lowest...highest`, as logs name a range.
    static func describe(_ versions: ClosedRange<UInt8>) -> String {
        "\(versions.lowerBound)...\(versions.upperBound)"
    }
}

/// The accepting side's answer to a hello carrying a range (protocol version 2 and later): its
/// own range and the version both sides speak on the connection, or none, after which it closes
/// the connection.
struct PeerHelloReply: Equatable, Sendable {
    /// The four bytes every reply starts with.
    static let magic: [UInt8] = Array("SHPR".utf8)
    /// The payload bytes of a reply.
    static let payloadBytes = 4 + 3

    /// The protocol versions the accepting side speaks.
    var versions: ClosedRange<UInt8>
    /// The version chosen, nil when the ranges do not overlap.
    var chosen: UInt8?

    /// Creates the reply of a member speaking `versions` that chose `chosen`.
    init(versions: ClosedRange<UInt8>, chosen: UInt8?) {
        self.versions = versions
        self.chosen = chosen
    }

    /// Parses a reply's payload: the magic, a range starting at 1 or above, and a chosen version
    /// in that range or 0 for none.
    init(parsing payload: [UInt8]) throws(PeerHello.ParseError) {
        guard payload.count == Self.payloadBytes, Array(payload[0..<4]) == Self.magic else { throw .badReply }
        let (lowest, highest, chosen) = (payload[4], payload[5], payload[6])
        guard lowest >= 1, lowest <= highest, chosen == 0 || (lowest...highest).contains(chosen) else { throw .badReply }
        versions = lowest...highest
        self.chosen = chosen == 0 ? nil : chosen
    }

    /// The reply's payload (without the length prefix).
    var encoded: [UInt8] {
        Self.magic + [versions.lowerBound, versions.upperBound, chosen ?? 0]
    }
}
