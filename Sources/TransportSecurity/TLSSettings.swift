public import NIOSSL

/// The files and rules of one side of TLS: a listener (the client or the peer port) or the
/// connections a member opens to its peers.
///
/// The paths are read when a ``TLSContextSource`` is created and again whenever one of the files
/// changes, so a rotated certificate takes effect for new connections without a restart.
public struct TLSSettings: Sendable, Hashable {
    /// The PEM certificate chain presented to the other side, leaf first (`--cert-file`,
    /// `--peer-cert-file`); nil presents none (only for the connecting side).
    public var certificateFile: String?
    /// The PEM private key of the leaf certificate (`--key-file`, `--peer-key-file`).
    public var keyFile: String?
    /// The PEM certificates of the authorities trusted to sign the other side's certificate
    /// (`--trusted-ca-file`, `--peer-trusted-ca-file`); nil trusts the system's authorities.
    public var trustedCAFile: String?
    /// On a listener: whether a connecting party must present a certificate signed by
    /// ``trustedCAFile`` (`--client-cert-auth`, `--peer-client-cert-auth`).
    public var requiresClientCertificate: Bool
    /// The TLS 1.2 cipher suites allowed, empty for the library's default set (`--cipher-suites`).
    /// TLS 1.3 suites are not configurable and always allowed.
    public var cipherSuites: [NIOTLSCipher]
    /// The application protocols offered through ALPN, most preferred first.
    public var applicationProtocols: [String]

    /// Creates settings; every file is optional here, the role decides what is required.
    public init(
        certificateFile: String? = nil, keyFile: String? = nil, trustedCAFile: String? = nil,
        requiresClientCertificate: Bool = false, cipherSuites: [NIOTLSCipher] = [], applicationProtocols: [String] = []
    ) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.trustedCAFile = trustedCAFile
        self.requiresClientCertificate = requiresClientCertificate
        self.cipherSuites = cipherSuites
        self.applicationProtocols = applicationProtocols
    }

    /// The files the settings name, each once.
    var files: [String] {
        var seen: Set<String> = []
        return [certificateFile, keyFile, trustedCAFile].compactMap { $0 }.filter { seen.insert($0).inserted }
    }
}

/// Which end of a connection a ``TLSContextSource`` serves.
public enum TLSRole: Sendable, Hashable {
    /// A listener: it presents its certificate and, when asked to, verifies the client's.
    case server
    /// A connecting party: it verifies the server's certificate and host name or IP address, and
    /// presents its own certificate when it has one.
    case client
}

/// Why TLS settings cannot be used, naming the file (and so the flag) at fault.
public struct TLSSettingsError: Error, Sendable, CustomStringConvertible {
    /// What is wrong with which setting.
    public enum Problem: Sendable, Hashable {
        /// The certificate file cannot be read or holds no PEM certificate.
        case certificate
        /// The key file cannot be read or holds no PEM private key.
        case key
        /// The key does not belong to the certificate.
        case keyMismatch
        /// The trusted CA file cannot be read or holds no PEM certificate.
        case trustedCA
        /// The rest: the TLS library refused the combination.
        case context
    }

    /// What is wrong.
    public var problem: Problem
    /// The file concerned, if one is.
    public var path: String?
    /// The underlying error, as text.
    public var detail: String

    public var description: String {
        let file = path.map { " \($0)" } ?? ""
        switch problem {
        case .certificate: return "cannot read a PEM certificate from\(file): \(detail)"
        case .key: return "cannot read a PEM private key from\(file): \(detail)"
        case .keyMismatch: return "the private key\(file) does not match the certificate: \(detail)"
        case .trustedCA: return "cannot read PEM CA certificates from\(file): \(detail)"
        case .context: return "cannot set up TLS: \(detail)"
        }
    }
}
