public import ReplicatedMember
public import TransportSecurity

/// The `statehouse` server's configuration, read from flags, environment variables and an
/// optional config file with etcd's names, and checked in full before anything starts.
///
/// Every option is a flag (`--name n1`), an environment variable (`STATEHOUSE_NAME=n1`) and a
/// config-file key (`name: n1`). A flag wins over the environment, which wins over the config
/// file, which wins over the default. Use ``parse(arguments:environment:readFile:)`` to build one.
public struct ServerConfiguration: Sendable, Equatable {
    /// An address to listen on, from a listen URL.
    public struct Endpoint: Sendable, Hashable {
        /// The IP address or `localhost` to bind, IPv6 addresses without brackets.
        public var host: String
        /// The TCP port, 1 to 65535.
        public var port: Int
        /// The URL in its normal form, `http://host:port` or `https://host:port` (IPv6 addresses
        /// in brackets).
        public var url: String

        /// Whether the URL's scheme is `https`: the listener speaks TLS.
        public var isTLS: Bool { url.hasPrefix("https://") }

        /// Creates an endpoint.
        public init(host: String, port: Int, url: String) {
            self.host = host
            self.port = port
            self.url = url
        }
    }

    /// A member of the cluster the server starts with (`--initial-cluster`).
    public struct InitialMember: Sendable, Hashable {
        /// The member's name.
        public var name: String
        /// The member's peer URLs in normal form, sorted.
        public var peerURLs: [String]
        /// The member's ID, ``ServerConfiguration/memberID(peerURLs:token:)`` of its peer URLs.
        public var id: UInt64

        /// Creates a member.
        public init(name: String, peerURLs: [String], id: UInt64) {
            self.name = name
            self.peerURLs = peerURLs
            self.id = id
        }
    }

    /// Whether the server starts a new cluster or joins a running one (`--initial-cluster-state`).
    public enum ClusterState: String, Sendable {
        /// Start a new cluster of the initial members.
        case new
        /// Join a cluster that is already running.
        case existing
    }

    /// How log messages are written (`--log-format`).
    public enum LogFormat: String, Sendable, CaseIterable {
        /// Lines for people to read.
        case text
        /// One JSON object per line, for log pipelines.
        case json
    }

    /// The least severe level of log messages written (`--log-level`).
    public enum LogLevel: String, Sendable, CaseIterable {
        /// Everything, debugging detail included.
        case debug
        /// Informational messages, warnings and errors.
        case info
        /// Warnings and errors.
        case warn
        /// Errors only.
        case error
    }

    /// What the command line asks the server to do.
    public enum ParseResult: Sendable, Equatable {
        /// Run a member with this configuration.
        case run(ServerConfiguration)
        /// Print ``ServerConfiguration/helpText`` and exit successfully (`--help`, `-h`).
        case help
        /// Print the version and exit successfully (`--version`).
        case version
        /// Print ``ServerConfiguration/summary`` and exit successfully without starting
        /// (`--validate-config`): every value was checked exactly as a start checks it.
        case validated(ServerConfiguration)
    }

    /// This member's name (`--name`).
    public var name: String
    /// The directory of this member's data (`--data-dir`).
    public var dataDir: String
    /// The addresses to serve clients on (`--listen-client-urls`).
    public var listenClient: [Endpoint]
    /// The URLs clients are told to reach this member at, in normal form (`--advertise-client-urls`).
    public var advertiseClientURLs: [String]
    /// The addresses to serve the other members on (`--listen-peer-urls`).
    public var listenPeer: [Endpoint]
    /// The URLs the other members reach this one at, in normal form (`--initial-advertise-peer-urls`).
    public var initialAdvertisePeerURLs: [String]
    /// The members the cluster starts with, sorted by ID (`--initial-cluster`).
    public var initialCluster: [InitialMember]
    /// Whether to start a new cluster or join a running one (`--initial-cluster-state`).
    public var clusterState: ClusterState
    /// The cluster token hashed into the member and cluster IDs (`--initial-cluster-token`).
    public var token: String
    /// The leader's heartbeat interval in milliseconds (`--heartbeat-interval`).
    public var heartbeatMilliseconds: Int64
    /// The election timeout in milliseconds (`--election-timeout`).
    public var electionMilliseconds: Int64
    /// The number of applied entries that triggers a snapshot (`--snapshot-count`).
    public var snapshotCount: UInt64
    /// The backend's space quota in bytes (`--quota-backend-bytes`, with 0 resolved to 2 GiB).
    public var quotaBackendBytes: Int64
    /// JWT tokens (`--auth-token jwt,...`), or nil for simple tokens.
    public var authJWT: JWTOptions? = nil
    /// How long a simple auth token lives after its last use, in seconds (`--auth-token-ttl`).
    public var authTokenTTLSeconds: Int64 = 300
    /// PBKDF2 iterations for new password hashes (`--auth-password-rounds`).
    public var authPasswordRounds: Int = 210_000
    /// The largest client request accepted, in bytes (`--max-request-bytes`).
    public var maxRequestBytes: Int
    /// How the leader compacts history on its own, or nil for never (`--auto-compaction-mode`
    /// and `--auto-compaction-retention`).
    public var autoCompaction: AutoCompaction?
    /// Whether to start as the only member of the stored cluster, removing the others
    /// (`--force-new-cluster`).
    public var forceNewCluster: Bool
    /// Addresses serving only the HTTP endpoints, `/metrics` among them (`--listen-metrics-urls`).
    public var listenMetrics: [Endpoint]
    /// The least severe level of log messages written (`--log-level`).
    public var logLevel: LogLevel
    /// How log messages are written (`--log-format`).
    public var logFormat: LogFormat
    /// TLS of the `https://` client and metrics URLs (`--cert-file`, `--key-file`,
    /// `--trusted-ca-file`, `--client-cert-auth`, `--cipher-suites`); nil when no certificate is
    /// given, in which case every client URL is `http://`.
    public var clientTLS: TLSSettings?
    /// TLS of the `https://` peer URLs, as a listener (`--peer-cert-file`, `--peer-key-file`,
    /// `--peer-trusted-ca-file`, `--peer-client-cert-auth`, `--cipher-suites`); nil when no peer
    /// certificate is given, in which case every listen peer URL is `http://`.
    public var peerTLS: TLSSettings?
    /// TLS of this member's connections to `https://` peers: its peer certificate as a client
    /// certificate, and the peers' certificates verified against `--peer-trusted-ca-file` (the
    /// system's authorities when it is not given).
    public var peerClientTLS: TLSSettings
    /// The only common name accepted in peers' client certificates (`--peer-cert-allowed-cn`),
    /// nil for any.
    public var peerAllowedCommonName: String?
    /// This member's ID: the ID of the entry of ``initialCluster`` named ``name``.
    public var localID: UInt64
    /// The cluster's ID, derived from the cluster token alone (``clusterID(memberIDs:token:)``
    /// with no member IDs), so that a member joining later with `--initial-cluster-state
    /// existing` and a different `--initial-cluster` computes the same one. Give every cluster
    /// its own token.
    public var clusterID: UInt64
    /// What clients may do: transaction size, streams, connections, keepalive (Limits.swift).
    public var limits = ClientLimits()

    /// The members the cluster starts with, sorted by ID; the same as ``initialCluster``.
    public var initialMembers: [InitialMember] { initialCluster }

    /// The backend quota used when `--quota-backend-bytes` is 0: 2 GiB, as etcd's.
    public static let defaultQuotaBackendBytes: Int64 = 2 << 30
    /// The largest `--quota-backend-bytes` accepted: 8 GiB, above which etcd warns.
    public static let maximumQuotaBackendBytes: Int64 = 8 << 30
    /// The largest `--max-request-bytes` accepted: 64 MiB.
    public static let maximumRequestBytes = 64 << 20
    /// The longest `--election-timeout` accepted, in milliseconds (etcd's limit).
    public static let maximumElectionMilliseconds: Int64 = 50_000

    /// Reads the configuration from the command line, the environment and the config file, and
    /// checks every value.
    ///
    /// Flags are written `--flag value`, `--flag=value`, `-flag value` or `-flag=value`, as Go's
    /// flag package (and so etcd) accepts; a flag given twice keeps its last value, and `--`
    /// ends the flags. `--help` (or `-h`) is answered at once; `--version` once every argument
    /// is known to be a flag, without looking at the environment or the config file.
    ///
    /// An environment variable `STATEHOUSE_<FLAG>` (upper case, dashes as underscores) sets an
    /// option unless a flag does; an empty variable counts as unset, and a `STATEHOUSE_` variable
    /// that names no option is an error. The config file, named by `--config-file` or
    /// `STATEHOUSE_CONFIG_FILE`, holds `key: value` lines keyed by the flag names; it sets what
    /// neither a flag nor the environment does. Unlike etcd's, it does not disable the flags and
    /// the environment.
    ///
    /// Only the value in effect for each option is checked; the config file is checked in full.
    ///
    /// - Parameters:
    ///   - arguments: The command-line arguments without the program's name.
    ///   - environment: The process's environment; only variables starting with `STATEHOUSE_`
    ///     are looked at.
    ///   - readFile: Returns the text of the file at a path; called only for the config file.
    /// - Returns: What to do: run with a configuration, print help, or print the version.
    /// - Throws: ``ConfigurationError`` for the first setting refused.
    public static func parse(
        arguments: [String], environment: [String: String], readFile: (String) throws -> String
    ) throws(ConfigurationError) -> ParseResult {
        var settings: [Option: Setting]
        let validateOnly: Bool
        switch try parseCommandLine(arguments) {
        case .help: return .help
        case .version: return .version
        case .settings(let commandLine, let validate):
            settings = commandLine
            validateOnly = validate
        }
        settings.merge(try parseEnvironment(environment)) { commandLine, _ in commandLine }
        if let configFile = settings[.configFile] {
            guard !configFile.text.isEmpty else {
                throw configFile.error(.configFile, expected: "the path of a config file")
            }
            let text: String
            do {
                text = try readFile(configFile.text)
            } catch {
                throw configFile.error(.configFile, expected: "a readable config file, but reading it failed: \(error)")
            }
            settings.merge(try parseConfigFile(text, path: configFile.text)) { earlier, _ in earlier }
        }
        let configuration = try resolve(settings)
        return validateOnly ? .validated(configuration) : .run(configuration)
    }

    /// What `--validate-config` prints: one line per setting that shapes the member.
    public var summary: String {
        let compaction: String
        switch autoCompaction {
        case nil: compaction = "off"
        case .periodic(let milliseconds): compaction = "periodic, keeping \(milliseconds) ms"
        case .revision(let revisions): compaction = "revision, keeping \(revisions) revisions"
        }
        let lines =
            [
                "configuration is valid",
                "name: \(name) (member ID \(String(localID, radix: 16)))",
                "data-dir: \(dataDir)",
                "initial-cluster: " + initialCluster.map { "\($0.name)=\($0.peerURLs.joined(separator: ","))" }.joined(separator: " "),
                "initial-cluster-state: \(clusterState.rawValue), cluster ID \(String(clusterID, radix: 16))",
                "listen-peer-urls: " + listenPeer.map(\.url).joined(separator: ","),
                "listen-client-urls: " + listenClient.map(\.url).joined(separator: ","),
                "advertise-client-urls: " + advertiseClientURLs.joined(separator: ","),
                "listen-metrics-urls: " + listenMetrics.map(\.url).joined(separator: ","),
                "client TLS: " + Self.describe(clientTLS),
                "peer TLS: " + Self.describe(peerTLS)
                    + (peerAllowedCommonName.map { ", allowed peer common name \(quoted($0))" } ?? ""),
                "heartbeat-interval: \(heartbeatMilliseconds) ms, election-timeout: \(electionMilliseconds) ms",
                "auto-compaction: \(compaction)",
                limitsSummary,
            ] + (forceNewCluster ? ["force-new-cluster: the member will remove every other member of its stored cluster"] : [])
        return lines.joined(separator: "\n")
    }
}

/// An option's value and where it came from.
struct Setting: Sendable {
    var text: String
    var source: ConfigurationError.Source

    /// An error refusing this value (or `value`, an element of it) for `option`.
    func error(_ option: Option, value: String? = nil, expected: String) -> ConfigurationError {
        ConfigurationError(kind: .invalidValue, flag: option.flag, value: value ?? text, expected: expected, source: source)
    }
}

/// The options of `--auth-token jwt,...`: etcd's `pub-key`, `priv-key`, `sign-method` and `ttl`,
/// and Statehouse's `verify-key` (repeatable: more public keys that verify tokens, for rotating
/// the signing key without a restart).
public struct JWTOptions: Hashable, Sendable {
    /// `sign-method`: `ES256`, `RS256` or `EdDSA`.
    public var signMethod: String
    /// `priv-key`: the PEM private key tokens are signed with.
    public var privateKeyPath: String
    /// `pub-key` and every `verify-key`: PEM public keys tokens are verified with.
    public var publicKeyPaths: [String]
    /// `ttl`: how long a token is valid, in seconds (default 300).
    public var ttlSeconds: Int64
}
