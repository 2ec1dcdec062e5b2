/// A host and port, parsed from a URL such as `http://host:port` or from `host:port`: the one
/// parser behind the server's URL options, its peer addresses and the client's endpoints.
///
/// IPv6 hosts are written in brackets (`http://[::1]:2379`) and kept without them in ``host``.
public struct NetworkAddress: Hashable, Sendable, CustomStringConvertible {
    /// The scheme in lower case (`http`), or nil when the text named none.
    public var scheme: String?
    /// The host name or IP address, without brackets.
    public var host: String
    /// The port, from 1 to 65535.
    public var port: Int

    /// Creates an address.
    public init(scheme: String? = nil, host: String, port: Int) {
        self.scheme = scheme
        self.host = host
        self.port = port
    }

    /// Whether the host is an IPv6 address (and so is written in brackets).
    public var isIPv6: Bool { host.contains(":") }

    /// The host as a URL writes it: in brackets when it is an IPv6 address.
    public var hostInURL: String { isIPv6 ? "[\(host)]" : host }

    /// `host:port`, with an IPv6 host in brackets.
    public var description: String { "\(hostInURL):\(port)" }

    /// Why text is not an address.
    public enum Problem: Error, Hashable, Sendable {
        /// No `scheme://` where one is required.
        case missingScheme
        /// Something after the authority: a path, query, fragment or user info.
        case notJustHostAndPort
        /// No host.
        case missingHost
        /// A `[` without its `]`.
        case unclosedBracket
        /// An IPv6 address not in brackets.
        case unbracketedIPv6
        /// Brackets around something that is not an IPv6 address.
        case invalidIPv6
        /// No `:port` where no default port applies.
        case missingPort
        /// A port that is not a decimal number from 1 to 65535.
        case invalidPort
    }

    /// Parses `scheme://host:port`, `host:port` or (when `defaultPort` is given) `host`.
    ///
    /// - Parameters:
    ///   - text: The text, without surrounding spaces.
    ///   - defaultPort: The port when the text names none; nil requires a port.
    ///   - requiresScheme: Whether `scheme://` must be present.
    /// - Throws: ``Problem``, the first defect found, left to right.
    public init(parsing text: some StringProtocol, defaultPort: Int? = nil, requiresScheme: Bool = false) throws(Problem) {
        var authority = Substring(text)
        var scheme: String?
        if let separator = authority.firstRange(of: "://") {
            scheme = authority[..<separator.lowerBound].lowercased()
            authority = authority[separator.upperBound...]
        } else if requiresScheme {
            throw .missingScheme
        }
        guard !authority.contains(where: { "/?#@".contains($0) }) else { throw .notJustHostAndPort }
        let host: Substring
        let portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw .unclosedBracket }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let rest = authority[authority.index(after: close)...]
            if rest.isEmpty {
                portText = nil
            } else {
                guard rest.hasPrefix(":") else { throw .missingPort }
                portText = rest.dropFirst()
            }
            guard Self.isIPv6Address(host) else { throw .invalidIPv6 }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
            guard !host.contains(":") else { throw .unbracketedIPv6 }
        } else {
            host = authority
            portText = nil
        }
        guard !host.isEmpty else { throw .missingHost }
        let port: Int
        if let portText {
            guard (1...5).contains(portText.utf8.count), portText.utf8.allSatisfy({ (48...57).contains($0) }),
                let value = Int(portText), (1...65_535).contains(value)
            else { throw .invalidPort }
            port = value
        } else {
            guard let defaultPort else { throw .missingPort }
            port = defaultPort
        }
        self.init(scheme: scheme, host: String(host), port: port)
    }

    /// Whether `text` is a dotted-decimal IPv4 address (no leading zeros, as Go's `net.ParseIP`).
    public static func isIPv4Address(_ text: Substring) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4
            && parts.allSatisfy { part in
                guard (1...3).contains(part.count), part.count == 1 || !part.hasPrefix("0"),
                    part.utf8.allSatisfy({ (48...57).contains($0) }), let value = Int(part)
                else { return false }
                return value <= 255
            }
    }

    /// Whether `text` is an IPv6 address in its text form (RFC 4291 §2.2), without a zone.
    public static func isIPv6Address(_ text: Substring) -> Bool {
        /// The number of 16-bit groups `part` spells (an IPv4 tail counting two), or nil.
        func groups(_ part: Substring, ipv4TailAllowed: Bool) -> Int? {
            guard !part.isEmpty else { return 0 }
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            var count = 0
            for (index, field) in fields.enumerated() {
                if ipv4TailAllowed, index == fields.count - 1, field.contains(".") {
                    guard isIPv4Address(field) else { return nil }
                    count += 2
                } else {
                    guard (1...4).contains(field.count), field.allSatisfy({ $0.isASCII && $0.isHexDigit }) else { return nil }
                    count += 1
                }
            }
            return count
        }
        if let elision = text.firstRange(of: "::") {
            let head = text[..<elision.lowerBound]
            let tail = text[elision.upperBound...]
            guard !tail.hasPrefix(":"), let before = groups(head, ipv4TailAllowed: false),
                let after = groups(tail, ipv4TailAllowed: true)
            else { return false }
            return before + after <= 7
        }
        return groups(text, ipv4TailAllowed: true) == 8
    }

    /// Whether `text` is a host name: dot-separated labels of ASCII letters, digits, hyphens and
    /// underscores, at most 253 characters, and not all digits and dots (an IPv4 address is
    /// checked as one).
    public static func isHostName(_ text: Substring) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 253, !text.allSatisfy({ $0 == "." || ($0.isASCII && $0.isNumber) }) else {
            return false
        }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.count)
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
        }
    }
}
