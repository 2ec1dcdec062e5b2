import NIOSSL
import TransportSecurity

/// Checking the TLS options: the certificates of the `https://` listeners and of connections
/// to peers, loaded once here so that a bad file stops the member before it starts.
extension ServerConfiguration {
    /// The TLS settings of the options, checked, and the files loaded once.
    struct ResolvedSecurity {
        var clientTLS: TLSSettings?
        var peerTLS: TLSSettings?
        var peerClientTLS: TLSSettings
        var peerAllowedCommonName: String?
    }

    /// The option names of one side's TLS files.
    private struct SideOptions {
        var certificate: Option
        var key: Option
        var trustedCA: Option
        var clientCertAuth: Option
        var urls: Option
    }

    /// Checks the TLS options against the listen URLs and loads the files they name.
    static func resolveSecurity(
        _ setting: (Option) -> Setting, clientURLs: [Endpoint], metricsURLs: [Endpoint], peerURLs: [Endpoint]
    ) throws(ConfigurationError) -> ResolvedSecurity {
        let cipherSetting = setting(.cipherSuites)
        var ciphers: [NIOTLSCipher] = []
        if !cipherSetting.text.isEmpty {
            switch CipherSuiteNames.suites(cipherSetting.text) {
            case .success(let suites): ciphers = suites
            case .failure(let unknown):
                throw cipherSetting.error(
                    .cipherSuites, value: unknown.name,
                    expected: "Go cipher-suite names this server supports: "
                        + CipherSuiteNames.supported.keys.sorted().joined(separator: ", "))
            }
        }
        let clientOptions = SideOptions(
            certificate: .certFile, key: .keyFile, trustedCA: .trustedCAFile, clientCertAuth: .clientCertAuth, urls: .listenClientURLs)
        let peerOptions = SideOptions(
            certificate: .peerCertFile, key: .peerKeyFile, trustedCA: .peerTrustedCAFile, clientCertAuth: .peerClientCertAuth,
            urls: .listenPeerURLs)
        var clientTLS = try side(clientOptions, setting, usesTLS: (clientURLs + metricsURLs).contains(where: \.isTLS), ciphers: ciphers)
        clientTLS?.applicationProtocols = ["h2", "http/1.1"]
        let peerTLS = try side(peerOptions, setting, usesTLS: peerURLs.contains(where: \.isTLS), ciphers: ciphers)

        let peerCertificate = setting(.peerCertFile).text
        let peerKey = setting(.peerKeyFile).text
        let peerCA = setting(.peerTrustedCAFile).text
        let peerClientTLS = TLSSettings(
            certificateFile: peerCertificate.isEmpty ? nil : peerCertificate, keyFile: peerKey.isEmpty ? nil : peerKey,
            trustedCAFile: peerCA.isEmpty ? nil : peerCA, cipherSuites: ciphers)
        // Its files, if any, are those of `peerTLS`, loaded above.

        let allowedSetting = setting(.peerCertAllowedCN)
        var allowed: String?
        if !allowedSetting.text.isEmpty {
            guard peerTLS?.requiresClientCertificate == true else {
                throw allowedSetting.error(
                    .peerCertAllowedCN,
                    expected: "--peer-client-cert-auth and --peer-trusted-ca-file as well: only a verified peer certificate has a"
                        + " common name to check")
            }
            allowed = allowedSetting.text
        }
        return ResolvedSecurity(clientTLS: clientTLS, peerTLS: peerTLS, peerClientTLS: peerClientTLS, peerAllowedCommonName: allowed)
    }

    /// One listener side's settings, nil when it has no certificate; checked and loaded.
    private static func side(
        _ options: SideOptions, _ setting: (Option) -> Setting, usesTLS: Bool, ciphers: [NIOTLSCipher]
    ) throws(ConfigurationError) -> TLSSettings? {
        let certificate = setting(options.certificate)
        let key = setting(options.key)
        let trustedCA = setting(options.trustedCA)
        let authSetting = setting(options.clientCertAuth)
        let clientCertAuth = try boolean(authSetting, options.clientCertAuth)
        if usesTLS, certificate.text.isEmpty {
            throw certificate.error(
                options.certificate, expected: "the path of a PEM certificate, as \(options.urls.flag) has an https:// URL")
        }
        if !certificate.text.isEmpty, key.text.isEmpty {
            throw key.error(options.key, expected: "the path of the PEM private key of \(options.certificate.flag)")
        }
        if !key.text.isEmpty, certificate.text.isEmpty {
            throw certificate.error(options.certificate, expected: "the path of the PEM certificate of \(options.key.flag)")
        }
        if clientCertAuth, trustedCA.text.isEmpty {
            throw trustedCA.error(
                options.trustedCA,
                expected: "the path of the PEM CA certificates that sign client certificates, as \(options.clientCertAuth.flag) is set")
        }
        guard !certificate.text.isEmpty else {
            if clientCertAuth || !trustedCA.text.isEmpty {
                throw certificate.error(
                    options.certificate,
                    expected: "the path of a PEM certificate, as client certificates are asked for only over TLS")
            }
            return nil
        }
        let settings = TLSSettings(
            certificateFile: certificate.text, keyFile: key.text, trustedCAFile: trustedCA.text.isEmpty ? nil : trustedCA.text,
            requiresClientCertificate: clientCertAuth || !trustedCA.text.isEmpty, cipherSuites: ciphers)
        do {
            _ = try TLSContextSource.makeContext(settings: settings, role: .server)
        } catch {
            throw fileError(error, options, setting)
        }
        return settings
    }

    /// A TLS loading error as the error of the option naming the file.
    private static func fileError(_ error: TLSSettingsError, _ options: SideOptions, _ setting: (Option) -> Setting) -> ConfigurationError {
        let option: Option
        let expected: String
        switch error.problem {
        case .certificate:
            option = options.certificate
            expected = "a readable PEM certificate file, but \(error)"
        case .key:
            option = options.key
            expected = "a readable PEM private key file, but \(error)"
        case .keyMismatch:
            option = options.key
            expected = "the private key of \(options.certificate.flag), but \(error)"
        case .trustedCA:
            option = options.trustedCA
            expected = "a readable file of PEM CA certificates, but \(error)"
        case .context:
            option = options.certificate
            expected = "a certificate and key the TLS library accepts, but \(error)"
        }
        return setting(option).error(option, expected: expected)
    }

    /// A boolean option's value, spelled as Go's `strconv.ParseBool` takes it.
    static func boolean(_ setting: Setting, _ option: Option) throws(ConfigurationError) -> Bool {
        switch setting.text {
        case "1", "t", "T", "true", "TRUE", "True": return true
        case "0", "f", "F", "false", "FALSE", "False": return false
        default: throw setting.error(option, expected: "true or false")
        }
    }

    /// One `--validate-config` line's description of a side's TLS.
    static func describe(_ settings: TLSSettings?) -> String {
        guard let settings else { return "off (http:// URLs only)" }
        var parts = ["certificate \(settings.certificateFile ?? "")"]
        if let authority = settings.trustedCAFile { parts.append("client certificates required, signed by \(authority)") }
        if !settings.cipherSuites.isEmpty { parts.append("\(settings.cipherSuites.count) TLS 1.2 cipher suites") }
        return parts.joined(separator: ", ")
    }
}
