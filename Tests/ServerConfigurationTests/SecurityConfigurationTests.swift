import Foundation
import ServerConfiguration
import TestSupport
import Testing
import TransportSecurity

/// The TLS flags: what an `https://` URL needs, and files checked before the member starts.
@Suite("TLS flags")
struct SecurityConfigurationTests {
    /// A CA, a server certificate it signs, and a certificate of another CA, made once for the suite.
    static let files:
        (certificates: TestCertificates, ca: TestCertificates.Pair, server: TestCertificates.Pair, other: TestCertificates.Pair)? = {
            guard TestCertificates.isAvailable else { return nil }
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("statehouse-tls-config-\(UUID().uuidString)")
            guard let certificates = try? TestCertificates(directory: directory.path),
                let ca = try? certificates.makeAuthority("ca"),
                let server = try? certificates.makeCertificate("server", commonName: "n1", signedBy: ca),
                let otherCA = try? certificates.makeAuthority("other-ca"),
                let other = try? certificates.makeCertificate("other", commonName: "n1", signedBy: otherCA)
            else { return nil }
            return (certificates, ca, server, other)
        }()

    private func parse(_ arguments: [String]) throws(ConfigurationError) -> ServerConfiguration {
        let result = try ServerConfiguration.parse(arguments: arguments, environment: [:]) { _ in "" }
        guard case .run(let configuration) = result else { preconditionFailure("not a run") }
        return configuration
    }

    private func refusal(_ arguments: [String]) -> String? {
        do {
            _ = try parse(arguments)
            return nil
        } catch {
            return error.line
        }
    }

    private let https = [
        "--listen-client-urls", "https://127.0.0.1:2379,http://127.0.0.1:22379", "--advertise-client-urls",
        "https://127.0.0.1:2379",
    ]

    @Test("https listeners need a certificate and key; both are loaded and checked")
    func listenersNeedCertificates() throws {
        let files = try #require(Self.files, "openssl is needed to make certificates")
        let server = files.server
        #expect(
            refusal(https)
                == #"statehouse: invalid value "" for --cert-file (the default): expected the path of a PEM certificate, as --listen-client-urls has an https:// URL"#
        )
        #expect(
            refusal(https + ["--cert-file", server.certificate])
                == #"statehouse: invalid value "" for --key-file (the default): expected the path of the PEM private key of --cert-file"#)
        #expect(refusal(https + ["--cert-file", "/nonexistent.crt", "--key-file", server.key])?.contains("for --cert-file") == true)
        #expect(refusal(https + ["--cert-file", server.certificate, "--key-file", "/nonexistent.key"])?.contains("for --key-file") == true)
        // A key that is not the certificate's.
        #expect(
            refusal(https + ["--cert-file", server.certificate, "--key-file", files.other.key])?.contains(
                #"for --key-file: expected the private key of --cert-file"#) == true)
        #expect(refusal(https + ["--cert-file", server.certificate, "--key-file", server.certificate])?.contains("for --key-file") == true)

        let configuration = try parse(https + ["--cert-file", server.certificate, "--key-file", server.key])
        #expect(configuration.listenClient.map(\.isTLS) == [true, false])
        #expect(configuration.clientTLS?.certificateFile == server.certificate)
        #expect(configuration.clientTLS?.requiresClientCertificate == false)
        #expect(configuration.clientTLS?.applicationProtocols == ["h2", "http/1.1"])
        #expect(configuration.peerTLS == nil)
    }

    @Test("client certificates need a trusted CA, which (as in etcd) turns them on")
    func clientCertificates() throws {
        let files = try #require(Self.files, "openssl is needed to make certificates")
        let tls = https + ["--cert-file", files.server.certificate, "--key-file", files.server.key]
        #expect(
            refusal(tls + ["--client-cert-auth"])
                == #"statehouse: invalid value "" for --trusted-ca-file (the default): expected the path of the PEM CA certificates that sign client certificates, as --client-cert-auth is set"#
        )
        #expect(refusal(tls + ["--client-cert-auth", "--trusted-ca-file", "/nonexistent.crt"])?.contains("for --trusted-ca-file") == true)
        let configuration = try parse(tls + ["--client-cert-auth", "--trusted-ca-file", files.ca.certificate])
        #expect(configuration.clientTLS?.requiresClientCertificate == true)
        #expect(try parse(tls + ["--trusted-ca-file", files.ca.certificate]).clientTLS?.requiresClientCertificate == true)
    }

    @Test("peer TLS, allowed common name and cipher suites")
    func peerAndCiphers() throws {
        let files = try #require(Self.files, "openssl is needed to make certificates")
        let peer = [
            "--listen-peer-urls", "https://127.0.0.1:2380", "--initial-advertise-peer-urls", "https://127.0.0.1:2380",
            "--peer-cert-file", files.server.certificate, "--peer-key-file", files.server.key,
        ]
        #expect(
            refusal(peer + ["--peer-cert-allowed-cn", "n1"])?.contains(
                #"for --peer-cert-allowed-cn: expected --peer-client-cert-auth and --peer-trusted-ca-file as well"#) == true)
        let configuration = try parse(
            peer + [
                "--peer-client-cert-auth", "--peer-trusted-ca-file", files.ca.certificate, "--peer-cert-allowed-cn", "n1",
                "--cipher-suites", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            ])
        #expect(configuration.peerTLS?.requiresClientCertificate == true)
        #expect(configuration.peerAllowedCommonName == "n1")
        #expect(configuration.peerTLS?.cipherSuites.count == 2)
        #expect(configuration.peerClientTLS.certificateFile == files.server.certificate)
        #expect(configuration.peerClientTLS.trustedCAFile == files.ca.certificate)
        #expect(configuration.initialCluster.first?.peerURLs == ["https://127.0.0.1:2380"])

        #expect(
            refusal(peer + ["--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_RC4_128_SHA"])?.hasPrefix(
                #"statehouse: invalid value "TLS_RSA_WITH_RC4_128_SHA" for --cipher-suites: expected Go cipher-suite names this server supports: "#
            ) == true)
        #expect(
            refusal(["--client-cert-auth=maybe"]) == #"statehouse: invalid value "maybe" for --client-cert-auth: expected true or false"#)
    }
}
