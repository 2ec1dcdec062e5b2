extension ServerConfiguration {
    /// The usage text `--help` prints: every option with its flag, environment variable, default
    /// and meaning, and how flags, the environment and the config file combine.
    public static var helpText: String {
        func section(_ title: String, _ options: [Option]) -> String {
            ([title + ":"] + options.map(\.helpEntry)).joined(separator: "\n")
        }
        let member: [Option] = [
            .name, .dataDir, .snapshotCount, .heartbeatInterval, .electionTimeout, .listenPeerURLs, .listenClientURLs,
            .quotaBackendBytes, .maxRequestBytes, .autoCompactionMode, .autoCompactionRetention, .authToken, .authTokenTTL,
            .authPasswordRounds,
        ]
        let clustering: [Option] = [
            .initialAdvertisePeerURLs, .initialCluster, .initialClusterState, .initialClusterToken, .advertiseClientURLs,
            .forceNewCluster,
        ]
        let parts = [
            """
            Usage: statehouse [flags]

            Runs one member of a Statehouse cluster: a Raft-replicated key-value store serving
            etcd's v3 API. Its flags have the names and meanings of etcd's.

            A flag is written --flag value, --flag=value, -flag value or -flag=value; given twice,
            the last value counts. Every flag but --help and --version can also be set by an
            environment variable, STATEHOUSE_ and the flag's name in upper case with dashes as
            underscores (an empty variable counts as unset), and every one but --config-file by a
            key of the config file. A flag wins over the environment variable, which wins over the
            config file, which wins over the default. An unknown flag, STATEHOUSE_ variable or
            config-file key is an error, and every value is checked before the member starts.
            The client tools' variables (STATEHOUSE_ENDPOINTS, STATEHOUSE_LOCK_KEY and
            STATEHOUSE_FENCING_TOKEN) are ignored.

            URLs are written http://host:port, or https://host:port for TLS (see Security); http
            and https listeners may be mixed. A list of URLs is one value with commas between
            them. Listen URLs name an IP address or localhost.
            """,
            section("Member", member),
            section("Clustering", clustering),
            section("Logging and metrics", [.logLevel, .logFormat, .listenMetricsURLs]),
            section(
                "Security (TLS; docs/security.md)",
                [
                    .certFile, .keyFile, .trustedCAFile, .clientCertAuth, .peerCertFile, .peerKeyFile, .peerTrustedCAFile,
                    .peerClientCertAuth, .peerCertAllowedCN, .cipherSuites,
                ]),
            section("Limits", Option.limits),
            section("Config file", [.configFile])
                + "\n\n"
                    + """
                    The config file holds one "key: value" line per option, the keys being the flag
                    names without dashes, as in etcd's config file. Blank lines and # comments are
                    ignored, a value may be quoted with ' or ", and a list is one comma-separated value:

                        name: n1
                        initial-cluster: "n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380"
                        heartbeat-interval: 100  # milliseconds

                    Unlike etcd's, the config file does not switch off flags and environment variables.
                    """,
            """
            Other:
              -h, --help
                    Print this text and exit.
              --version
                    Print the version and exit.
              --validate-config
                    Check every flag, environment variable and config-file key exactly as a start
                    would, print what the member would run with, and exit: 0 if the configuration
                    is valid, 2 (with one line naming the flag) if not. Nothing is created.
            """,
        ]
        return parts.joined(separator: "\n\n") + "\n"
    }
}
