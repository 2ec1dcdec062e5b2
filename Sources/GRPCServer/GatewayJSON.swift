public import GRPCStatus

/// grpc-gateway's (v1, as etcd 3.4 serves it) JSON framing: HTTP statuses for gRPC codes,
/// error bodies and stream chunks.
public enum GatewayJSON {
    /// The HTTP status grpc-gateway answers for a gRPC status code.
    public static func httpStatus(for code: StatusCode) -> Int {
        switch code {
        case .ok: return 200
        case .cancelled: return 408
        case .unknown: return 500
        case .invalidArgument: return 400
        case .deadlineExceeded: return 504
        case .notFound: return 404
        case .alreadyExists: return 409
        case .permissionDenied: return 403
        case .unauthenticated: return 401
        case .resourceExhausted: return 429
        // Not 412: grpc-gateway deliberately maps FAILED_PRECONDITION to 400.
        case .failedPrecondition: return 400
        case .aborted: return 409
        case .outOfRange: return 400
        case .unimplemented: return 501
        case .internal: return 500
        case .unavailable: return 503
        case .dataLoss: return 500
        }
    }

    /// The reason phrase of an HTTP status, as Go's `http.StatusText` writes it (the
    /// `http_status` of a stream error).
    public static func statusText(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 429: return "Too Many Requests"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        default: return ""
        }
    }

    /// The body of a failed unary call: `{"error":"…","message":"…","code":N}`.
    public static func errorBody(_ code: StatusCode, message: String) -> [UInt8] {
        let quoted = quote(message)
        return Array(#"{"error":\#(quoted),"message":\#(quoted),"code":\#(code.rawValue)}"#.utf8)
    }

    /// The last chunk of a failed streaming call:
    /// `{"error":{"grpc_code":N,"http_code":H,"message":"…","http_status":"…"}}`.
    public static func streamErrorChunk(_ code: StatusCode, message: String) -> [UInt8] {
        let http = httpStatus(for: code)
        var fields = [#""grpc_code":\#(code.rawValue)"#, #""http_code":\#(http)"#]
        if !message.isEmpty { fields.append(#""message":\#(quote(message))"#) }
        fields.append(#""http_status":\#(quote(statusText(http)))"#)
        return Array(#"{"error":{\#(fields.joined(separator: ","))}}"#.utf8)
    }

    /// One message of a streaming call: `{"result":<message>}` and the newline delimiter.
    public static func resultChunk(_ message: [UInt8]) -> [UInt8] {
        Array(#"{"result":"#.utf8) + message + Array("}\n".utf8)
    }

    /// `text` as a JSON string, escaped as Go's `encoding/json` does (HTML-safe).
    public static func quote(_ text: String) -> String {
        var quoted = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\r": quoted += "\\r"
            case "\t": quoted += "\\t"
            case "<", ">", "&", "\u{2028}", "\u{2029}":
                quoted += "\\u" + hex4(scalar.value)
            case _ where scalar.value < 0x20:
                quoted += "\\u" + hex4(scalar.value)
            default:
                quoted.unicodeScalars.append(scalar)
            }
        }
        return quoted + "\""
    }

    private static func hex4(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

/// Splits a request body into successive top-level JSON objects without parsing them (the
/// gateway's decoders parse each one): a streaming request's body is a sequence of objects,
/// separated by optional whitespace.
struct JSONObjectSplitter {
    /// Why the body cannot be split.
    enum Failure: Error, Equatable {
        /// Something other than an object at the top level.
        case notAnObject
        /// An object longer than the limit (the bytes seen so far).
        case tooLarge(Int)
    }

    /// The largest object accepted, in bytes.
    let maximumBytes: Int
    private var current: [UInt8] = []
    private var depth = 0
    private var inString = false
    private var escaped = false

    init(maximumBytes: Int) {
        self.maximumBytes = maximumBytes
    }

    /// Whether an object has started but not ended.
    var hasPartialObject: Bool { depth > 0 }

    /// Adds bytes; returns the objects they complete, in order, and stops reading after
    /// `maximumObjects` of them (the rest of `bytes` is ignored).
    mutating func append(_ bytes: some Sequence<UInt8>, maximumObjects: Int = .max) throws(Failure) -> [[UInt8]] {
        var objects: [[UInt8]] = []
        for byte in bytes where objects.count < maximumObjects {
            if depth == 0 {
                switch byte {
                case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n"): continue
                case UInt8(ascii: "{"): break
                default: throw .notAnObject
                }
            }
            current.append(byte)
            guard current.count <= maximumBytes else { throw .tooLarge(current.count) }
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                if depth == 0 {
                    objects.append(current)
                    current = []
                }
            default:
                break
            }
        }
        return objects
    }
}
