import Foundation
public import Logging
import NIOConcurrencyHelpers
public import NIOSSL

/// The TLS context of a listener or of outbound connections, rebuilt when its files change.
///
/// Each call of ``context`` looks at the files' modification times, sizes and inodes (a `stat`
/// each, no reading); when one changed since the last look, the files are read again and a new
/// context is built, which the connections made from then on use. Connections already open keep
/// the context they started with. A new file that cannot be used (a half-written certificate, a
/// key that does not match) is logged and the previous context kept; the next change is tried
/// again. So a certificate is rotated by replacing its files, in any order, without a restart.
public final class TLSContextSource: Sendable {
    /// The settings the contexts are built from.
    public let settings: TLSSettings
    /// Which end of connections the contexts serve.
    public let role: TLSRole
    private let logger: Logger
    private let state: NIOLockedValueBox<State>

    private struct State {
        var context: NIOSSLContext
        /// The files' stamps when they were last looked at, whether or not they could be used.
        var stamps: [FileStamp?]
        /// How many times the context was rebuilt after the first.
        var reloads: Int
    }

    /// Reads the files and builds the first context.
    ///
    /// - Parameters:
    ///   - settings: The files and rules.
    ///   - role: Whether the contexts accept or open connections.
    ///   - logger: Where reloads and unusable new files are reported.
    /// - Throws: ``TLSSettingsError`` naming the file that cannot be used.
    public init(settings: TLSSettings, role: TLSRole, logger: Logger) throws(TLSSettingsError) {
        self.settings = settings
        self.role = role
        self.logger = logger
        let stamps = settings.files.map(FileStamp.init(path:))
        let context = try Self.makeContext(settings: settings, role: role)
        state = NIOLockedValueBox(State(context: context, stamps: stamps, reloads: 0))
    }

    /// The context for a new connection: the current one, rebuilt first if a file changed.
    public var context: NIOSSLContext {
        let files = settings.files
        return state.withLockedValue { state in
            let stamps = files.map(FileStamp.init(path:))
            guard stamps != state.stamps else { return state.context }
            state.stamps = stamps
            do {
                state.context = try Self.makeContext(settings: settings, role: role)
                state.reloads += 1
                logger.info("TLS files changed: new connections use the new certificates", metadata: ["tls.files": "\(files)"])
            } catch {
                logger.error(
                    "TLS files changed but cannot be used; keeping the previous certificates",
                    metadata: ["tls.files": "\(files)", "error": "\(error)"])
            }
            return state.context
        }
    }

    /// How many times a changed file led to a new context.
    public var reloadCount: Int { state.withLockedValue { $0.reloads } }

    /// Builds a context from the files as they are now.
    ///
    /// - Throws: ``TLSSettingsError`` naming the file that cannot be used.
    public static func makeContext(settings: TLSSettings, role: TLSRole) throws(TLSSettingsError) -> NIOSSLContext {
        var configuration: TLSConfiguration
        switch role {
        case .server:
            configuration = .makeServerConfiguration(certificateChain: [], privateKey: .privateKey(try key(settings)))
            configuration.certificateChain = try certificates(settings).map { .certificate($0) }
            configuration.certificateVerification = settings.requiresClientCertificate ? .noHostnameVerification : .none
        case .client:
            configuration = .makeClientConfiguration()
            if settings.certificateFile != nil || settings.keyFile != nil {
                configuration.privateKey = .privateKey(try key(settings))
                configuration.certificateChain = try certificates(settings).map { .certificate($0) }
            }
            configuration.certificateVerification = .fullVerification
        }
        if let trusted = settings.trustedCAFile {
            let authorities: [NIOSSLCertificate]
            do {
                authorities = try NIOSSLCertificate.fromPEMBytes(try read(trusted))
            } catch {
                throw TLSSettingsError(problem: .trustedCA, path: trusted, detail: "\(error)")
            }
            guard !authorities.isEmpty else {
                throw TLSSettingsError(problem: .trustedCA, path: trusted, detail: "no certificate in the file")
            }
            configuration.trustRoots = .certificates(authorities)
        }
        configuration.minimumTLSVersion = .tlsv12
        if !settings.cipherSuites.isEmpty { configuration.cipherSuiteValues = settings.cipherSuites }
        configuration.applicationProtocols = settings.applicationProtocols
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch NIOSSLError.failedToLoadPrivateKey {
            throw TLSSettingsError(problem: .keyMismatch, path: settings.keyFile, detail: "failed to load the private key")
        } catch {
            throw TLSSettingsError(problem: .context, path: nil, detail: "\(error)")
        }
    }

    private static func certificates(_ settings: TLSSettings) throws(TLSSettingsError) -> [NIOSSLCertificate] {
        guard let path = settings.certificateFile else {
            throw TLSSettingsError(problem: .certificate, path: nil, detail: "no certificate file given")
        }
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(try read(path))
        } catch {
            throw TLSSettingsError(problem: .certificate, path: path, detail: "\(error)")
        }
        guard !chain.isEmpty else { throw TLSSettingsError(problem: .certificate, path: path, detail: "no certificate in the file") }
        return chain
    }

    private static func key(_ settings: TLSSettings) throws(TLSSettingsError) -> NIOSSLPrivateKey {
        guard let path = settings.keyFile else {
            throw TLSSettingsError(problem: .key, path: nil, detail: "no key file given")
        }
        do {
            return try NIOSSLPrivateKey(bytes: try read(path), format: .pem)
        } catch {
            throw TLSSettingsError(problem: .key, path: path, detail: "\(error)")
        }
    }

    private static func read(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw UnreadableFile() }
        return Array(data)
    }
}

/// A file that does not exist or cannot be read.
struct UnreadableFile: Error, CustomStringConvertible {
    var description: String { "the file does not exist or cannot be read" }
}

/// What tells that a file changed: its modification time, size and inode.
struct FileStamp: Hashable {
    var modified: Date
    var size: UInt64
    var inode: UInt64

    /// The file's stamp, or nil if it cannot be looked at.
    init?(path: String) {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let modified = attributes[.modificationDate] as? Date
        else { return nil }
        self.modified = modified
        size = (attributes[.size] as? NSNumber)?.uint64Value ?? 0
        inode = (attributes[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
    }
}
