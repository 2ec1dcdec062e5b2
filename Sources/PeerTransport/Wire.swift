import NIOCore

/// The peer protocol's wire format.
///
/// Every frame is a 4-byte big-endian length followed by that many bytes of payload. The first
/// frame on a connection is the hello: the magic `SHPT`, a version byte, the cluster ID and the
/// sender's member ID (both unsigned 64-bit, big-endian), and from protocol version 2 on the
/// lowest version the sender speaks (see ``PeerHello``). Every later frame is an opaque payload,
/// except that on a connection speaking version 2 or later an empty frame is a round-trip probe.
enum PeerWire {
    /// The bytes of a frame's length prefix.
    static let lengthPrefixBytes = 4
    /// The largest payload the 4-byte length prefix can describe.
    static let largestEncodableFrame = Int(UInt32.max)

    /// Appends `payload` to `buffer` as one frame.
    static func writeFrame(_ payload: [UInt8], into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(payload.count), endianness: .big)
        buffer.writeBytes(payload)
    }
}

extension PeerHello {
    /// Parses a hello frame's payload from the connection's buffer.
    init(parsing frame: ByteBuffer) throws(ParseError) {
        try self.init(parsing: Array(frame.readableBytesView))
    }
}

extension PeerHelloReply {
    /// Parses a reply frame's payload from the connection's buffer.
    init(parsing frame: ByteBuffer) throws(PeerHello.ParseError) {
        try self.init(parsing: Array(frame.readableBytesView))
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
/// Emits each frame's payload as a `ByteBuffer`. The first frame may be at most
/// `firstFrameBytes` long (a hello, or a hello's reply); later frames at most `maxFrameBytes`. A
/// longer announced length throws ``FrameTooLargeError`` before any of its payload is buffered.
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    /// The largest payload accepted after the first frame.
    let maxFrameBytes: Int
    /// The largest first frame accepted.
    let firstFrameBytes: Int
    private var isFirstFrame = true

    /// Creates a decoder that accepts a first frame of at most `firstFrameBytes` (by default the
    /// longest hello) and later frames of at most `maxFrameBytes`.
    init(maxFrameBytes: Int, firstFrameBytes: Int = PeerHello.maxPayloadBytes) {
        self.maxFrameBytes = maxFrameBytes
        self.firstFrameBytes = firstFrameBytes
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else {
            return .needMoreData
        }
        let limit = isFirstFrame ? firstFrameBytes : maxFrameBytes
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
