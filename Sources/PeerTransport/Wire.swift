import NIOCore

/// The peer protocol's wire format.
///
/// Every frame is a 4-byte big-endian length followed by that many bytes of payload. The first
/// frame on a connection is the hello: the magic `SHPT`, a version byte, the cluster ID and the
/// sender's member ID (both unsigned 64-bit, big-endian). Every later frame is an opaque payload.
enum PeerWire {
    /// The four bytes every hello starts with.
    static let magic: [UInt8] = Array("SHPT".utf8)
    /// The protocol version this build speaks.
    static let version: UInt8 = 1
    /// The bytes of a frame's length prefix.
    static let lengthPrefixBytes = 4
    /// The payload bytes of a hello frame.
    static let helloBytes = 4 + 1 + 8 + 8
    /// The largest payload the 4-byte length prefix can describe.
    static let largestEncodableFrame = Int(UInt32.max)

    /// Appends `payload` to `buffer` as one frame.
    static func writeFrame(_ payload: [UInt8], into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(payload.count), endianness: .big)
        buffer.writeBytes(payload)
    }
}

/// The first frame of every connection: who is connecting, for which cluster.
struct PeerHello: Equatable, Sendable {
    /// The protocol version the sender speaks.
    var version: UInt8
    /// The cluster the sender belongs to.
    var clusterID: UInt64
    /// The sender's member ID.
    var senderID: UInt64

    /// Creates the hello of member `senderID` of cluster `clusterID`, in this build's version.
    init(clusterID: UInt64, senderID: UInt64, version: UInt8 = PeerWire.version) {
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
                return "hello of \(length) bytes, expected \(PeerWire.helloBytes): not a Statehouse peer"
            case .badMagic:
                return "hello does not start with \"SHPT\": not a Statehouse peer"
            case .unsupportedVersion(let version):
                return "peer protocol version \(version) is not supported (this member speaks version \(PeerWire.version))"
            }
        }
    }

    /// Parses a hello frame's payload, checking its magic and version.
    init(parsing frame: ByteBuffer) throws(ParseError) {
        guard frame.readableBytes == PeerWire.helloBytes else { throw .wrongLength(frame.readableBytes) }
        var frame = frame
        guard frame.readBytes(length: 4) == PeerWire.magic else { throw .badMagic }
        let version = frame.readInteger(as: UInt8.self)!
        guard version == PeerWire.version else { throw .unsupportedVersion(version) }
        self.version = version
        self.clusterID = frame.readInteger(endianness: .big, as: UInt64.self)!
        self.senderID = frame.readInteger(endianness: .big, as: UInt64.self)!
    }

    /// The hello's payload (without the length prefix).
    var encoded: [UInt8] {
        var bytes = PeerWire.magic
        bytes.reserveCapacity(PeerWire.helloBytes)
        bytes.append(version)
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: clusterID >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: senderID >> UInt64(shift))) }
        return bytes
    }
}

/// An inbound frame longer than the connection accepts.
struct FrameTooLargeError: Error, Equatable, CustomStringConvertible {
    /// The length the frame's prefix announced.
    var length: Int
    /// The largest length accepted at that point.
    var limit: Int
    /// Whether this was the connection's first frame, which must be a hello.
    var isFirstFrame: Bool

    var description: String {
        if isFirstFrame {
            return "first frame of \(length) bytes is too long for a hello (\(limit) bytes): not a Statehouse peer"
        }
        return "frame of \(length) bytes exceeds the limit of \(limit) bytes (maxFrameBytes)"
    }
}

/// Splits an inbound byte stream into frames, however the bytes were split into reads.
///
/// Emits each frame's payload as a `ByteBuffer`. The first frame may be at most a hello's length;
/// later frames at most `maxFrameBytes`. A longer announced length throws ``FrameTooLargeError``
/// before any of its payload is buffered.
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    /// The largest payload accepted after the hello.
    let maxFrameBytes: Int
    private var isFirstFrame = true

    /// Creates a decoder that accepts frames of at most `maxFrameBytes` after the hello.
    init(maxFrameBytes: Int) {
        self.maxFrameBytes = maxFrameBytes
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else {
            return .needMoreData
        }
        let limit = isFirstFrame ? PeerWire.helloBytes : maxFrameBytes
        guard UInt64(length) <= UInt64(max(limit, 0)) else {
            throw FrameTooLargeError(length: Int(length), limit: limit, isFirstFrame: isFirstFrame)
        }
        guard buffer.readableBytes >= PeerWire.lengthPrefixBytes + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: PeerWire.lengthPrefixBytes)
        let frame = buffer.readSlice(length: Int(length))!
        isFirstFrame = false
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A frame cut short by the end of the stream is dropped with the connection.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
