import Primitives

/// Parsing the `http://host:port` and `https://host:port` URLs of the listen, advertise and cluster options.
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

    /// The endpoint an `http://host:port` or `https://host:port` URL names, with its URL in
    /// normal form: the scheme in
    /// lower case, the host as written (IPv6 addresses in brackets) and the port in decimal.
    static func parseURL(_ text: Substring, role: URLRole) -> Result<Endpoint, URLProblem> {
        let form = "an http://host:port URL"
        func refuse(_ expected: String) -> Result<Endpoint, URLProblem> { .failure(URLProblem(expected: expected)) }
        let address: NetworkAddress
        do {
            address = try NetworkAddress(parsing: text, requiresScheme: true)
        } catch {
            switch error {
            case .missingScheme: return refuse(form)
            case .notJustHostAndPort: return refuse(form + " with no path, query or user info")
            case .unclosedBracket, .unbracketedIPv6:
                return refuse(form + " with its IPv6 address in brackets, as in http://[::1]:2379")
            case .invalidIPv6: return refuse(form + " with a valid IPv6 address in the brackets")
            case .missingPort: return refuse(form + " with a port, as in http://127.0.0.1:2379")
            case .invalidPort: return refuse(form + " with a numeric port from 1 to 65535")
            case .missingHost:
                return refuse(role == .listen ? form + " whose host is an IP address or localhost" : form + " with a host")
            }
        }
        guard let scheme = address.scheme, scheme == "http" || scheme == "https" else {
            return refuse(form + " (the scheme must be http or https)")
        }
        let host = Substring(address.host)
        if !address.isIPv6 {
            switch role {
            case .listen:
                guard NetworkAddress.isIPv4Address(host) || host == "localhost" else {
                    return refuse(form + " whose host is an IP address or localhost (a listen URL names an address to bind)")
                }
            case .advertise:
                guard NetworkAddress.isIPv4Address(host) || NetworkAddress.isHostName(host) else {
                    return refuse(form + " with a valid host name or IP address")
                }
            }
        }
        if role == .advertise, host.allSatisfy({ $0 == "0" || $0 == "." || $0 == ":" }) {
            return refuse(form + " whose host others can reach (an unspecified address such as 0.0.0.0 only suits listen URLs)")
        }
        return .success(Endpoint(host: address.host, port: address.port, url: "\(scheme)://\(address.description)"))
    }
}
