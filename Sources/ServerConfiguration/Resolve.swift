import ReplicatedMember

/// Checking every value and deriving the configuration from them.
extension ServerConfiguration {
    /// The configuration the settings describe, defaults filled in, every value checked in the
    /// order of ``Option``.
    static func resolve(_ settings: [Option: Setting]) throws(ConfigurationError) -> ServerConfiguration {
        func setting(_ option: Option, default fallback: String? = nil) -> Setting {
            settings[option] ?? Setting(text: fallback ?? option.defaultValue ?? "", source: .defaultValue)
        }

        let nameSetting = setting(.name)
        let name = nameSetting.text
        guard isValidName(name) else {
            throw nameSetting.error(
                .name, expected: "a non-empty member name without commas, equals signs, whitespace or control characters")
        }

        let dataDirSetting = setting(.dataDir, default: name + ".statehouse")
        guard !dataDirSetting.text.isEmpty else { throw dataDirSetting.error(.dataDir, expected: "a non-empty directory path") }

        let snapshotSetting = setting(.snapshotCount)
        guard let snapshotCount = wholeNumber(snapshotSetting.text, as: UInt64.self), snapshotCount > 0 else {
            throw snapshotSetting.error(.snapshotCount, expected: "a whole number of applied entries greater than 0")
        }

        let heartbeatSetting = setting(.heartbeatInterval)
        guard let heartbeat = wholeNumber(heartbeatSetting.text, as: Int64.self), heartbeat > 0 else {
            throw heartbeatSetting.error(.heartbeatInterval, expected: "a whole number of milliseconds greater than 0")
        }
        let longestHeartbeat = maximumElectionMilliseconds / 5
        guard heartbeat <= longestHeartbeat else {
            throw heartbeatSetting.error(
                .heartbeatInterval,
                expected: "a whole number of milliseconds from 1 to \(longestHeartbeat)"
                    + " (--election-timeout must be at least 5 heartbeats and at most \(maximumElectionMilliseconds))")
        }

        let electionSetting = setting(.electionTimeout)
        let shortestElection = 5 * heartbeat
        guard let election = wholeNumber(electionSetting.text, as: Int64.self),
            (shortestElection...maximumElectionMilliseconds).contains(election)
        else {
            throw electionSetting.error(
                .electionTimeout,
                expected: "a whole number of milliseconds from \(shortestElection) (5 × --heartbeat-interval \(heartbeat))"
                    + " to \(maximumElectionMilliseconds)")
        }

        let listenPeer = try urlList(setting(.listenPeerURLs), .listenPeerURLs, role: .listen)
        let listenClientSetting = setting(.listenClientURLs)
        let listenClient = try urlList(listenClientSetting, .listenClientURLs, role: .listen)
        if settings[.listenClientURLs] != nil, settings[.advertiseClientURLs] == nil {
            throw listenClientSetting.error(
                .listenClientURLs,
                expected: "--advertise-client-urls to be set as well (etcd requires it when --listen-client-urls is set,"
                    + " so that clients are told an address they can reach)")
        }

        let quotaSetting = setting(.quotaBackendBytes)
        guard let quota = wholeNumber(quotaSetting.text, as: Int64.self), quota <= maximumQuotaBackendBytes else {
            throw quotaSetting.error(
                .quotaBackendBytes,
                expected: "a whole number of bytes from 0 to \(maximumQuotaBackendBytes) (8 GiB),"
                    + " 0 meaning \(defaultQuotaBackendBytes) (2 GiB)")
        }

        let maxRequestSetting = setting(.maxRequestBytes)
        guard let maxRequest = wholeNumber(maxRequestSetting.text, as: Int.self), (1...maximumRequestBytes).contains(maxRequest) else {
            throw maxRequestSetting.error(.maxRequestBytes, expected: "a whole number of bytes from 1 to \(maximumRequestBytes) (64 MiB)")
        }

        let advertisePeer = try urlList(setting(.initialAdvertisePeerURLs), .initialAdvertisePeerURLs, role: .advertise).map(\.url)
        let defaultCluster = advertisePeer.map { "\(name)=\($0)" }.joined(separator: ",")
        let clusterSetting = setting(.initialCluster, default: defaultCluster)
        let cluster = try initialCluster(clusterSetting, name: name, advertisePeer: advertisePeer)

        let stateSetting = setting(.initialClusterState)
        guard let state = ClusterState(rawValue: stateSetting.text) else {
            throw stateSetting.error(.initialClusterState, expected: "new or existing")
        }

        let tokenSetting = setting(.initialClusterToken)
        guard !tokenSetting.text.isEmpty, !tokenSetting.text.unicodeScalars.contains(where: isControl) else {
            throw tokenSetting.error(.initialClusterToken, expected: "a non-empty token without control characters")
        }
        let token = tokenSetting.text

        let advertiseClient = try urlList(setting(.advertiseClientURLs), .advertiseClientURLs, role: .advertise).map(\.url)

        let autoCompaction = try resolveAutoCompaction(setting(.autoCompactionMode), setting(.autoCompactionRetention))

        let forceSetting = setting(.forceNewCluster)
        let forceNewCluster = try boolean(forceSetting, .forceNewCluster)

        let metricsSetting = setting(.listenMetricsURLs)
        let listenMetrics = metricsSetting.text.isEmpty ? [] : try urlList(metricsSetting, .listenMetricsURLs, role: .listen)

        let logLevelSetting = setting(.logLevel)
        guard let logLevel = LogLevel(rawValue: logLevelSetting.text) else {
            throw logLevelSetting.error(.logLevel, expected: "one of " + LogLevel.allCases.map(\.rawValue).joined(separator: ", "))
        }
        let logFormatSetting = setting(.logFormat)
        guard let logFormat = LogFormat(rawValue: logFormatSetting.text) else {
            throw logFormatSetting.error(.logFormat, expected: "text or json")
        }

        let security = try resolveSecurity(
            { setting($0) }, clientURLs: listenClient, metricsURLs: listenMetrics, peerURLs: listenPeer)
        let authTokenSetting = setting(.authToken)
        let jwt = try resolveJWT(authTokenSetting)
        let tokenTTLSetting = setting(.authTokenTTL)
        guard let tokenTTL = wholeNumber(tokenTTLSetting.text, as: Int64.self), (1...86_400).contains(tokenTTL) else {
            throw tokenTTLSetting.error(.authTokenTTL, expected: "a whole number of seconds from 1 to 86400")
        }
        let roundsSetting = setting(.authPasswordRounds)
        guard let rounds = wholeNumber(roundsSetting.text, as: Int.self), (1_000...10_000_000).contains(rounds) else {
            throw roundsSetting.error(.authPasswordRounds, expected: "a whole number from 1000 to 10000000")
        }

        var members = cluster.map { InitialMember(name: $0.name, peerURLs: $0.peerURLs, id: memberID(peerURLs: $0.peerURLs, token: token)) }
        members.sort { $0.id < $1.id }
        for (earlier, later) in zip(members, members.dropFirst()) where earlier.id == later.id {
            throw clusterSetting.error(
                .initialCluster,
                expected: "members with distinct IDs, but \(quoted(earlier.name)) and \(quoted(later.name)) hash to the same ID;"
                    + " change --initial-cluster-token")
        }

        var configuration = ServerConfiguration(
            name: name,
            dataDir: dataDirSetting.text,
            listenClient: listenClient,
            advertiseClientURLs: advertiseClient,
            listenPeer: listenPeer,
            initialAdvertisePeerURLs: advertisePeer,
            initialCluster: members,
            clusterState: state,
            token: token,
            heartbeatMilliseconds: heartbeat,
            electionMilliseconds: election,
            snapshotCount: snapshotCount,
            quotaBackendBytes: quota == 0 ? defaultQuotaBackendBytes : quota,
            authJWT: jwt,
            authTokenTTLSeconds: tokenTTL,
            authPasswordRounds: rounds,
            maxRequestBytes: maxRequest,
            autoCompaction: autoCompaction,
            forceNewCluster: forceNewCluster,
            listenMetrics: listenMetrics,
            logLevel: logLevel,
            logFormat: logFormat,
            clientTLS: security.clientTLS,
            peerTLS: security.peerTLS,
            peerClientTLS: security.peerClientTLS,
            peerAllowedCommonName: security.peerAllowedCommonName,
            localID: members.first { $0.name == name }?.id ?? 0,
            clusterID: clusterID(memberIDs: [], token: token))
        configuration.limits = try resolveLimits { setting($0) }
        return configuration
    }

    /// The members `--initial-cluster` lists, in order of first appearance, each with its peer
    /// URLs in normal form, sorted; checked to hold this member with exactly its advertised URLs.
    private static func initialCluster(
        _ setting: Setting, name: String, advertisePeer: [String]
    ) throws(ConfigurationError) -> [(name: String, peerURLs: [String])] {
        let entries = setting.text.split(separator: ",", omittingEmptySubsequences: false).map(trimmed)
        guard !entries.contains(where: \.isEmpty) else {
            throw setting.error(.initialCluster, expected: "a comma-separated list of name=http://host:port entries, none of them empty")
        }
        var names: [String] = []
        var urlsByName: [String: [String]] = [:]
        var ownerByURL: [String: String] = [:]
        for entry in entries {
            guard let equals = entry.firstIndex(of: "=") else {
                throw setting.error(
                    .initialCluster, value: String(entry),
                    expected: "entries of the form name=http://host:port, as in n1=http://10.0.0.1:2380")
            }
            let member = String(trimmed(entry[..<equals]))
            guard isValidName(member) else {
                throw setting.error(
                    .initialCluster, value: String(entry),
                    expected:
                        "entries of the form name=http://host:port whose name is not empty and has no whitespace or control characters")
            }
            let url: String
            switch parseURL(trimmed(entry[entry.index(after: equals)...]), role: .advertise) {
            case .failure(let problem): throw setting.error(.initialCluster, value: String(entry), expected: problem.expected)
            case .success(let endpoint): url = endpoint.url
            }
            if let owner = ownerByURL[url] {
                throw setting.error(
                    .initialCluster, value: String(entry),
                    expected: owner == member
                        ? "each URL once, but \(url) appears twice for \(quoted(member))"
                        : "each peer URL to belong to one member, but \(url) is given to both \(quoted(owner)) and \(quoted(member))")
            }
            ownerByURL[url] = member
            if urlsByName[member] == nil { names.append(member) }
            urlsByName[member, default: []].append(url)
        }
        guard let local = urlsByName[name] else {
            throw setting.error(
                .initialCluster,
                expected: "an entry for this member's --name \(quoted(name)), as in \(name)=\(advertisePeer.first ?? "http://host:port")")
        }
        guard Set(local) == Set(advertisePeer) else {
            throw setting.error(
                .initialCluster,
                expected: "the peer URLs of \(quoted(name)) (\(sortedURLs(local).joined(separator: ",")))"
                    + " to equal --initial-advertise-peer-urls (\(sortedURLs(advertisePeer).joined(separator: ",")))")
        }
        return names.map { (name: $0, peerURLs: sortedURLs(urlsByName[$0] ?? [])) }
    }

    /// Whether `name` can name a member: not empty, and free of the separators of
    /// `--initial-cluster`, whitespace and control characters.
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && !name.unicodeScalars.contains { $0 == "," || $0 == "=" || $0.properties.isWhitespace || isControl($0) }
    }

    /// The whole number `text` spells in decimal digits (no sign), or nil if it spells none or
    /// `Value` cannot hold it.
    /// The auto-compaction policy of `--auto-compaction-mode` and `--auto-compaction-retention`,
    /// nil when the retention is 0, as etcd reads them: in periodic mode a whole number is hours,
    /// anything else a Go duration; revision mode takes a whole number of revisions only.
    static func resolveAutoCompaction(_ mode: Setting, _ retention: Setting) throws(ConfigurationError) -> AutoCompaction? {
        switch mode.text {
        case "periodic":
            let milliseconds: Int64
            if let hours = wholeNumber(retention.text, as: Int64.self), hours <= Int64.max / 3_600_000 {
                milliseconds = hours * 3_600_000
            } else if let duration = goDurationMilliseconds(retention.text) {
                milliseconds = duration
            } else {
                throw retention.error(
                    .autoCompactionRetention,
                    expected: "a duration such as 30m, 1h30m or 5s, or a whole number of hours (0 turns auto-compaction off)")
            }
            return milliseconds == 0 ? nil : .periodic(retentionMilliseconds: milliseconds)
        case "revision":
            guard let revisions = wholeNumber(retention.text, as: Int64.self) else {
                throw retention.error(
                    .autoCompactionRetention,
                    expected: "a whole number of revisions to keep, as --auto-compaction-mode is revision (0 turns it off)")
            }
            return revisions == 0 ? nil : .revision(retainedRevisions: revisions)
        default:
            throw mode.error(.autoCompactionMode, expected: "periodic or revision")
        }
    }

    /// The milliseconds a Go duration (`time.ParseDuration`: `1h30m`, `1.5h`, `300ms`, `10s`)
    /// spells, rounded down; nil if it is not one, is negative, or is between 0 and 1 ms.
    /// `--auth-token`: `simple` (nil), or `jwt,` then comma-separated `key=value` options as
    /// etcd's (`priv-key`, `pub-key`, `sign-method`, `ttl`) plus repeatable `verify-key`.
    static func resolveJWT(_ setting: Setting) throws(ConfigurationError) -> JWTOptions? {
        let parts = setting.text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        if parts == ["simple"] { return nil }
        let expected =
            "simple, or jwt,priv-key=<pem>,pub-key=<pem>,sign-method=ES256|RS256|EdDSA[,ttl=<duration>][,verify-key=<pem>]..."
        guard parts.first == "jwt" else { throw setting.error(.authToken, expected: expected) }
        var options = JWTOptions(signMethod: "", privateKeyPath: "", publicKeyPaths: [], ttlSeconds: 300)
        var publicKey = ""
        for part in parts.dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2, !pair[1].isEmpty else { throw setting.error(.authToken, expected: expected) }
            switch pair[0] {
            case "priv-key": options.privateKeyPath = pair[1]
            case "pub-key": publicKey = pair[1]
            case "verify-key": options.publicKeyPaths.append(pair[1])
            case "sign-method":
                guard ["ES256", "RS256", "EdDSA"].contains(pair[1]) else {
                    throw setting.error(.authToken, expected: "sign-method ES256, RS256 or EdDSA")
                }
                options.signMethod = pair[1]
            case "ttl":
                guard let milliseconds = goDurationMilliseconds(pair[1]), milliseconds >= 1_000 else {
                    throw setting.error(.authToken, expected: "a ttl of at least 1s, such as 5m")
                }
                options.ttlSeconds = milliseconds / 1_000
            default:
                throw setting.error(.authToken, expected: expected)
            }
        }
        guard !options.privateKeyPath.isEmpty, !publicKey.isEmpty, !options.signMethod.isEmpty else {
            throw setting.error(.authToken, expected: expected)
        }
        options.publicKeyPaths.insert(publicKey, at: 0)
        return options
    }

    static func goDurationMilliseconds(_ text: String) -> Int64? {
        let units: [(String, Double)] = [("ns", 1e-6), ("us", 1e-3), ("µs", 1e-3), ("ms", 1), ("s", 1e3), ("m", 6e4), ("h", 3.6e6)]
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        if rest == "0" { return 0 }
        var total = 0.0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !number.isEmpty, number != ".", let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unitText = rest.prefix { !($0.isASCII && ($0.isNumber || $0 == ".")) }
            guard let unit = units.first(where: { $0.0 == unitText }) else { return nil }
            rest = rest.dropFirst(unitText.count)
            total += value * unit.1
        }
        guard total < 9.2e18, total == 0 || total >= 1 else { return nil }
        return Int64(total)
    }

    static func wholeNumber<Value: FixedWidthInteger>(_ text: String, as type: Value.Type) -> Value? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Value(text, radix: 10)
    }
}

/// Whether `scalar` is a control character (C0, DEL or C1).
func isControl(_ scalar: Unicode.Scalar) -> Bool {
    scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
}

/// `urls` in byte order, the order member IDs are hashed in.
func sortedURLs(_ urls: [String]) -> [String] {
    urls.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
}
