/// Parsing the `http://host:port` URLs of the listen, advertise and cluster options.
extension ServerConfiguration {
    /// What a URL is for, which decides the hosts it may name.
    enum URLRole {
        /// An address to bind: the host must be an IP address or `localhost`, as etcd requires.
        case listen
        /// An address others connect to: a host name or an IP address, but not an unspecified
        /// address such as `0.0.0.0`.
        case advertise
    }

    /// Why a URL was refused, as a phrase that follows "expected".
    struct URLProblem: Error {
        var expected: String
    }

    /// The URLs of a comma-separated list, each checked, none empty or given twice.
    static func urlList(_ setting: Setting, _ option: Option, role: URLRole) throws(ConfigurationError) -> [Endpoint] {
        let elements = setting.text.split(separator: ",", omittingEmptySubsequences: false).map(trimmed)
        guard !elements.contains(where: \.isEmpty) else {
            throw setting.error(option, expected: "a comma-separated list of http://host:port URLs, none of them empty")
        }
        var endpoints: [Endpoint] = []
        var seen: Set<String> = []
        for element in elements {
            switch parseURL(element, role: role) {
            case .failure(let problem):
                throw setting.error(option, value: String(element), expected: problem.expected)
            case .success(let endpoint):
                guard seen.insert(endpoint.url).inserted else {
                    throw setting.error(option, value: String(element), expected: "each URL once, but \(endpoint.url) appears twice")
                }
                endpoints.append(endpoint)
            }
        }
        return endpoints
    }

    /// The endpoint an `http://host:port` URL names, with its URL in normal form: the scheme in
    /// lower case, the host as written (IPv6 addresses in brackets) and the port in decimal.
    static func parseURL(_ text: Substring, role: URLRole) -> Result<Endpoint, URLProblem> {
        let form = "an http://host:port URL"
        func refuse(_ expected: String) -> Result<Endpoint, URLProblem> { .failure(URLProblem(expected: expected)) }
        guard let separator = text.firstRange(of: "://") else { return refuse(form) }
        let scheme = text[..<separator.lowerBound].lowercased()
        if scheme == "https" {
            return refuse("an http:// URL: TLS is not supported by this server, so use http://host:port")
        }
        guard scheme == "http" else { return refuse(form + " (the scheme must be http)") }
        let authority = text[separator.upperBound...]
        guard !authority.contains(where: { "/?#@".contains($0) }) else {
            return refuse(form + " with no path, query or user info")
        }

        let host: Substring
        let portText: Substring
        let isIPv6: Bool
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                return refuse(form + " with its IPv6 address in brackets, as in http://[::1]:2379")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let rest = authority[authority.index(after: close)...]
            guard rest.hasPrefix(":") else { return refuse(form + " with a port, as in http://[::1]:2379") }
            portText = rest.dropFirst()
            guard isIPv6Address(host) else { return refuse(form + " with a valid IPv6 address in the brackets") }
            isIPv6 = true
        } else {
            guard let colon = authority.lastIndex(of: ":") else { return refuse(form + " with a port, as in http://127.0.0.1:2379") }
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
            guard !host.contains(":") else { return refuse(form + " with its IPv6 address in brackets, as in http://[::1]:2379") }
            isIPv6 = false
            switch role {
            case .listen:
                guard isIPv4Address(host) || host == "localhost" else {
                    return refuse(form + " whose host is an IP address or localhost (a listen URL names an address to bind)")
                }
            case .advertise:
                guard isIPv4Address(host) || isHostName(host) else { return refuse(form + " with a valid host name or IP address") }
            }
        }
        if role == .advertise, host.allSatisfy({ $0 == "0" || $0 == "." || $0 == ":" }) {
            return refuse(form + " whose host others can reach (an unspecified address such as 0.0.0.0 only suits listen URLs)")
        }
        guard let port = wholeNumber(String(portText), as: Int.self), (1...65535).contains(port) else {
            return refuse(form + " with a numeric port from 1 to 65535")
        }
        let hostInURL = isIPv6 ? "[\(host)]" : String(host)
        return .success(Endpoint(host: String(host), port: port, url: "http://\(hostInURL):\(port)"))
    }

    /// Whether `text` is a dotted-decimal IPv4 address (no leading zeros, as Go's `net.ParseIP`).
    static func isIPv4Address(_ text: Substring) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4
            && parts.allSatisfy { part in
                guard (1...3).contains(part.count), part.count == 1 || !part.hasPrefix("0"),
                    let value = wholeNumber(String(part), as: Int.self)
                else { return false }
                return value <= 255
            }
    }

    /// Whether `text` is an IPv6 address in its text form (RFC 4291 §2.2), without a zone.
    static func isIPv6Address(_ text: Substring) -> Bool {
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
    static func isHostName(_ text: Substring) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 253, !text.allSatisfy({ $0 == "." || ($0.isASCII && $0.isNumber) }) else {
            return false
        }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.count)
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
        }
    }
}
