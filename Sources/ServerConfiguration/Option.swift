/// One option of the server: a flag, an environment variable and a config-file key, all named
/// after etcd's flag of the same meaning.
///
/// The order of the cases is the order of `--help` and the order in which values are checked.
enum Option: String, CaseIterable, Sendable {
    case name
    case dataDir = "data-dir"
    case snapshotCount = "snapshot-count"
    case heartbeatInterval = "heartbeat-interval"
    case electionTimeout = "election-timeout"
    case listenPeerURLs = "listen-peer-urls"
    case listenClientURLs = "listen-client-urls"
    case quotaBackendBytes = "quota-backend-bytes"
    case maxRequestBytes = "max-request-bytes"
    case initialAdvertisePeerURLs = "initial-advertise-peer-urls"
    case initialCluster = "initial-cluster"
    case initialClusterState = "initial-cluster-state"
    case initialClusterToken = "initial-cluster-token"
    case advertiseClientURLs = "advertise-client-urls"
    case autoCompactionMode = "auto-compaction-mode"
    case autoCompactionRetention = "auto-compaction-retention"
    case forceNewCluster = "force-new-cluster"
    case listenMetricsURLs = "listen-metrics-urls"
    case logLevel = "log-level"
    case logFormat = "log-format"
    case certFile = "cert-file"
    case keyFile = "key-file"
    case trustedCAFile = "trusted-ca-file"
    case clientCertAuth = "client-cert-auth"
    case peerCertFile = "peer-cert-file"
    case peerKeyFile = "peer-key-file"
    case peerTrustedCAFile = "peer-trusted-ca-file"
    case peerClientCertAuth = "peer-client-cert-auth"
    case peerCertAllowedCN = "peer-cert-allowed-cn"
    case cipherSuites = "cipher-suites"
    case authToken = "auth-token"
    case authTokenTTL = "auth-token-ttl"
    case authPasswordRounds = "auth-password-rounds"
    case configFile = "config-file"
    // Limits (Limits.swift).
    case maxTxnOps = "max-txn-ops"
    case maxConcurrentStreams = "max-concurrent-streams"
    case grpcKeepaliveMinTime = "grpc-keepalive-min-time"
    case grpcKeepaliveInterval = "grpc-keepalive-interval"
    case grpcKeepaliveTimeout = "grpc-keepalive-timeout"
    case maxConnections = "max-connections"
    case connectionIdleTimeout = "connection-idle-timeout"

    /// The option's command-line flag, with two dashes.
    var flag: String { "--" + rawValue }

    /// The option's environment variable: `STATEHOUSE_` and the name in upper case, dashes as
    /// underscores.
    var environmentVariable: String {
        "STATEHOUSE_" + String(rawValue.uppercased().map { $0 == "-" ? "_" : $0 })
    }

    /// Whether the option is a boolean flag: written alone (`--force-new-cluster`) it means true.
    var isBoolean: Bool { self == .forceNewCluster || self == .clientCertAuth || self == .peerClientCertAuth }

    /// Whether the option may be a key of the config file (the config file cannot name another).
    var isConfigFileKey: Bool { self != .configFile }

    /// The option named by an environment variable, if any.
    init?(environmentVariable: String) {
        guard let option = Option.allCases.first(where: { $0.environmentVariable == environmentVariable }) else { return nil }
        self = option
    }

    /// The default value, or nil where it depends on other options or there is none.
    var defaultValue: String? {
        switch self {
        case .name: return "default"
        case .dataDir, .initialCluster, .configFile: return nil
        case .snapshotCount: return "100000"
        case .heartbeatInterval: return "100"
        case .electionTimeout: return "1000"
        case .listenPeerURLs, .initialAdvertisePeerURLs: return "http://127.0.0.1:2380"
        case .listenClientURLs, .advertiseClientURLs: return "http://127.0.0.1:2379"
        case .quotaBackendBytes: return "0"
        case .maxRequestBytes: return "1572864"
        case .initialClusterState: return "new"
        case .initialClusterToken: return "statehouse-cluster"
        case .autoCompactionMode: return "periodic"
        case .autoCompactionRetention: return "0"
        case .forceNewCluster, .clientCertAuth, .peerClientCertAuth: return "false"
        case .listenMetricsURLs: return ""
        case .certFile, .keyFile, .trustedCAFile, .peerCertFile, .peerKeyFile, .peerTrustedCAFile, .peerCertAllowedCN,
            .cipherSuites:
            return ""
        case .logFormat: return "text"
        case .logLevel: return "info"
        case .maxTxnOps, .maxConcurrentStreams, .grpcKeepaliveMinTime, .grpcKeepaliveInterval, .grpcKeepaliveTimeout, .maxConnections,
            .connectionIdleTimeout:
            return limitDefaultValue
        case .authToken: return "simple"
        case .authTokenTTL: return "300"
        case .authPasswordRounds: return "210000"
        }
    }

    /// The placeholder for the option's value in `--help`.
    private var valueName: String {
        switch self {
        case .name: return "name"
        case .dataDir, .configFile: return "path"
        case .snapshotCount: return "count"
        case .heartbeatInterval, .electionTimeout: return "ms"
        case .listenPeerURLs, .listenClientURLs, .initialAdvertisePeerURLs, .advertiseClientURLs: return "urls"
        case .quotaBackendBytes, .maxRequestBytes: return "bytes"
        case .initialCluster: return "name=url,..."
        case .initialClusterState: return "new|existing"
        case .initialClusterToken: return "token"
        case .autoCompactionMode: return "periodic|revision"
        case .autoCompactionRetention: return "retention"
        case .forceNewCluster, .clientCertAuth, .peerClientCertAuth: return "true|false"
        case .listenMetricsURLs: return "urls"
        case .certFile, .keyFile, .trustedCAFile, .peerCertFile, .peerKeyFile, .peerTrustedCAFile: return "path"
        case .peerCertAllowedCN: return "cn"
        case .cipherSuites: return "names"
        case .logFormat: return "text|json"
        case .logLevel: return "debug|info|warn|error"
        case .maxTxnOps, .maxConcurrentStreams, .grpcKeepaliveMinTime, .grpcKeepaliveInterval, .grpcKeepaliveTimeout, .maxConnections,
            .connectionIdleTimeout:
            return limitValueName
        case .authToken: return "simple|jwt,..."
        case .authTokenTTL: return "seconds"
        case .authPasswordRounds: return "rounds"
        }
    }

    /// The default as `--help` shows it.
    private var defaultDescription: String {
        switch self {
        case .dataDir: return "\"<name>.statehouse\", so \"default.statehouse\""
        case .initialCluster: return "\"<name>=<initial-advertise-peer-urls>\""
        case .configFile: return "none"
        case .quotaBackendBytes: return "0, meaning 2147483648 (2 GiB)"
        case .maxRequestBytes: return "1572864 (1.5 MiB)"
        default: return quoted(defaultValue ?? "")
        }
    }

    /// What the option means and what it accepts, one `--help` line per element.
    private var summary: [String] {
        switch self {
        case .name:
            return [
                "Human-readable name of this member: its key in --initial-cluster.",
                "Must not be empty or contain commas, equals signs or whitespace.",
            ]
        case .dataDir:
            return ["Directory holding this member's Raft log, snapshots and key-value data."]
        case .snapshotCount:
            return ["Number of applied entries between snapshots of the state machine (at least 1)."]
        case .heartbeatInterval:
            return ["Time between the leader's heartbeats, in milliseconds (1 to 10000)."]
        case .electionTimeout:
            return [
                "Time a follower waits without hearing from a leader before starting an election, in",
                "milliseconds: at least 5 × --heartbeat-interval and at most 50000.",
            ]
        case .listenPeerURLs:
            return [
                "Comma-separated http://host:port or https://host:port URLs to listen on for traffic",
                "from the other members (https: TLS with --peer-cert-file). Each host must be an IP",
                "address or localhost.",
            ]
        case .listenClientURLs:
            return [
                "Comma-separated http://host:port or https://host:port URLs to listen on for clients",
                "(etcd's v3 gRPC API; https: TLS with --cert-file). Each host must be an IP address or",
                "localhost. When this is set, so must --advertise-client-urls be.",
            ]
        case .quotaBackendBytes:
            return ["Space quota of the key-value backend in bytes, as etcd's: 0 means 2 GiB; at most 8 GiB."]
        case .maxRequestBytes:
            return ["Largest client request accepted, in bytes (1 to 67108864, 64 MiB)."]
        case .initialAdvertisePeerURLs:
            return [
                "Comma-separated http://host:port URLs at which the other members reach this one.",
                "They must equal this member's URLs in --initial-cluster.",
            ]
        case .initialCluster:
            return [
                "The members the cluster starts with, as name=http://host:port entries separated by",
                "commas. A name given several times has several URLs; a URL belongs to one member only.",
                "Must list --name with exactly the URLs of --initial-advertise-peer-urls; by default",
                "it lists this member alone.",
            ]
        case .initialClusterState:
            return ["\"new\" to start a new cluster, \"existing\" to join one that is already running."]
        case .initialClusterToken:
            return [
                "Token distinguishing this cluster from others started with the same members; it is",
                "hashed into the member and cluster IDs.",
            ]
        case .advertiseClientURLs:
            return ["Comma-separated http://host:port URLs at which clients reach this member."]
        case .autoCompactionMode:
            return [
                "How the leader compacts the key history on its own, as etcd's: \"periodic\" keeps the",
                "last --auto-compaction-retention of time, \"revision\" the last that many revisions.",
            ]
        case .autoCompactionRetention:
            return [
                "How much history auto-compaction keeps; 0 turns it off. Periodic mode takes a",
                "duration such as 30m, 1h30m or 5s (a whole number alone is hours) and compacts every",
                "retention, at most every hour; revision mode takes a whole number of revisions and",
                "compacts every 5 minutes.",
            ]
        case .forceNewCluster:
            return [
                "For the disaster in which every other member is lost for good: start from this",
                "member's data as the only member of its cluster, removing the others (their",
                "uncommitted writes are lost). Start it once with the flag, then without; add new",
                "members as usual. Needs an existing data directory. Written alone it means true.",
            ]
        case .listenMetricsURLs:
            return [
                "Comma-separated http://host:port URLs on which to serve /metrics and /health (and",
                "the other HTTP endpoints) without the client API, as etcd's. Empty: none.",
            ]
        case .logFormat:
            return ["\"text\" for lines to read, \"json\" for one JSON object per line (level, ts, msg, fields)."]
        case .logLevel:
            return ["Least severe level of log messages written."]
        case .certFile:
            return [
                "PEM certificate (chain, leaf first) of the https:// client and metrics URLs. Re-read",
                "when the file changes: new connections get the new certificate.",
            ]
        case .keyFile:
            return ["PEM private key of --cert-file; needed with it."]
        case .trustedCAFile:
            return [
                "PEM certificates of the authorities that sign client certificates. As in etcd, setting",
                "it makes the https:// client URLs require a client certificate signed by one of them.",
            ]
        case .clientCertAuth:
            return [
                "Require a client certificate signed by --trusted-ca-file (which must be set) on the",
                "https:// client URLs; its common name is the client's verified identity.",
            ]
        case .peerCertFile:
            return [
                "PEM certificate of this member on the https:// peer URLs, presented both by its",
                "listener and, as a client certificate, on its connections to https:// peers.",
            ]
        case .peerKeyFile:
            return ["PEM private key of --peer-cert-file; needed with it."]
        case .peerTrustedCAFile:
            return [
                "PEM certificates of the authorities that sign the members' certificates: peers'",
                "server certificates are verified against them (else the system's authorities), and,",
                "as in etcd, setting it makes the https:// peer URLs require a client certificate.",
            ]
        case .peerClientCertAuth:
            return [
                "Require a client certificate signed by --peer-trusted-ca-file (which must be set) on",
                "the https:// peer URLs.",
            ]
        case .peerCertAllowedCN:
            return [
                "Accept peer connections only from certificates with this common name (needs",
                "--peer-client-cert-auth or --peer-trusted-ca-file). Empty: any.",
            ]
        case .cipherSuites:
            return [
                "Comma-separated TLS 1.2 cipher suites allowed on every TLS connection, by Go's names",
                "as etcd takes them (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, ...). Empty: the TLS",
                "library's default set. TLS 1.3 suites are always allowed; TLS 1.2 is the minimum.",
            ]
        case .configFile:
            return ["Config file to read, described below. Cannot be set in the config file itself."]
        case .maxTxnOps, .maxConcurrentStreams, .grpcKeepaliveMinTime, .grpcKeepaliveInterval, .grpcKeepaliveTimeout, .maxConnections,
            .connectionIdleTimeout:
            return limitSummary
        case .authToken:
            return [
                "Kind of auth token Authenticate hands out, as etcd's: \"simple\", or",
                "jwt,priv-key=<pem>,pub-key=<pem>,sign-method=ES256|RS256|EdDSA[,ttl=5m]; add",
                "verify-key=<pem> (repeatable) for more public keys that verify tokens. Key files are read",
                "again when they change.",
            ]
        case .authTokenTTL:
            return ["Seconds a simple token stays valid after its last use (1 to 86400), as etcd's."]
        case .authPasswordRounds:
            return [
                "PBKDF2-HMAC-SHA256 iterations for new password hashes (1000 to 10000000); the default",
                "is OWASP's recommendation. Lower it only for tests.",
            ]
        }
    }

    /// The option's entry in `--help`.
    var helpEntry: String {
        var lines = ["  --\(rawValue) <\(valueName)>"]
        lines += summary.map { "        " + $0 }
        lines.append("        env \(environmentVariable), default \(defaultDescription)")
        return lines.joined(separator: "\n")
    }
}
