import ReplicatedMember
import ServerConfiguration
import Testing

/// What the tests' file reader throws for a path it holds no text for.
private struct MissingFile: Error, CustomStringConvertible {
    var path: String
    var description: String { "no such file: \(path)" }
}

/// What ``configuration(_:environment:files:sourceLocation:)`` throws when asked for help or the version.
private struct NotRun: Error {}

/// Parses with `files` as the only readable files.
private func parse(
    _ arguments: [String] = [], environment: [String: String] = [:], files: [String: String] = [:]
) throws(ConfigurationError) -> ServerConfiguration.ParseResult {
    try ServerConfiguration.parse(arguments: arguments, environment: environment) { path in
        guard let text = files[path] else { throw MissingFile(path: path) }
        return text
    }
}

/// The configuration `arguments`, `environment` and `files` describe, failing the test if refused.
private func configuration(
    _ arguments: [String] = [], environment: [String: String] = [:], files: [String: String] = [:],
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> ServerConfiguration {
    do {
        guard case .run(let configuration) = try parse(arguments, environment: environment, files: files) else {
            Issue.record("expected a configuration to run", sourceLocation: sourceLocation)
            throw NotRun()
        }
        return configuration
    } catch let error as ConfigurationError {
        Issue.record("unexpected error: \(error.line)", sourceLocation: sourceLocation)
        throw error
    }
}

/// The error refusing `arguments`, `environment` and `files`, or nil if none.
private func refusal(
    _ arguments: [String] = [], environment: [String: String] = [:], files: [String: String] = [:]
) -> ConfigurationError? {
    do {
        _ = try parse(arguments, environment: environment, files: files)
        return nil
    } catch {
        return error
    }
}

/// Asserts that the arguments are refused with exactly `expectedLine`.
private func assertRefused(
    _ arguments: [String], environment: [String: String] = [:], files: [String: String] = [:], _ expectedLine: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(refusal(arguments, environment: environment, files: files)?.line == expectedLine, sourceLocation: sourceLocation)
}

private let threeNodes = "n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380,n3=http://10.0.0.3:2380"

@Suite struct DefaultsTests {
    @Test("No flags give a single local member")
    func noFlagsGiveASingleLocalMember() throws {
        let configuration = try configuration()
        #expect(configuration.name == "default")
        #expect(configuration.dataDir == "default.statehouse")
        #expect(configuration.listenClient == [.init(host: "127.0.0.1", port: 2379, url: "http://127.0.0.1:2379")])
        #expect(configuration.advertiseClientURLs == ["http://127.0.0.1:2379"])
        #expect(configuration.listenPeer == [.init(host: "127.0.0.1", port: 2380, url: "http://127.0.0.1:2380")])
        #expect(configuration.initialAdvertisePeerURLs == ["http://127.0.0.1:2380"])
        let id = ServerConfiguration.memberID(peerURLs: ["http://127.0.0.1:2380"], token: "statehouse-cluster")
        #expect(configuration.initialCluster == [.init(name: "default", peerURLs: ["http://127.0.0.1:2380"], id: id)])
        #expect(configuration.initialMembers == configuration.initialCluster)
        #expect(configuration.localID == id)
        #expect(String(id, radix: 16) == "a93c6faefab57874")
        #expect(configuration.clusterID == ServerConfiguration.clusterID(memberIDs: [], token: "statehouse-cluster"))
        #expect(configuration.clusterState == .new)
        #expect(configuration.token == "statehouse-cluster")
        #expect(configuration.heartbeatMilliseconds == 100)
        #expect(configuration.electionMilliseconds == 1000)
        #expect(configuration.snapshotCount == 100_000)
        #expect(configuration.quotaBackendBytes == 2 << 30)
        #expect(configuration.maxRequestBytes == 1_572_864)
        #expect(configuration.logLevel == .info)
    }

    @Test("--name sets the default data dir and cluster")
    func nameSetsTheDefaultDataDirAndCluster() throws {
        let configuration = try configuration(["--name", "n1"])
        #expect(configuration.dataDir == "n1.statehouse")
        #expect(configuration.initialCluster.map(\.name) == ["n1"])
        #expect(configuration.initialCluster.map(\.peerURLs) == [["http://127.0.0.1:2380"]])
    }

    @Test("The default cluster holds every advertised peer URL")
    func defaultClusterHoldsEveryAdvertisedPeerURL() throws {
        let configuration = try configuration([
            "--initial-advertise-peer-urls", "http://10.0.0.2:2380, http://10.0.0.1:2380",
        ])
        #expect(configuration.initialAdvertisePeerURLs == ["http://10.0.0.2:2380", "http://10.0.0.1:2380"])
        #expect(configuration.initialCluster.map(\.peerURLs) == [["http://10.0.0.1:2380", "http://10.0.0.2:2380"]])
    }

    @Test("Every option is applied")
    func everyOptionIsApplied() throws {
        let configuration = try configuration([
            "--name", "n2", "--data-dir", "/var/lib/n2", "--listen-client-urls", "http://0.0.0.0:12379,http://[::1]:12379",
            "--advertise-client-urls", "http://node2.example:12379", "--listen-peer-urls", "http://10.0.0.2:2380",
            "--initial-advertise-peer-urls", "http://10.0.0.2:2380", "--initial-cluster", threeNodes,
            "--initial-cluster-state", "existing", "--initial-cluster-token", "t1", "--heartbeat-interval", "50",
            "--election-timeout", "250", "--snapshot-count", "10", "--quota-backend-bytes", "8589934592",
            "--max-request-bytes", "67108864", "--log-level", "debug",
        ])
        #expect(configuration.name == "n2")
        #expect(configuration.dataDir == "/var/lib/n2")
        #expect(
            configuration.listenClient == [
                .init(host: "0.0.0.0", port: 12379, url: "http://0.0.0.0:12379"),
                .init(host: "::1", port: 12379, url: "http://[::1]:12379"),
            ])
        #expect(configuration.advertiseClientURLs == ["http://node2.example:12379"])
        #expect(configuration.listenPeer.map(\.url) == ["http://10.0.0.2:2380"])
        #expect(configuration.clusterState == .existing)
        #expect(configuration.token == "t1")
        #expect(configuration.heartbeatMilliseconds == 50)
        #expect(configuration.electionMilliseconds == 250)
        #expect(configuration.snapshotCount == 10)
        #expect(configuration.quotaBackendBytes == 8 << 30)
        #expect(configuration.maxRequestBytes == 64 << 20)
        #expect(configuration.logLevel == .debug)
        #expect(configuration.initialCluster.count == 3)
    }

    @Test("URLs are normalized")
    func urlsAreNormalized() throws {
        let configuration = try configuration([
            "--listen-client-urls", "HTTP://localhost:02379", "--advertise-client-urls", " http://Node:2379 ",
        ])
        #expect(configuration.listenClient == [.init(host: "localhost", port: 2379, url: "http://localhost:2379")])
        #expect(configuration.advertiseClientURLs == ["http://Node:2379"])
    }
}

@Suite struct FlagFormTests {
    @Test("Each form of a flag")
    func eachFormOfAFlag() throws {
        for arguments in [["--name", "a"], ["--name=a"], ["-name", "a"], ["-name=a"]] {
            #expect(try configuration(arguments).name == "a", "\(arguments)")
        }
    }

    @Test("A value may hold equals signs and start with a dash")
    func valueMayHoldEqualsSignsAndStartWithADash() throws {
        #expect(try configuration(["--initial-cluster-token=a=b"]).token == "a=b")
        #expect(try configuration(["--initial-cluster-token", "-x"]).token == "-x")
    }

    @Test("The last of a repeated flag wins")
    func lastOfARepeatedFlagWins() throws {
        #expect(try configuration(["--name", "a", "--name=b"]).name == "b")
    }

    @Test("A double dash ends the flags")
    func doubleDashEndsTheFlags() throws {
        #expect(try configuration(["--name", "a", "--"]).name == "a")
        assertRefused(
            ["--", "--name"],
            #"statehouse: unexpected argument "--name": expected only flags, such as --name n1 (statehouse takes no other arguments)"#)
    }

    @Test("Help and version")
    func helpAndVersion() throws {
        for arguments in [["--help"], ["-h"], ["-help"], ["--h"], ["--help=true"], ["--name", "a", "--help", "--bogus"]] {
            #expect(try parse(arguments) == .help, "\(arguments)")
        }
        #expect(try parse(["--version"]) == .version)
        #expect(try parse(["-version", "--heartbeat-interval", "abc"]) == .version)
        #expect(try parse(["--version=false", "--help=false"]) == .run(try configuration()))
        assertRefused(["--bogus", "--help"], #"statehouse: unknown flag "--bogus": expected one of the flags listed by --help"#)
        assertRefused(["--version=maybe"], #"statehouse: invalid value "maybe" for --version: expected no value, or true or false"#)
    }

    @Test("Malformed command lines")
    func malformedCommandLines() {
        assertRefused(["--nmae", "x"], #"statehouse: unknown flag "--nmae": expected one of the flags listed by --help"#)
        assertRefused(["-Name=x"], #"statehouse: unknown flag "-Name": expected one of the flags listed by --help"#)
        assertRefused(["---name", "x"], #"statehouse: unknown flag "---name": expected a flag written --flag, --flag=value or -flag"#)
        assertRefused(["--=x"], #"statehouse: unknown flag "--=x": expected a flag written --flag, --flag=value or -flag"#)
        assertRefused(["--name"], #"statehouse: missing value for --name: expected a value after --name, as in --name=value"#)
        assertRefused(
            ["n1"], #"statehouse: unexpected argument "n1": expected only flags, such as --name n1 (statehouse takes no other arguments)"#)
        assertRefused(
            ["-"], #"statehouse: unexpected argument "-": expected only flags, such as --name n1 (statehouse takes no other arguments)"#)
    }

    @Test("ConfigurationError fields")
    func configurationErrorFields() {
        let error = refusal(["--heartbeat-interval", "abc"])
        #expect(
            error
                == ConfigurationError(
                    kind: .invalidValue, flag: "--heartbeat-interval", value: "abc",
                    expected: "a whole number of milliseconds greater than 0", source: .commandLine))
        #expect(error?.description == error?.line)
    }
}

@Suite struct PrecedenceTests {
    private let file = ["/etc/statehouse.yaml": "heartbeat-interval: 50\nname: from-file\n"]

    @Test("Flag beats environment beats file beats default")
    func flagBeatsEnvironmentBeatsFileBeatsDefault() throws {
        let environment = ["STATEHOUSE_HEARTBEAT_INTERVAL": "60", "STATEHOUSE_CONFIG_FILE": "/etc/statehouse.yaml"]
        let flagged = try configuration(["--heartbeat-interval", "70"], environment: environment, files: file)
        #expect(flagged.heartbeatMilliseconds == 70)
        #expect(flagged.name == "from-file")
        #expect(flagged.dataDir == "from-file.statehouse")
        #expect(try configuration(environment: environment, files: file).heartbeatMilliseconds == 60)
        #expect(try configuration(["--config-file", "/etc/statehouse.yaml"], files: file).heartbeatMilliseconds == 50)
        #expect(try configuration().heartbeatMilliseconds == 100)
    }

    @Test("--config-file beats its variable")
    func configFileFlagBeatsItsVariable() throws {
        let files = file.merging(["other.yaml": "name: other"]) { $1 }
        let configuration = try configuration(
            ["--config-file=other.yaml"], environment: ["STATEHOUSE_CONFIG_FILE": "/etc/statehouse.yaml"], files: files)
        #expect(configuration.name == "other")
        #expect(configuration.heartbeatMilliseconds == 100)
    }

    @Test("The environment names every option")
    func environmentNamesEveryOption() throws {
        let configuration = try configuration(environment: [
            "STATEHOUSE_NAME": "n3", "STATEHOUSE_DATA_DIR": "/d", "STATEHOUSE_LISTEN_CLIENT_URLS": "http://0.0.0.0:2379",
            "STATEHOUSE_ADVERTISE_CLIENT_URLS": "http://10.0.0.3:2379", "STATEHOUSE_LISTEN_PEER_URLS": "http://0.0.0.0:2380",
            "STATEHOUSE_INITIAL_ADVERTISE_PEER_URLS": "http://10.0.0.3:2380", "STATEHOUSE_INITIAL_CLUSTER": threeNodes,
            "STATEHOUSE_INITIAL_CLUSTER_STATE": "existing", "STATEHOUSE_INITIAL_CLUSTER_TOKEN": "t",
            "STATEHOUSE_HEARTBEAT_INTERVAL": "10", "STATEHOUSE_ELECTION_TIMEOUT": "50", "STATEHOUSE_SNAPSHOT_COUNT": "5",
            "STATEHOUSE_QUOTA_BACKEND_BYTES": "1024", "STATEHOUSE_MAX_REQUEST_BYTES": "2048", "STATEHOUSE_LOG_LEVEL": "warn",
            "PATH": "/usr/bin", "ETCD_NAME": "ignored",
        ])
        #expect(configuration.name == "n3")
        #expect(configuration.dataDir == "/d")
        #expect(configuration.listenClient.map(\.url) == ["http://0.0.0.0:2379"])
        #expect(configuration.advertiseClientURLs == ["http://10.0.0.3:2379"])
        #expect(configuration.listenPeer.map(\.url) == ["http://0.0.0.0:2380"])
        #expect(configuration.initialAdvertisePeerURLs == ["http://10.0.0.3:2380"])
        #expect(configuration.initialCluster.count == 3)
        #expect(configuration.clusterState == .existing)
        #expect(configuration.token == "t")
        #expect(configuration.heartbeatMilliseconds == 10)
        #expect(configuration.electionMilliseconds == 50)
        #expect(configuration.snapshotCount == 5)
        #expect(configuration.quotaBackendBytes == 1024)
        #expect(configuration.maxRequestBytes == 2048)
        #expect(configuration.logLevel == .warn)
    }

    @Test("An empty variable counts as unset")
    func emptyVariableCountsAsUnset() throws {
        #expect(try configuration(environment: ["STATEHOUSE_NAME": ""]).name == "default")
    }

    @Test("Config file syntax")
    func configFileSyntax() throws {
        let text = """
            \u{FEFF}---
            # A Statehouse member.

            name: 'n1''s'   # quoted, with an escaped quote
            data-dir: "/var/lib/a \\"b\\"" # comment
            initial-cluster-token: plain#value #comment
            log-level: warn\r
            advertise-client-urls: ~
            """
        let files = ["c.yaml": text]
        #expect(
            refusal(["--config-file", "c.yaml"], files: files)?.line
                == #"statehouse: invalid value "" for --advertise-client-urls (from config file "c.yaml", line 8): expected a comma-separated list of http://host:port URLs, none of them empty"#
        )
        let configuration = try configuration(["--config-file", "c.yaml", "--advertise-client-urls", "http://a:1"], files: files)
        #expect(configuration.name == "n1's")
        #expect(configuration.dataDir == #"/var/lib/a "b""#)
        #expect(configuration.token == "plain#value")
        #expect(configuration.logLevel == .warn)
    }

    @Test("A config file with Windows line endings")
    func configFileWithWindowsLineEndings() throws {
        let configuration = try configuration(["--config-file", "c"], files: ["c": "name: n1\r\nsnapshot-count: 7\r\n"])
        #expect(configuration.name == "n1")
        #expect(configuration.snapshotCount == 7)
    }

    @Test("Config file mistakes")
    func configFileMistakes() {
        func assertFileRefused(_ text: String, _ expectedLine: String, sourceLocation: SourceLocation = #_sourceLocation) {
            assertRefused(["--config-file", "s.yaml"], files: ["s.yaml": text], expectedLine, sourceLocation: sourceLocation)
        }
        assertFileRefused(
            "name: a\nenable-v2: true\n",
            #"statehouse: unknown key "enable-v2" in config file "s.yaml", line 2: expected one of the flag names listed by --help, without the dashes"#
        )
        assertFileRefused(
            "config-file: other.yaml",
            #"statehouse: unknown key "config-file" in config file "s.yaml", line 1: expected no config-file key (a config file cannot name another)"#
        )
        assertFileRefused(
            "name a", #"statehouse: cannot read "name a" in config file "s.yaml", line 1: expected a "key: value" line"#)
        assertFileRefused(
            "name:a",
            #"statehouse: cannot read "name:a" in config file "s.yaml", line 1: expected a "key: value" line, with a space after the colon"#
        )
        assertFileRefused(
            "client-transport-security:\n  cert-file: x\n",
            #"statehouse: unknown key "client-transport-security" in config file "s.yaml", line 1: expected one of the flag names listed by --help, without the dashes"#
        )
        assertFileRefused(
            "# nested\n  name: x\n",
            #"statehouse: cannot read "name: x" in config file "s.yaml", line 2: expected a "key: value" line starting at the first column (nested values are not supported)"#
        )
        assertFileRefused(
            "- name\n",
            #"statehouse: cannot read "- name" in config file "s.yaml", line 1: expected a "key: value" line (write a list as one comma-separated value)"#
        )
        assertFileRefused(
            "name: a\nname: b\n",
            #"statehouse: cannot read "name: b" in config file "s.yaml", line 2: expected each key at most once, but name was already set"#
        )
        let scalarExpected =
            #"expected "name: value" with a plain or quoted value, closed quotes and nothing but a comment after it (write a list as one comma-separated value)"#
        assertFileRefused(#"name: "open"#, #"statehouse: cannot read "name: \"open" in config file "s.yaml", line 1: "# + scalarExpected)
        assertFileRefused(#"name: "a" b"#, #"statehouse: cannot read "name: \"a\" b" in config file "s.yaml", line 1: "# + scalarExpected)
        assertFileRefused("name: [a, b]", #"statehouse: cannot read "name: [a, b]" in config file "s.yaml", line 1: "# + scalarExpected)
        assertFileRefused(
            "heartbeat-interval: 0\n",
            #"statehouse: invalid value "0" for --heartbeat-interval (from config file "s.yaml", line 1): expected a whole number of milliseconds greater than 0"#
        )
    }

    @Test("Overridden file values are not checked")
    func overriddenFileValuesAreNotChecked() throws {
        let configuration = try configuration(
            ["--config-file", "c", "--heartbeat-interval", "10", "--election-timeout", "100"], files: ["c": "heartbeat-interval: x"])
        #expect(configuration.heartbeatMilliseconds == 10)
    }

    @Test("An unreadable config file")
    func unreadableConfigFile() {
        assertRefused(
            ["--config-file", "/missing.yaml"],
            #"statehouse: invalid value "/missing.yaml" for --config-file: expected a readable config file, but reading it failed: no such file: /missing.yaml"#
        )
        assertRefused(["--config-file="], #"statehouse: invalid value "" for --config-file: expected the path of a config file"#)
    }

    @Test("An unknown environment variable")
    func unknownEnvironmentVariable() {
        assertRefused(
            [], environment: ["STATEHOUSE_NAME": "a", "STATEHOUSE_DATADIR": "x"],
            #"statehouse: unknown environment variable "STATEHOUSE_DATADIR": expected one of the STATEHOUSE_ variables listed by --help"#)
        assertRefused(
            [], environment: ["STATEHOUSE_VERSION": ""],
            #"statehouse: unknown environment variable "STATEHOUSE_VERSION": expected one of the STATEHOUSE_ variables listed by --help"#)
    }

    @Test("Client tool variables are ignored")
    func clientToolVariablesAreIgnored() throws {
        let environment = [
            "STATEHOUSE_ENDPOINTS": "127.0.0.1:2379,127.0.0.1:22379", "STATEHOUSE_LOCK_KEY": "jobs/694d",
            "STATEHOUSE_FENCING_TOKEN": "17", "STATEHOUSE_NAME": "n2",
        ]
        #expect(try configuration(environment: environment).name == "n2")
        assertRefused(
            [], environment: ["STATEHOUSE_ENDPOINTS": "127.0.0.1:2379", "STATEHOUSE_ENDPOINT": "127.0.0.1:2379"],
            #"statehouse: unknown environment variable "STATEHOUSE_ENDPOINT": expected one of the STATEHOUSE_ variables listed by --help"#)
    }

    @Test("A value from the environment names its variable")
    func valueFromTheEnvironmentNamesItsVariable() {
        assertRefused(
            [], environment: ["STATEHOUSE_LOG_LEVEL": "loud\nlouder"],
            #"statehouse: invalid value "loud\nlouder" for --log-level (from STATEHOUSE_LOG_LEVEL): expected one of debug, info, warn, error"#
        )
    }
}

@Suite struct ValidationTests {
    @Test("Name and data dir")
    func nameAndDataDir() {
        let name = "expected a non-empty member name without commas, equals signs, whitespace or control characters"
        assertRefused(["--name", ""], #"statehouse: invalid value "" for --name: "# + name)
        assertRefused(["--name", "a b"], #"statehouse: invalid value "a b" for --name: "# + name)
        assertRefused(["--name", "a=b"], #"statehouse: invalid value "a=b" for --name: "# + name)
        assertRefused(["--data-dir", ""], #"statehouse: invalid value "" for --data-dir: expected a non-empty directory path"#)
    }

    @Test("Heartbeat and election timeout")
    func heartbeatAndElectionTimeout() {
        let heartbeat = "expected a whole number of milliseconds greater than 0"
        assertRefused(["--heartbeat-interval", "abc"], #"statehouse: invalid value "abc" for --heartbeat-interval: "# + heartbeat)
        assertRefused(["--heartbeat-interval", "0"], #"statehouse: invalid value "0" for --heartbeat-interval: "# + heartbeat)
        assertRefused(["--heartbeat-interval", "-5"], #"statehouse: invalid value "-5" for --heartbeat-interval: "# + heartbeat)
        assertRefused(
            ["--heartbeat-interval", "10001"],
            #"statehouse: invalid value "10001" for --heartbeat-interval: expected a whole number of milliseconds from 1 to 10000 (--election-timeout must be at least 5 heartbeats and at most 50000)"#
        )
        assertRefused(
            ["--election-timeout", "499"],
            #"statehouse: invalid value "499" for --election-timeout: expected a whole number of milliseconds from 500 (5 × --heartbeat-interval 100) to 50000"#
        )
        assertRefused(
            ["--election-timeout", "50001"],
            #"statehouse: invalid value "50001" for --election-timeout: expected a whole number of milliseconds from 500 (5 × --heartbeat-interval 100) to 50000"#
        )
        assertRefused(
            ["--heartbeat-interval", "300"],
            #"statehouse: invalid value "1000" for --election-timeout (the default): expected a whole number of milliseconds from 1500 (5 × --heartbeat-interval 300) to 50000"#
        )
        #expect(refusal(["--heartbeat-interval", "10000", "--election-timeout", "50000"]) == nil)
        #expect(refusal(["--heartbeat-interval", "200", "--election-timeout", "1000"]) == nil)
    }

    @Test("Counts and sizes")
    func countsAndSizes() throws {
        assertRefused(
            ["--snapshot-count", "0"],
            #"statehouse: invalid value "0" for --snapshot-count: expected a whole number of applied entries greater than 0"#
        )
        let quota = "expected a whole number of bytes from 0 to 8589934592 (8 GiB), 0 meaning 2147483648 (2 GiB)"
        assertRefused(["--quota-backend-bytes", "-1"], #"statehouse: invalid value "-1" for --quota-backend-bytes: "# + quota)
        assertRefused(
            ["--quota-backend-bytes", "8589934593"], #"statehouse: invalid value "8589934593" for --quota-backend-bytes: "# + quota)
        assertRefused(["--quota-backend-bytes", "2GiB"], #"statehouse: invalid value "2GiB" for --quota-backend-bytes: "# + quota)
        #expect(try configuration(["--quota-backend-bytes", "1"]).quotaBackendBytes == 1)
        let request = "expected a whole number of bytes from 1 to 67108864 (64 MiB)"
        assertRefused(["--max-request-bytes", "0"], #"statehouse: invalid value "0" for --max-request-bytes: "# + request)
        assertRefused(["--max-request-bytes", "67108865"], #"statehouse: invalid value "67108865" for --max-request-bytes: "# + request)
        assertRefused(
            ["--max-request-bytes", "99999999999999999999999"],
            #"statehouse: invalid value "99999999999999999999999" for --max-request-bytes: "# + request)
    }

    @Test("Enumerations")
    func enumerations() {
        assertRefused(
            ["--log-level", "INFO"], #"statehouse: invalid value "INFO" for --log-level: expected one of debug, info, warn, error"#)
        assertRefused(
            ["--initial-cluster-state", "old"], #"statehouse: invalid value "old" for --initial-cluster-state: expected new or existing"#)
        assertRefused(
            ["--initial-cluster-token", ""],
            #"statehouse: invalid value "" for --initial-cluster-token: expected a non-empty token without control characters"#
        )
    }

    @Test("URLs")
    func urls() {
        assertRefused(
            ["--listen-peer-urls", "https://127.0.0.1:2380"],
            #"statehouse: invalid value "" for --peer-cert-file (the default): expected the path of a PEM certificate, as --listen-peer-urls has an https:// URL"#
        )
        assertRefused(
            ["--initial-advertise-peer-urls", "127.0.0.1:2380"],
            #"statehouse: invalid value "127.0.0.1:2380" for --initial-advertise-peer-urls: expected an http://host:port URL"#)
        assertRefused(
            ["--initial-advertise-peer-urls", "unix://x:1"],
            #"statehouse: invalid value "unix://x:1" for --initial-advertise-peer-urls: expected an http://host:port URL (the scheme must be http or https)"#
        )
        let port = "expected an http://host:port URL with a numeric port from 1 to 65535"
        for url in ["http://a:0", "http://a:65536", "http://a:http", "http://a:", "http://a:-1"] {
            assertRefused(
                ["--advertise-client-urls", url], #"statehouse: invalid value ""# + url + #"" for --advertise-client-urls: "# + port)
        }
        assertRefused(
            ["--advertise-client-urls", "http://a"],
            #"statehouse: invalid value "http://a" for --advertise-client-urls: expected an http://host:port URL with a port, as in http://127.0.0.1:2379"#
        )
        assertRefused(
            ["--advertise-client-urls", "http://a:1/v3"],
            #"statehouse: invalid value "http://a:1/v3" for --advertise-client-urls: expected an http://host:port URL with no path, query or user info"#
        )
        assertRefused(
            ["--advertise-client-urls", "http://bad host:1"],
            #"statehouse: invalid value "http://bad host:1" for --advertise-client-urls: expected an http://host:port URL with a valid host name or IP address"#
        )
        assertRefused(
            ["--advertise-client-urls", "http://256.0.0.1:1"],
            #"statehouse: invalid value "http://256.0.0.1:1" for --advertise-client-urls: expected an http://host:port URL with a valid host name or IP address"#
        )
        assertRefused(
            ["--advertise-client-urls", "http://0.0.0.0:2379"],
            #"statehouse: invalid value "http://0.0.0.0:2379" for --advertise-client-urls: expected an http://host:port URL whose host others can reach (an unspecified address such as 0.0.0.0 only suits listen URLs)"#
        )
        assertRefused(
            ["--listen-peer-urls", "http://node1:2380"],
            #"statehouse: invalid value "http://node1:2380" for --listen-peer-urls: expected an http://host:port URL whose host is an IP address or localhost (a listen URL names an address to bind)"#
        )
        assertRefused(
            ["--listen-peer-urls", "http://::1:2380"],
            #"statehouse: invalid value "http://::1:2380" for --listen-peer-urls: expected an http://host:port URL with its IPv6 address in brackets, as in http://[::1]:2379"#
        )
        assertRefused(
            ["--listen-peer-urls", "http://[::g]:2380"],
            #"statehouse: invalid value "http://[::g]:2380" for --listen-peer-urls: expected an http://host:port URL with a valid IPv6 address in the brackets"#
        )
    }

    @Test("IPv6 addresses")
    func ipv6Addresses() throws {
        for host in ["::", "::1", "fe80::1", "2001:db8:0:0:0:0:2:1", "2001:db8::2:1", "::ffff:192.0.2.1", "1:2:3:4:5:6:7::"] {
            #expect(throws: Never.self, "\(host)") { try configuration(["--listen-peer-urls", "http://[\(host)]:2380"]) }
        }
        for host in ["", ":", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "fe80::1%eth0", "1:2:3:4:5:6:7:8::", ":::1"] {
            #expect(refusal(["--listen-peer-urls", "http://[\(host)]:2380"]) != nil, "\(host)")
        }
    }

    @Test("URL lists")
    func urlLists() {
        let list = "expected a comma-separated list of http://host:port URLs, none of them empty"
        assertRefused(["--listen-peer-urls", ""], #"statehouse: invalid value "" for --listen-peer-urls: "# + list)
        assertRefused(
            ["--listen-peer-urls", "http://127.0.0.1:2380,"],
            #"statehouse: invalid value "http://127.0.0.1:2380," for --listen-peer-urls: "# + list)
        assertRefused(
            ["--listen-peer-urls", "http://127.0.0.1:2380,HTTP://127.0.0.1:2380"],
            #"statehouse: invalid value "HTTP://127.0.0.1:2380" for --listen-peer-urls: expected each URL once, but http://127.0.0.1:2380 appears twice"#
        )
    }

    @Test("--listen-client-urls needs --advertise-client-urls")
    func listenClientURLsNeedAdvertiseClientURLs() {
        assertRefused(
            ["--listen-client-urls", "http://0.0.0.0:2379"],
            #"statehouse: invalid value "http://0.0.0.0:2379" for --listen-client-urls: expected --advertise-client-urls to be set as well (etcd requires it when --listen-client-urls is set, so that clients are told an address they can reach)"#
        )
    }

    @Test("Initial cluster")
    func initialCluster() throws {
        let flags = ["--name", "n1", "--initial-advertise-peer-urls", "http://10.0.0.1:2380", "--initial-cluster"]
        assertRefused(
            ["--initial-cluster", "n2=http://127.0.0.1:2380"],
            #"statehouse: invalid value "n2=http://127.0.0.1:2380" for --initial-cluster: expected an entry for this member's --name "default", as in default=http://127.0.0.1:2380"#
        )
        assertRefused(
            flags + ["n1=http://10.0.0.9:2380,n2=http://10.0.0.2:2380"],
            #"statehouse: invalid value "n1=http://10.0.0.9:2380,n2=http://10.0.0.2:2380" for --initial-cluster: expected the peer URLs of "n1" (http://10.0.0.9:2380) to equal --initial-advertise-peer-urls (http://10.0.0.1:2380)"#
        )
        assertRefused(
            flags + ["n1=http://10.0.0.1:2380,n1=http://10.0.0.5:2380"],
            #"statehouse: invalid value "n1=http://10.0.0.1:2380,n1=http://10.0.0.5:2380" for --initial-cluster: expected the peer URLs of "n1" (http://10.0.0.1:2380,http://10.0.0.5:2380) to equal --initial-advertise-peer-urls (http://10.0.0.1:2380)"#
        )
        assertRefused(
            flags + ["n1=http://10.0.0.1:2380,n2=http://10.0.0.1:2380"],
            #"statehouse: invalid value "n2=http://10.0.0.1:2380" for --initial-cluster: expected each peer URL to belong to one member, but http://10.0.0.1:2380 is given to both "n1" and "n2""#
        )
        assertRefused(
            flags + ["n1=http://10.0.0.1:2380,n1=http://10.0.0.1:2380"],
            #"statehouse: invalid value "n1=http://10.0.0.1:2380" for --initial-cluster: expected each URL once, but http://10.0.0.1:2380 appears twice for "n1""#
        )
        assertRefused(
            flags + ["n1=http://10.0.0.1:2380,n2"],
            #"statehouse: invalid value "n2" for --initial-cluster: expected entries of the form name=http://host:port, as in n1=http://10.0.0.1:2380"#
        )
        assertRefused(
            flags + ["n1=http://10.0.0.1:2380,=http://10.0.0.2:2380"],
            #"statehouse: invalid value "=http://10.0.0.2:2380" for --initial-cluster: expected entries of the form name=http://host:port whose name is not empty and has no whitespace or control characters"#
        )
        assertRefused(
            flags + ["n1=http://10.0.0.1:2380,,n2=http://10.0.0.2:2380"],
            #"statehouse: invalid value "n1=http://10.0.0.1:2380,,n2=http://10.0.0.2:2380" for --initial-cluster: expected a comma-separated list of name=http://host:port entries, none of them empty"#
        )
        #expect(
            try configuration(flags + ["n1=http://10.0.0.1:2380,n2=https://10.0.0.2:2380"]).initialCluster.map(\.peerURLs)
                .contains(["https://10.0.0.2:2380"]))
    }

    @Test("Every error is one line")
    func everyErrorIsOneLine() {
        let error = ConfigurationError(flag: "--name", value: "a\nb", expected: "x\ny", source: .environment(variable: "STATEHOUSE_NAME"))
        #expect(!error.line.contains("\n"))
        #expect(error.line == #"statehouse: invalid value "a\nb" for --name (from STATEHOUSE_NAME): expected x y"#)
    }
}

@Suite struct ValidateConfigTests {
    @Test("--validate-config checks everything a start checks and asks for no start")
    func validateConfig() throws {
        let valid = try configuration(["--name", "n1"])
        #expect(try parse(["--validate-config", "--name", "n1"]) == .validated(valid))
        #expect(try parse(["--name=n1", "-validate-config=true"]) == .validated(valid))
        #expect(try parse(["--validate-config=false", "--name", "n1"]) == .run(valid))
        #expect(
            try parse(["--validate-config"], environment: ["STATEHOUSE_NAME": "n1"], files: [:]) == .validated(valid))
        assertRefused(
            ["--validate-config", "--heartbeat-interval", "abc"],
            #"statehouse: invalid value "abc" for --heartbeat-interval: expected a whole number of milliseconds greater than 0"#)
        assertRefused(
            ["--validate-config=maybe"], #"statehouse: invalid value "maybe" for --validate-config: expected no value, or true or false"#)
        let summary = valid.summary
        #expect(summary.hasPrefix("configuration is valid\nname: n1 (member ID "))
        #expect(summary.contains("data-dir: n1.statehouse"))
        #expect(summary.contains("auto-compaction: off"))
    }
}

@Suite struct ForceNewClusterTests {
    @Test("--force-new-cluster is a boolean flag, as etcd's: written alone it means true")
    func flag() throws {
        #expect(try configuration().forceNewCluster == false)
        #expect(try configuration(["--force-new-cluster"]).forceNewCluster)
        #expect(try configuration(["--force-new-cluster", "--name", "n1"]).name == "n1", "the flag takes no value")
        #expect(try configuration(["--force-new-cluster=false"]).forceNewCluster == false)
        #expect(try configuration(environment: ["STATEHOUSE_FORCE_NEW_CLUSTER": "true"]).forceNewCluster)
        #expect(try configuration(["--config-file", "c"], files: ["c": "force-new-cluster: true"]).forceNewCluster)
        assertRefused(
            ["--force-new-cluster=maybe"], #"statehouse: invalid value "maybe" for --force-new-cluster: expected true or false"#)
    }
}

@Suite struct MetricsAndLogFormatTests {
    @Test("--listen-metrics-urls: none by default, else listen URLs checked as the others")
    func listenMetricsURLs() throws {
        #expect(try configuration().listenMetrics == [])
        #expect(
            try configuration(["--listen-metrics-urls", "http://127.0.0.1:2381"]).listenMetrics
                == [.init(host: "127.0.0.1", port: 2381, url: "http://127.0.0.1:2381")])
        #expect(refusal(["--listen-metrics-urls", "http://example.com:2381"])?.line.contains("--listen-metrics-urls") == true)
    }

    @Test("--log-format text or json")
    func logFormat() throws {
        #expect(try configuration().logFormat == .text)
        #expect(try configuration(["--log-format", "json"]).logFormat == .json)
        assertRefused(["--log-format", "yaml"], #"statehouse: invalid value "yaml" for --log-format: expected text or json"#)
    }
}

@Suite struct AutoCompactionTests {
    @Test("off by default, as etcd 3.4's")
    func offByDefault() throws {
        #expect(try configuration().autoCompaction == nil)
        #expect(try configuration(["--auto-compaction-mode", "revision"]).autoCompaction == nil)
        #expect(try configuration(["--auto-compaction-retention", "0s"]).autoCompaction == nil)
    }

    @Test("periodic retention: a whole number is hours, anything else a Go duration")
    func periodic() throws {
        func retention(_ text: String) throws -> AutoCompaction? {
            try configuration(["--auto-compaction-retention", text]).autoCompaction
        }
        #expect(try retention("1") == .periodic(retentionMilliseconds: 3_600_000))
        #expect(try retention("72") == .periodic(retentionMilliseconds: 72 * 3_600_000))
        #expect(try retention("30m") == .periodic(retentionMilliseconds: 1_800_000))
        #expect(try retention("1h30m") == .periodic(retentionMilliseconds: 5_400_000))
        #expect(try retention("1.5h") == .periodic(retentionMilliseconds: 5_400_000))
        #expect(try retention("5s") == .periodic(retentionMilliseconds: 5_000))
        #expect(try retention("250ms") == .periodic(retentionMilliseconds: 250))
        #expect(
            try configuration(["--auto-compaction-mode=periodic"], environment: ["STATEHOUSE_AUTO_COMPACTION_RETENTION": "10m"])
                .autoCompaction == .periodic(retentionMilliseconds: 600_000))
        let expected = "expected a duration such as 30m, 1h30m or 5s, or a whole number of hours (0 turns auto-compaction off)"
        for text in ["-1", "1d", "h", "1h-5m", "500us"] {
            assertRefused(
                ["--auto-compaction-retention", text],
                #"statehouse: invalid value ""# + text + #"" for --auto-compaction-retention: "# + expected)
        }
    }

    @Test("revision retention is a whole number of revisions")
    func revision() throws {
        #expect(
            try configuration(["--auto-compaction-mode", "revision", "--auto-compaction-retention", "1000"]).autoCompaction
                == .revision(retainedRevisions: 1000))
        assertRefused(
            ["--auto-compaction-mode", "revision", "--auto-compaction-retention", "1h"],
            #"statehouse: invalid value "1h" for --auto-compaction-retention: expected a whole number of revisions to keep, as --auto-compaction-mode is revision (0 turns it off)"#
        )
        assertRefused(
            ["--auto-compaction-mode", "hourly"],
            #"statehouse: invalid value "hourly" for --auto-compaction-mode: expected periodic or revision"#)
    }
}

@Suite struct IdentityTests {
    private func member(_ name: String) throws -> ServerConfiguration {
        let number = name.dropFirst()
        return try configuration([
            "--name", name, "--initial-advertise-peer-urls", "http://10.0.0.\(number):2380", "--initial-cluster", threeNodes,
        ])
    }

    @Test("A three-node cluster has stable, distinct IDs")
    func threeNodeClusterHasStableDistinctIDs() throws {
        let n1 = try member("n1")
        let n2 = try member("n2")
        let n3 = try member("n3")
        #expect(n1.initialCluster == n2.initialCluster)
        #expect(n1.initialCluster == n3.initialCluster)
        let ids = n1.initialCluster.map(\.id)
        #expect(ids == ids.sorted())
        #expect(Set(ids).count == 3)
        #expect(!ids.contains(0))
        #expect(Set(n1.initialCluster.map(\.name)) == ["n1", "n2", "n3"])
        for configuration in [n1, n2, n3] {
            let local = configuration.initialCluster.first { $0.name == configuration.name }
            #expect(configuration.localID == local?.id)
            #expect(local?.peerURLs == configuration.initialAdvertisePeerURLs)
            #expect(configuration.clusterID == n1.clusterID)
        }
        #expect(Set([n1.localID, n2.localID, n3.localID]).count == 3)
        // Pinned: these IDs are stored in data directories and must never change.
        #expect(
            n1.initialCluster.map { "\($0.name)=\(String($0.id, radix: 16))" } == [
                "n3=11ea35e029645235", "n2=4f14762685262704", "n1=f64eb88793da2af1",
            ])
        #expect(n1.clusterID == ServerConfiguration.clusterID(memberIDs: [], token: n1.token))
    }

    @Test("The token changes every ID")
    func tokenChangesEveryID() throws {
        let a = try configuration(["--initial-cluster-token", "a"])
        let b = try configuration(["--initial-cluster-token", "b"])
        #expect(a.localID != b.localID)
        #expect(a.clusterID != b.clusterID)
    }

    @Test("The member ID ignores URL order")
    func memberIDIgnoresURLOrder() {
        let urls = ["http://10.0.0.1:2380", "http://10.0.0.1:12380"]
        #expect(
            ServerConfiguration.memberID(peerURLs: urls, token: "t") == ServerConfiguration.memberID(peerURLs: urls.reversed(), token: "t"))
        #expect(ServerConfiguration.memberID(peerURLs: urls, token: "t") != ServerConfiguration.memberID(peerURLs: [urls[0]], token: "t"))
        #expect(
            ServerConfiguration.clusterID(memberIDs: [1, 2], token: "t") == ServerConfiguration.clusterID(memberIDs: [2, 1], token: "t"))
    }

    @Test("A member with several URLs")
    func memberWithSeveralURLs() throws {
        let configuration = try configuration([
            "--name", "n1", "--initial-advertise-peer-urls", "http://10.0.0.1:2380,http://[fd00::1]:2380",
            "--initial-cluster", "n1=http://[fd00::1]:2380,n2=http://10.0.0.2:2380,n1=http://10.0.0.1:2380",
        ])
        let local = configuration.initialCluster.first { $0.name == "n1" }
        #expect(local?.peerURLs == ["http://10.0.0.1:2380", "http://[fd00::1]:2380"])
        #expect(configuration.localID == ServerConfiguration.memberID(peerURLs: local?.peerURLs ?? [], token: "statehouse-cluster"))
    }
}

@Suite struct HelpTests {
    private let flags = [
        "name", "data-dir", "listen-client-urls", "advertise-client-urls", "listen-peer-urls", "initial-advertise-peer-urls",
        "initial-cluster", "initial-cluster-state", "initial-cluster-token", "heartbeat-interval", "election-timeout",
        "snapshot-count", "quota-backend-bytes", "max-request-bytes", "log-level", "config-file", "auto-compaction-mode",
        "auto-compaction-retention", "force-new-cluster", "listen-metrics-urls", "log-format",
    ]

    @Test("Help mentions every flag and variable")
    func helpMentionsEveryFlagAndVariable() {
        let help = ServerConfiguration.helpText
        for flag in flags {
            #expect(help.contains("--\(flag) <"), "\(flag)")
            let variable = "STATEHOUSE_" + flag.uppercased().replacing("-", with: "_")
            #expect(help.contains("env \(variable),"), "\(variable)")
        }
        for text in [
            "--help", "-h", "--version", "--validate-config", "default \"default\"", "default \"http://127.0.0.1:2379\"",
            "default.statehouse",
        ] {
            #expect(help.contains(text), "\(text)")
        }
    }

    @Test("Every documented variable is accepted")
    func everyDocumentedVariableIsAccepted() {
        for flag in flags where flag != "config-file" {
            let variable = "STATEHOUSE_" + flag.uppercased().replacing("-", with: "_")
            #expect(refusal(environment: [variable: "x"])?.kind != .unknownEnvironmentVariable, "\(variable)")
            #expect(refusal(["--\(flag)", "x"])?.kind != .unknownFlag, "\(flag)")
            #expect(refusal(["--config-file", "c"], files: ["c": "\(flag): x"])?.kind != .unknownConfigKey, "\(flag)")
        }
    }

    @Test("Help lines fit a terminal")
    func helpLinesFitATerminal() {
        for line in ServerConfiguration.helpText.split(separator: "\n") {
            #expect(line.count <= 100, "\(String(line))")
        }
    }
}
