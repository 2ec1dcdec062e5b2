import Crypto
import Foundation
import GRPCServer
import StateMachine
import Synchronization
import _CryptoExtras

/// The member-local side of authentication: password hashing and checking, simple tokens and
/// resolving a call's credentials. The replicated side (users, roles, permissions, the enabled
/// flag) is the state machine's ``AuthState``.
///
/// Simple tokens are etcd's: a random string plus a counter, proposed through Raft with the
/// `Authenticate` request so that every member learns it (``learn(_:now:)``), valid for
/// `tokenTTL` after its last use, and dropped when the user is deleted or changes password, or
/// auth is disabled.
final class Authenticator: Sendable {
    /// How long a simple token lives after its last use.
    let tokenTTL: Duration
    /// PBKDF2-HMAC-SHA256 iterations for new password hashes.
    let passwordRounds: Int
    /// JWT tokens (`--auth-token jwt,...`), or nil for simple tokens.
    let jwt: JWTTokens?

    private struct Token {
        var user: String
        var expires: ContinuousClock.Instant
    }

    private let tokens = Mutex<[String: Token]>([:])
    private let counter = Atomic<UInt64>(0)

    /// Creates the authenticator.
    init(
        tokenTTL: Duration = .seconds(300), passwordRounds: Int = 100_000, jwt: JWTTokens? = nil
    ) {
        self.jwt = jwt
        self.tokenTTL = tokenTTL
        self.passwordRounds = passwordRounds
    }

    // MARK: - Passwords

    /// The stored form of a password: `pbkdf2-sha256$<rounds>$<salt, base64>$<key, base64>`.
    static func hash(password: String, rounds: Int) -> [UInt8] {
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255) }
        let key = derive(password: password, salt: salt, rounds: rounds)
        return Array("pbkdf2-sha256$\(rounds)$\(Data(salt).base64EncodedString())$\(Data(key).base64EncodedString())".utf8)
    }

    /// Whether `password` matches a hash made by ``hash(password:rounds:)``.
    static func verify(password: String, against stored: [UInt8]) -> Bool {
        let parts = String(decoding: stored, as: UTF8.self).split(separator: "$").map(String.init)
        guard parts.count == 4, parts[0] == "pbkdf2-sha256", let rounds = Int(parts[1]), rounds > 0, rounds <= 10_000_000,
            let salt = Data(base64Encoded: parts[2]), let expected = Data(base64Encoded: parts[3])
        else { return false }
        let key = derive(password: password, salt: Array(salt), rounds: rounds)
        // Constant time in the length of the key.
        guard key.count == expected.count else { return false }
        return zip(key, expected).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    private static func derive(password: String, salt: [UInt8], rounds: Int) -> [UInt8] {
        let key = try? KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32, unsafeUncheckedRounds: rounds)
        return key?.withUnsafeBytes { Array($0) } ?? []
    }

    // MARK: - Tokens

    /// A new simple token (etcd's form: 16 random letters, a dot, a counter).
    func newSimpleToken() -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        let prefix = String((0..<16).map { _ in letters.randomElement()! })
        return "\(prefix).\(counter.add(1, ordering: .relaxed).newValue)"
    }

    /// Learns an applied auth change: remembers authenticated tokens, forgets the tokens of a
    /// deleted user or one whose password changed, and every token when auth is disabled.
    func learn(_ change: AuthRequest, now: ContinuousClock.Instant = .now) {
        tokens.withLock { tokens in
            switch change {
            case .authenticate(let user, let token) where !token.isEmpty:
                tokens[token] = Token(user: user, expires: now + tokenTTL)
            case .userDelete(let name), .userChangePassword(let name, _):
                tokens = tokens.filter { $0.value.user != name }
            case .disable:
                tokens.removeAll()
            default:
                break
            }
            if tokens.count > 1_024 { tokens = tokens.filter { $0.value.expires > now } }
        }
    }

    /// The user of a live simple token, extending its life (etcd resets the TTL on use).
    func user(ofToken token: String, now: ContinuousClock.Instant = .now) -> String? {
        tokens.withLock { tokens in
            guard var entry = tokens[token] else { return nil }
            guard entry.expires > now else {
                tokens[token] = nil
                return nil
            }
            entry.expires = now + tokenTTL
            tokens[token] = entry
            return entry.user
        }
    }

    /// The token a call carries: gRPC's `token` metadata, or `authorization` (the JSON gateway's
    /// `Authorization` header).
    static func token(of call: ServerCall) -> String? {
        call.metadata.first { $0.name == "token" }?.value ?? call.metadata.first { $0.name == "authorization" }?.value
    }

    /// Resolves who makes a call, as etcd's `AuthInfoFromCtx`: a token must be valid; without
    /// one, a verified client certificate's CN names the user; otherwise the call is anonymous
    /// (nil). Call on the member loop with the current auth state.
    ///
    /// - Throws: ``StateError/invalidAuthToken`` for an unknown or expired token.
    func credentials(of call: ServerCall, auth: AuthState) throws(StateError) -> AuthInfo? {
        if let token = Self.token(of: call) {
            if let jwt {
                // A JWT carries the auth revision it was issued at.
                guard let claims = jwt.verify(token) else { throw .invalidAuthToken }
                return AuthInfo(user: claims.user, revision: claims.revision)
            }
            guard let user = user(ofToken: token) else { throw .invalidAuthToken }
            return AuthInfo(user: user, revision: auth.revision)
        }
        // As etcd: without a token, the common name of a verified client certificate
        // (`--client-cert-auth`) names the user.
        if let user = call.clientCertificateCommonName {
            return AuthInfo(user: user, revision: auth.revision)
        }
        return nil
    }
}
