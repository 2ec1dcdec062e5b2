import Crypto
import Foundation
import SwiftASN1
import Synchronization
import X509
import _CryptoExtras

/// etcd's JWT tokens (`--auth-token jwt,...`): stateless tokens with the claims `username`,
/// `revision` and `exp`, signed with the configured private key and accepted if any of the
/// verification keys verifies them.
///
/// Beyond etcd, the key files are read again whenever one changes (checked at most once a
/// second), and `verify-key` names more public keys, so that a signing key rotates without a
/// restart: add the new public key to `verify-key` on every member, then replace `priv-key` and
/// `pub-key`, and drop the old public key once the tokens it signed have expired.
final class JWTTokens: Sendable {
    /// The signature algorithms served.
    enum Method: String, Sendable {
        /// ECDSA on P-256 with SHA-256.
        case es256 = "ES256"
        /// RSASSA-PKCS1-v1_5 with SHA-256.
        case rs256 = "RS256"
        /// Ed25519 (PKCS#8 private and SubjectPublicKeyInfo public keys, read with
        /// swift-certificates).
        case edDSA = "EdDSA"
    }

    /// The keys, as checked PEM text (swift-crypto's key types are not `Sendable`).
    private struct Keys: Sendable {
        var stamps: [String: Date] = [:]
        var checked = ContinuousClock.Instant.now - .seconds(10)
        var signing: String?
        var verifying: [String] = []
    }

    let method: Method
    let privateKeyPath: String
    let publicKeyPaths: [String]
    let ttl: Duration
    private let keys = Mutex(Keys())

    /// Creates the token maker and loads its keys.
    ///
    /// - Throws: An error naming the file that could not be read as a key of `method`.
    init(method: Method, privateKeyPath: String, publicKeyPaths: [String], ttl: Duration) throws {
        self.method = method
        self.privateKeyPath = privateKeyPath
        self.publicKeyPaths = publicKeyPaths
        self.ttl = ttl
        try keys.withLock { try reload(&$0, force: true) }
    }

    private func modified(_ path: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
    }

    /// Reads the key files again if one changed since the last read.
    private func reload(_ keys: inout Keys, force: Bool) throws {
        let now = ContinuousClock.Instant.now
        guard force || now - keys.checked >= .seconds(1) else { return }
        keys.checked = now
        let paths = [privateKeyPath] + publicKeyPaths
        let stamps = Dictionary(paths.map { ($0, modified($0) ?? .distantPast) }, uniquingKeysWith: { a, _ in a })
        guard force || stamps != keys.stamps else { return }
        func pem(_ path: String) throws -> String {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw JWTKeyError(description: "cannot read the key file \(path)")
            }
            return text
        }
        var loaded = Keys(stamps: stamps, checked: now)
        do {
            let text = try pem(privateKeyPath)
            switch method {
            case .es256: loaded.verifying.append(try P256.Signing.PrivateKey(pemRepresentation: text).publicKey.pemRepresentation)
            case .rs256: loaded.verifying.append(try _RSA.Signing.PrivateKey(pemRepresentation: text).publicKey.pemRepresentation)
            case .edDSA:
                let key = try Certificate.PrivateKey(pemEncoded: text).publicKey
                guard Curve25519.Signing.PublicKey(key) != nil else { throw JWTKeyError(description: "not Ed25519") }
                loaded.verifying.append(try key.serializeAsPEM().pemString)
            }
            loaded.signing = text
        } catch let error as JWTKeyError where error.description.hasPrefix("cannot read") {
            throw error
        } catch {
            throw JWTKeyError(description: "\(privateKeyPath) is not a PEM \(method.rawValue) private key")
        }
        for path in publicKeyPaths {
            // A file may hold several public keys, one PEM block each.
            for block in try pem(path).components(separatedBy: "-----END PUBLIC KEY-----").dropLast() {
                let text = block + "-----END PUBLIC KEY-----"
                do {
                    switch method {
                    case .es256: _ = try P256.Signing.PublicKey(pemRepresentation: text)
                    case .rs256: _ = try _RSA.Signing.PublicKey(pemRepresentation: text)
                    case .edDSA:
                        guard Curve25519.Signing.PublicKey(try Certificate.PublicKey(pemEncoded: text)) != nil else {
                            throw JWTKeyError(description: "not Ed25519")
                        }
                    }
                    loaded.verifying.append(text)
                } catch {
                    throw JWTKeyError(description: "\(path) holds something that is not a PEM \(method.rawValue) public key")
                }
            }
        }
        keys = loaded
    }

    /// The current keys, read again if a file changed (a bad file keeps the previous keys).
    private func currentKeys() -> Keys {
        keys.withLock { keys in
            try? reload(&keys, force: false)
            return keys
        }
    }

    /// A signed token for `user` at auth revision `revision`.
    func sign(user: String, revision: UInt64, now: Date = Date()) throws -> String {
        let header = #"{"alg":"\#(method.rawValue)","typ":"JWT"}"#
        let claims: [String: Any] = [
            "username": user, "revision": revision, "exp": Int64(now.timeIntervalSince1970) + ttl.components.seconds,
        ]
        let body = try JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])
        let input = Self.base64URL(Data(header.utf8)) + "." + Self.base64URL(body)
        guard let pem = currentKeys().signing else { throw JWTKeyError(description: "no signing key") }
        let signature: Data
        switch method {
        case .es256:
            signature = try P256.Signing.PrivateKey(pemRepresentation: pem).signature(for: Data(input.utf8)).rawRepresentation
        case .rs256:
            signature = try _RSA.Signing.PrivateKey(pemRepresentation: pem)
                .signature(for: Data(input.utf8), padding: .insecurePKCS1v1_5).rawRepresentation
        case .edDSA:
            signature = Data(
                try Certificate.PrivateKey(pemEncoded: pem).sign(bytes: Data(input.utf8), signatureAlgorithm: .ed25519)
                    .rawRepresentation)
        }
        return input + "." + Self.base64URL(signature)
    }

    /// The user and auth revision of a token that one of the verification keys (or the signing
    /// key's public key) verifies and that has not expired; nil otherwise.
    func verify(_ token: String, now: Date = Date()) -> (user: String, revision: UInt64)? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerData = Self.data(base64URL: parts[0]), let body = Self.data(base64URL: parts[1]),
            let signature = Self.data(base64URL: parts[2]),
            let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any],
            header["alg"] as? String == method.rawValue
        else { return nil }
        let input = Data("\(parts[0]).\(parts[1])".utf8)
        let verified = currentKeys().verifying.contains { pem in
            switch method {
            case .es256:
                guard let key = try? P256.Signing.PublicKey(pemRepresentation: pem),
                    let signature = try? P256.Signing.ECDSASignature(rawRepresentation: signature)
                else { return false }
                return key.isValidSignature(signature, for: input)
            case .rs256:
                guard let key = try? _RSA.Signing.PublicKey(pemRepresentation: pem) else { return false }
                return key.isValidSignature(
                    _RSA.Signing.RSASignature(rawRepresentation: signature), for: input, padding: .insecurePKCS1v1_5)
            case .edDSA:
                guard let key = try? Certificate.PublicKey(pemEncoded: pem), let ed25519 = Curve25519.Signing.PublicKey(key)
                else { return false }
                return ed25519.isValidSignature(signature, for: input)
            }
        }
        guard verified, let claims = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
            let user = claims["username"] as? String, let revision = (claims["revision"] as? NSNumber)?.uint64Value,
            let expiry = (claims["exp"] as? NSNumber)?.doubleValue, expiry > now.timeIntervalSince1970
        else { return nil }
        return (user, revision)
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func data(base64URL text: Substring) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}

/// A JWT key file that cannot be used.
struct JWTKeyError: Error, CustomStringConvertible {
    var description: String
}
