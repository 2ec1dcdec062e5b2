public import NIOSSL

/// etcd's `--cipher-suites` names, which are Go's `crypto/tls` names, and the TLS 1.2 suites
/// they stand for.
public enum CipherSuiteNames {
    /// Every Go cipher-suite name this server can use, with its suite.
    ///
    /// Go's names for suites that BoringSSL does not offer (RC4, 3DES and the CBC suites with
    /// SHA-256 MACs) are absent: ``suites(_:)`` refuses them.
    public static let supported: [String: NIOTLSCipher] = [
        "TLS_RSA_WITH_AES_128_CBC_SHA": .TLS_RSA_WITH_AES_128_CBC_SHA,
        "TLS_RSA_WITH_AES_256_CBC_SHA": .TLS_RSA_WITH_AES_256_CBC_SHA,
        "TLS_RSA_WITH_AES_128_GCM_SHA256": .TLS_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_RSA_WITH_AES_256_GCM_SHA384": .TLS_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": .TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": .TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": .TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": .TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ]

    /// The suites of a comma-separated list of Go names, in order, or the first name that is not
    /// one of ``supported``.
    public static func suites(_ list: String) -> Result<[NIOTLSCipher], UnknownCipherSuite> {
        var suites: [NIOTLSCipher] = []
        for element in list.split(separator: ",", omittingEmptySubsequences: false) {
            let name = String(element.filter { !$0.isWhitespace })
            guard let suite = supported[name] else { return .failure(UnknownCipherSuite(name: name)) }
            if !suites.contains(suite) { suites.append(suite) }
        }
        return .success(suites)
    }
}

/// A `--cipher-suites` name that is not one of ``CipherSuiteNames/supported``.
public struct UnknownCipherSuite: Error, Sendable, Hashable {
    /// The name as written.
    public var name: String
}
