import Foundation

/// Certificates made at test time with Debian's `openssl` (no key is ever committed): certificate
/// authorities and the certificates they sign, as PEM files in a directory.
public struct TestCertificates: Sendable {
    /// The directory holding every file.
    public let directory: String

    /// Why making a certificate failed.
    public struct OpenSSLFailure: Error, CustomStringConvertible {
        public var description: String
    }

    /// A certificate and its key, as file paths.
    public struct Pair: Sendable {
        /// The PEM certificate.
        public var certificate: String
        /// The PEM private key.
        public var key: String

        /// A pair of files.
        public init(certificate: String, key: String) {
            self.certificate = certificate
            self.key = key
        }
    }

    /// Whether `openssl` is installed.
    public static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") }

    /// Certificates in `directory`, created if needed.
    public init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// Makes a self-signed certificate authority `name` (`name.crt`, `name.key`).
    @discardableResult
    public func makeAuthority(_ name: String) throws -> Pair {
        let pair = Pair(certificate: path(name + ".crt"), key: path(name + ".key"))
        try openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", pair.key, "-out",
            pair.certificate, "-days", "2", "-subj", "/CN=\(name)",
        ])
        return pair
    }

    /// Makes a certificate `name` with common name `commonName`, signed by `authority`, valid
    /// for TLS servers and clients at 127.0.0.1 and localhost.
    @discardableResult
    public func makeCertificate(_ name: String, commonName: String, signedBy authority: Pair) throws -> Pair {
        let pair = Pair(certificate: path(name + ".crt"), key: path(name + ".key"))
        let request = path(name + ".csr")
        let extensions = path(name + ".ext")
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n".write(
            toFile: extensions, atomically: true, encoding: .utf8)
        try openssl([
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", pair.key, "-out", request,
            "-subj", "/CN=\(commonName)",
        ])
        try openssl([
            "x509", "-req", "-in", request, "-CA", authority.certificate, "-CAkey", authority.key, "-set_serial",
            String(UInt32.random(in: 1...UInt32.max)), "-days", "2", "-extfile", extensions, "-out", pair.certificate,
        ])
        return pair
    }

    /// The path of `file` in the directory.
    public func path(_ file: String) -> String { directory + "/" + file }

    /// Runs `openssl arguments`, throwing with its output if it fails.
    public func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw OpenSSLFailure(description: "openssl \(arguments.joined(separator: " ")) failed: \(text)")
        }
    }
}
