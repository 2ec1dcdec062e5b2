import GRPCNIOTransportHTTP2

/// TLS settings of a ``StatehouseClient``, as etcdctl's `--cacert`, `--cert`, `--key` and
/// `--insecure-skip-tls-verify`: the files are PEM, read when the client connects.
public struct StatehouseClientTLS: Sendable, Hashable {
    /// The authorities that sign the servers' certificates (`--cacert`); nil trusts the
    /// system's.
    public var trustedCAFile: String?
    /// The client certificate presented to servers that ask for one (`--cert`).
    public var certificateFile: String?
    /// The private key of ``certificateFile`` (`--key`).
    public var keyFile: String?
    /// Whether to skip verifying the server's certificate (`--insecure-skip-tls-verify`): the
    /// connection is encrypted but the server is not authenticated. For tests only.
    public var skipsVerification: Bool

    /// Creates TLS settings.
    public init(trustedCAFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, skipsVerification: Bool = false) {
        self.trustedCAFile = trustedCAFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.skipsVerification = skipsVerification
    }

    /// The transport's TLS configuration: the server is verified against ``trustedCAFile``
    /// (host name or IP address included) unless ``skipsVerification``.
    var transportConfiguration: HTTP2ClientTransport.Posix.TransportSecurity.TLS {
        .defaults { configuration in
            if let certificateFile { configuration.certificateChain = [.file(path: certificateFile, format: .pem)] }
            if let keyFile { configuration.privateKey = .file(path: keyFile, format: .pem) }
            if let trustedCAFile { configuration.trustRoots = .certificates([.file(path: trustedCAFile, format: .pem)]) }
            if skipsVerification { configuration.serverCertificateVerification = .noVerification }
        }
    }
}
