import NIOHPACK

/// gRPC over HTTP/2 as the tests' own clients write and read it: request headers and
/// length-prefixed messages. Written for the tests alone, sharing nothing with the server's gRPC
/// layer (`GRPCFraming`), so that a framing mistake there is not mirrored here.
public enum GRPCTestWire {
    /// One gRPC message as it arrived.
    public struct Message: Equatable, Sendable {
        /// Whether the compressed flag was set.
        public var isCompressed: Bool
        /// The message bytes.
        public var bytes: [UInt8]
    }

    /// Frames `message` as one length-prefixed message: a flag byte, a 32-bit big-endian length,
    /// then the bytes.
    public static func frame(_ message: [UInt8], compressed: Bool = false) -> [UInt8] {
        let length = UInt32(message.count)
        return [compressed ? 1 : 0, UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
            + message
    }

    /// Splits the whole messages off the front of `bytes`; `consumed` counts the bytes they took
    /// (the rest starts a message not yet complete).
    public static func messages(in bytes: some Collection<UInt8>) -> (messages: [Message], consumed: Int) {
        let bytes = Array(bytes)
        var messages: [Message] = []
        var offset = 0
        while bytes.count - offset >= 5 {
            var length = 0
            for index in 1...4 { length = length << 8 | Int(bytes[offset + index]) }
            guard bytes.count - offset - 5 >= length else { break }
            messages.append(Message(isCompressed: bytes[offset] != 0, bytes: Array(bytes[(offset + 5)..<(offset + 5 + length)])))
            offset += 5 + length
        }
        return (messages, offset)
    }

    /// The HEADERS of a gRPC request to `path` (`/package.Service/Method`).
    public static func requestHeaders(
        path: String, authority: String, contentType: String = "application/grpc", timeout: Duration? = nil,
        metadata: [(String, String)] = []
    ) -> HPACKHeaders {
        var headers = HPACKHeaders()
        headers.add(name: ":method", value: "POST")
        headers.add(name: ":scheme", value: "http")
        headers.add(name: ":path", value: path)
        headers.add(name: ":authority", value: authority)
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "te", value: "trailers")
        if let timeout {
            let (seconds, attoseconds) = timeout.components
            let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
            headers.add(name: "grpc-timeout", value: "\(max(milliseconds, 1))m")
        }
        for (name, value) in metadata { headers.add(name: name, value: value) }
        return headers
    }
}
