public import GRPCStatus

/// Why a gRPC request's framing was refused, as the status to answer with.
public struct GRPCFramingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The status code to send.
    public var code: StatusCode
    /// The `grpc-message` to send.
    public var message: String

    /// Creates an error answered with `code` and `message`.
    public init(code: StatusCode, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code) (\(code.rawValue)): \(message)" }
}

/// Reassembles gRPC's length-prefixed messages from the bytes of HTTP/2 DATA frames.
///
/// Each message is a 1-byte compressed flag, a 4-byte big-endian length, then the message. A
/// message may span several DATA frames, and one frame may hold several messages. Only the
/// identity encoding is accepted: a compressed message is refused with UNIMPLEMENTED, as is a
/// message longer than the limit with RESOURCE_EXHAUSTED.
public struct GRPCMessageDecoder: Sendable {
    /// The largest message accepted, in bytes.
    public let maximumMessageBytes: Int
    private var buffer: [UInt8] = []
    private var consumed = 0

    /// Creates a decoder that accepts messages of at most `maximumMessageBytes`.
    public init(maximumMessageBytes: Int) {
        self.maximumMessageBytes = maximumMessageBytes
    }

    /// Whether bytes of an incomplete message are waiting (at the end of a stream, a protocol error).
    public var hasPartialMessage: Bool { consumed < buffer.count }

    /// The bytes of an incomplete message (and its prefix) held until the rest arrives.
    public var bufferedBytes: Int { buffer.count - consumed }

    /// Adds the bytes of a DATA frame and returns every message they complete, in order.
    /// - Throws: ``GRPCFramingError`` for a compressed or oversized message; the stream must end.
    public mutating func append(_ bytes: some Sequence<UInt8>) throws(GRPCFramingError) -> [[UInt8]] {
        buffer.append(contentsOf: bytes)
        var messages: [[UInt8]] = []
        while buffer.count - consumed >= 5 {
            let flag = buffer[consumed]
            var length = 0
            for offset in 1...4 { length = length << 8 | Int(buffer[consumed + offset]) }
            guard flag == 0 else {
                throw GRPCFramingError(
                    code: flag == 1 ? .unimplemented : .internal,
                    message: flag == 1 ? "compressed messages are not supported (identity encoding only)" : "invalid message flag \(flag)")
            }
            guard length <= maximumMessageBytes else {
                // grpc-go's wording, which etcd's clients see from etcd.
                throw GRPCFramingError(
                    code: .resourceExhausted,
                    message: "grpc: received message larger than max (\(length) vs. \(maximumMessageBytes))")
            }
            guard buffer.count - consumed - 5 >= length else { break }
            messages.append(Array(buffer[(consumed + 5)..<(consumed + 5 + length)]))
            consumed += 5 + length
        }
        if consumed == buffer.count {
            // A long-lived stream keeps a small buffer, not the room its largest message took.
            buffer.removeAll(keepingCapacity: buffer.capacity <= 64 * 1024)
            consumed = 0
        } else if consumed > 64 * 1024 {
            buffer.removeFirst(consumed)
            consumed = 0
        }
        return messages
    }
}

/// gRPC wire conventions that are plain text or bytes.
public enum GRPCWire {
    /// Returns `message` with gRPC's 5-byte prefix (uncompressed).
    public static func frame(_ message: [UInt8]) -> [UInt8] {
        let length = UInt32(message.count)
        return [0, UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + message
    }

    /// Parses a `grpc-timeout` header ("1S", "250m", "10u", "3H"…) into nanoseconds, or nil if it
    /// is malformed (at most 8 digits, then one of H M S m u n).
    public static func timeoutNanoseconds(_ header: String) -> Int64? {
        let utf8 = Array(header.utf8)
        guard utf8.count >= 2, utf8.count <= 9, let unit = utf8.last else { return nil }
        var value: Int64 = 0
        for digit in utf8.dropLast() {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(digit - UInt8(ascii: "0"))
        }
        let nanosecondsPerUnit: Int64
        switch unit {
        case UInt8(ascii: "H"): nanosecondsPerUnit = 3_600_000_000_000
        case UInt8(ascii: "M"): nanosecondsPerUnit = 60_000_000_000
        case UInt8(ascii: "S"): nanosecondsPerUnit = 1_000_000_000
        case UInt8(ascii: "m"): nanosecondsPerUnit = 1_000_000
        case UInt8(ascii: "u"): nanosecondsPerUnit = 1_000
        case UInt8(ascii: "n"): nanosecondsPerUnit = 1
        default: return nil
        }
        let (product, overflow) = value.multipliedReportingOverflow(by: nanosecondsPerUnit)
        return overflow ? Int64.max : product
    }

    /// Percent-encodes a status message for the `grpc-message` trailer: bytes outside printable
    /// ASCII, and `%` itself, become `%XX` of their UTF-8 bytes.
    public static func encodeMessage(_ message: String) -> String {
        var encoded = ""
        for byte in message.utf8 {
            if byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "%") {
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                encoded += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return encoded
    }

    /// Decodes a `grpc-message` trailer; a malformed escape is kept as it is.
    public static func decodeMessage(_ encoded: String) -> String {
        let bytes = Array(encoded.utf8)
        var decoded: [UInt8] = []
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count,
                let value = UInt8(String(decoding: bytes[(index + 1)...(index + 2)], as: UTF8.self), radix: 16)
            {
                decoded.append(value)
                index += 3
            } else {
                decoded.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: decoded, as: UTF8.self)
    }

    /// Splits a request path "/package.Service/Method" into the service and method names.
    public static func method(fromPath path: String) -> (service: String, method: String)? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].isEmpty, !parts[1].isEmpty, !parts[2].isEmpty else { return nil }
        return (String(parts[1]), String(parts[2]))
    }
}
