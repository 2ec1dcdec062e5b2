import Foundation
import Glibc
import StatehouseClient
import TestSupport
import Testing

/// Runs the `statehousectl` built next to the test bundle against a ``LocalCluster``.
struct StatehousectlRunner {
    /// The executable.
    let executable: URL
    /// The cluster whose members are the default endpoints.
    let cluster: LocalCluster
    private let counter = Counter()

    private final class Counter {
        var value = 0
    }

    /// The `statehousectl` built next to the test bundle; skips the running test if there is none.
    static func builtExecutable() throws -> URL {
        guard let executable = TestSupport.builtExecutable(named: "statehousectl") else {
            try skipTest("statehousectl was not built next to the test bundle; build it with `swift build --product statehousectl`")
        }
        return executable
    }

    init(executable: URL, cluster: LocalCluster) {
        self.executable = executable
        self.cluster = cluster
    }

    /// Starts `statehousectl arguments` in the background. The cluster's endpoints are passed
    /// with `--endpoints` unless `environment` sets `STATEHOUSE_ENDPOINTS` or the arguments
    /// name endpoints already.
    func start(_ arguments: [String], environment extra: [String: String] = [:], input: String? = nil) throws -> ChildProcess {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("STATEHOUSE_") }
        environment.merge(extra) { _, new in new }
        var fullArguments = arguments
        if extra["STATEHOUSE_ENDPOINTS"] == nil, !arguments.contains(where: { $0.hasPrefix("--endpoints") }),
            let command = arguments.first
        {
            // Options go right after the (sub)command words: before a lock's or elect's NAME.
            let words = ["lease", "member", "endpoint", "snapshot", "alarm", "user", "role", "auth"].contains(command) ? 2 : 1
            fullArguments.insert("--endpoints=\(cluster.endpoints())", at: min(words, arguments.count))
        }
        counter.value += 1
        let base = cluster.root + "/statehousectl-\(counter.value)"
        return try ChildProcess(
            executable: executable.path, arguments: fullArguments, environment: environment, input: input,
            outputPath: base + ".out", errorPath: base + ".err")
    }

    /// Runs `statehousectl arguments` to completion.
    func run(
        _ arguments: [String], environment: [String: String] = [:], input: String? = nil, timeout: Duration = .seconds(20)
    ) async throws -> EtcdctlResult {
        let process = try start(arguments, environment: environment, input: input)
        let command = "statehousectl " + arguments.joined(separator: " ")
        do {
            let status = try await process.waitForExit(timeout: timeout)
            return EtcdctlResult(command: command, status: status, output: process.output, errorOutput: process.errorOutput)
        } catch {
            await process.killAndWait()
            throw TimeoutError(
                description: "`\(command)` did not finish within \(timeout); stdout: \(process.output.debugDescription); "
                    + "stderr: \(process.errorOutput.debugDescription)")
        }
    }
}

extension LocalClusterTests {
    /// `statehousectl` against a three-member cluster: what each command prints and how it exits.
    @Suite("statehousectl")
    struct StatehousectlTests {
        /// Runs `body` with a three-member cluster (see ``withCluster(size:snapshotCount:arguments:_:)``) and a
        /// statehousectl runner for it; skips the test if statehousectl was not built.
        private func withCtlCluster(
            arguments: [String] = [], _ body: (LocalCluster, StatehousectlRunner) async throws -> Void
        ) async throws {
            let executable = try StatehousectlRunner.builtExecutable()
            try await withCluster(arguments: arguments) { cluster in
                try await body(cluster, StatehousectlRunner(executable: executable, cluster: cluster))
            }
        }

        /// Runs statehousectl and checks it exits 1 with `message` as its one line on standard error.
        private func refuse(
            _ ctl: StatehousectlRunner, _ arguments: [String], with message: String, sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let result = try await ctl.run(arguments)
            #expect(result.status == .exited(1), "\(result)", sourceLocation: sourceLocation)
            #expect(result.errorOutput == "Error: \(message)\n", "\(result)", sourceLocation: sourceLocation)
        }

        /// Runs statehousectl and checks it exits 0; returns what it printed.
        @discardableResult
        private func succeed(
            _ ctl: StatehousectlRunner, _ arguments: [String], environment: [String: String] = [:], input: String? = nil,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws -> EtcdctlResult {
            let result = try await ctl.run(arguments, environment: environment, input: input)
            #expect(result.status == .exited(0), "\(result)", sourceLocation: sourceLocation)
            return result
        }

        /// Runs statehousectl and checks it exits 0 and prints exactly `expected`.
        private func expect(
            _ ctl: StatehousectlRunner, _ arguments: [String], prints expected: String, input: String? = nil,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let result = try await succeed(ctl, arguments, input: input, sourceLocation: sourceLocation)
            #expect(result.output == expected, "\(result)", sourceLocation: sourceLocation)
        }

        /// Starts statehousectl in the background; the cluster kills it when the test ends if the
        /// test does not.
        private func background(_ ctl: StatehousectlRunner, _ arguments: [String]) throws -> ChildProcess {
            ctl.cluster.adopt(try ctl.start(arguments))
        }

        // MARK: - Key-value commands

        @Test("put, get, del, txn and compaction")
        func putGetDeleteTxnAndCompaction() async throws {
            try await withCtlCluster { cluster, ctl in
                try await expect(ctl, ["put", "foo", "bar"], prints: "OK\n")
                try await expect(ctl, ["put", "foo1", "a"], prints: "OK\n")
                try await expect(ctl, ["put", "foo2", "b"], prints: "OK\n")
                try await expect(ctl, ["get", "foo"], prints: "foo\nbar\n")
                // Global options before the command's name, as etcdctl takes them.
                try await expect(ctl, ["--endpoints=\(cluster.members[1].clientURL)", "-w", "simple", "get", "foo"], prints: "foo\nbar\n")
                try await expect(ctl, ["get", "--prefix", "foo"], prints: "foo\nbar\nfoo1\na\nfoo2\nb\n")
                try await expect(ctl, ["get", "foo", "foo2"], prints: "foo\nbar\nfoo1\na\n")
                try await expect(ctl, ["get", "--from-key", "foo1"], prints: "foo1\na\nfoo2\nb\n")
                try await expect(ctl, ["get", "--prefix", "--keys-only", "foo"], prints: "foo\n\nfoo1\n\nfoo2\n\n")
                try await expect(ctl, ["get", "--prefix", "--limit", "1", "foo"], prints: "foo\nbar\n")
                try await expect(
                    ctl, ["get", "--prefix", "--sort-by", "KEY", "--order", "DESCEND", "foo"], prints: "foo2\nb\nfoo1\na\nfoo\nbar\n")
                try await expect(ctl, ["get", "--print-value-only", "--consistency", "s", "foo1"], prints: "a\n")
                try await expect(ctl, ["get", "missing"], prints: "")

                // JSON: plain UTF-8 keys and values, IDs in hexadecimal, revisions as numbers.
                let json = try await succeed(ctl, ["get", "foo", "-w", "json"])
                let object = try jsonObject(json.output)
                let header = object["header"] as? [String: Any]
                #expect(jsonInt64(header?["revision"]) ?? 0 >= 4, "\(json.output)")
                #expect((header?["member_id"] as? String).flatMap { UInt64($0, radix: 16) } != nil, "\(json.output)")
                let kvs = object["kvs"] as? [[String: Any]] ?? []
                #expect(kvs.first?["key"] as? String == "foo", "\(json.output)")
                #expect(kvs.first?["value"] as? String == "bar", "\(json.output)")
                #expect(jsonInt64(kvs.first?["version"]) == 1, "\(json.output)")
                #expect(jsonInt64(object["count"]) == 1, "\(json.output)")
                #expect(object["more"] as? Bool == false, "\(json.output)")

                // Table: a boxed header and one aligned row per key.
                let table = try await succeed(ctl, ["get", "--prefix", "foo", "-w", "table"])
                let rows = table.lines
                #expect(rows.count == 7, "\(table)")
                #expect(rows.first?.hasPrefix("+-") ?? false, "\(table)")
                #expect(Set(rows.map(\.count)).count == 1, "every table line has the same width: \(table)")
                #expect(rows[1].contains("KEY") && rows[1].contains("MOD_REVISION"), "\(table)")
                #expect(rows[3].hasPrefix("| foo  ") && rows[3].contains(" bar "), "\(table)")

                // --rev reads an older revision; put --prev-kv prints the old value.
                let old = try await succeed(ctl, ["put", "versioned", "old", "-w", "json"])
                let oldRevision = jsonInt64((try jsonObject(old.output)["header"] as? [String: Any])?["revision"]) ?? 0
                #expect(oldRevision > 0, "\(old)")
                try await expect(ctl, ["put", "versioned", "new", "--prev-kv"], prints: "OK\nversioned\nold\n")
                try await expect(ctl, ["get", "versioned", "--rev", String(oldRevision)], prints: "versioned\nold\n")

                // txn from standard input, both branches.
                try await expect(
                    ctl, ["txn"], prints: "SUCCESS\n\nOK\n\nfoo\nbaz\n",
                    input: "value(\"foo\") = \"bar\"\nversion(\"foo\") = \"1\"\n\nput foo baz\nget foo\n\nput foo failed\n\n")
                try await expect(
                    ctl, ["txn"], prints: "FAILURE\n\nOK\n",
                    input: "value(\"foo\") = \"bar\"\nmod(\"foo1\") > \"0\"\n\nput foo never\n\nput txn-failure \"yes it failed\"\n")
                try await expect(ctl, ["get", "txn-failure"], prints: "txn-failure\nyes it failed\n")
                try await expect(
                    ctl, ["txn", "-i"],
                    prints: "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\nSUCCESS\n\n1\n",
                    input: "create(\"txn-failure\") > \"0\"\n\ndel txn-failure\n\n")
                let badTxn = try await ctl.run(["txn"], input: "bogus(\"k\") = \"v\"\n\n\n")
                #expect(badTxn.status == .exited(2), "\(badTxn)")
                #expect(badTxn.errorOutput.contains("unknown comparison target \"bogus\""), "\(badTxn)")

                // del, with --prev-kv and --prefix.
                try await expect(ctl, ["del", "foo"], prints: "1\n")
                try await expect(ctl, ["del", "foo"], prints: "0\n")
                try await expect(ctl, ["del", "--prev-kv", "versioned"], prints: "1\nversioned\nnew\n")
                try await expect(ctl, ["del", "--prefix", "foo"], prints: "2\n")
                try await expect(ctl, ["get", "--prefix", "foo"], prints: "")

                // STATEHOUSE_ENDPOINTS stands in for --endpoints.
                let viaEnvironment = try await succeed(
                    ctl, ["put", "from-env", "yes"], environment: ["STATEHOUSE_ENDPOINTS": cluster.members[2].clientURL])
                #expect(viaEnvironment.output == "OK\n")
                let unreachable = try await ctl.run(
                    ["get", "from-env", "--command-timeout", "1s"], environment: ["STATEHOUSE_ENDPOINTS": "127.0.0.1:1"])
                #expect(unreachable.status == .exited(1), "STATEHOUSE_ENDPOINTS naming nothing must fail: \(unreachable)")
                #expect(unreachable.errorOutput.hasPrefix("Error: "), "\(unreachable)")

                // compaction, then reading the compacted revision is a server error (exit 1).
                try await expect(ctl, ["compaction", String(oldRevision + 1)], prints: "compacted revision \(oldRevision + 1)\n")
                let compacted = try await ctl.run(["get", "versioned", "--rev", String(oldRevision)])
                #expect(compacted.status == .exited(1), "\(compacted)")
                #expect(compacted.errorOutput == "Error: etcdserver: mvcc: required revision has been compacted\n", "\(compacted)")
            }
        }

        // MARK: - Watch and leases

        @Test("watch and lease commands")
        func watchAndLeaseCommands() async throws {
            try await withCtlCluster { _, ctl in
                let first = try await succeed(ctl, ["put", "wk", "v0", "-w", "json"])
                let start = jsonInt64((try jsonObject(first.output)["header"] as? [String: Any])?["revision"]) ?? 0
                // From a known revision, so the watch misses nothing however late it starts.
                let watch = try background(ctl, ["watch", "--prefix", "--prev-kv", "--rev", String(start + 1), "wk"])
                let json = try background(ctl, ["watch", "wk", "-w", "json", "--rev", String(start + 1)])
                try await expect(ctl, ["put", "wk", "v1"], prints: "OK\n")
                try await expect(ctl, ["del", "wk"], prints: "1\n")
                let output = try await watch.waitForOutput("the watch to print a put and a delete") {
                    $0.hasPrefix("PUT") && $0.contains("DELETE")
                }
                try await Task.sleep(for: .milliseconds(200))
                #expect(watch.output == "PUT\nwk\nv0\nwk\nv1\nDELETE\nwk\nv1\nwk\n\n", "watch --prev-kv: \(output)")
                let events = try await json.waitForOutput("the JSON watch to print two events") { $0.split(separator: "\n").count >= 2 }
                let lines = events.split(separator: "\n").map(String.init)
                #expect(try lines.map { try jsonObject($0)["type"] as? String } == ["PUT", "DELETE"], "\(events)")
                #expect((try jsonObject(lines[0])["kv"] as? [String: Any])?["value"] as? String == "v1", "\(events)")
                watch.send(SIGINT)
                json.send(SIGTERM)
                let watchExit = try await watch.waitForExit()
                let jsonExit = try await json.waitForExit()
                #expect(watchExit == .exited(0), "watch after SIGINT: \(watch.errorOutput)")
                #expect(jsonExit == .exited(0), "watch after SIGTERM: \(json.errorOutput)")

                // Leases.
                let grant = try await succeed(ctl, ["lease", "grant", "60"])
                let words = grant.output.split(separator: " ")
                let id = words.count > 1 ? String(words[1]) : ""
                #expect(grant.output == "lease \(id) granted with TTL(60s)\n")
                #expect(id.count == 16, "\(grant.output)")
                try await expect(ctl, ["put", "leased", "value", "--lease", id], prints: "OK\n")
                try await expect(ctl, ["lease", "keep-alive", "--once", id], prints: "lease \(id) keepalived with TTL(60)\n")
                let timeToLive = try await succeed(ctl, ["lease", "timetolive", "--keys", id])
                let prefix = "lease \(id) granted with TTL(60s), remaining("
                let suffix = "s), attached keys([leased])\n"
                #expect(timeToLive.output.hasPrefix(prefix) && timeToLive.output.hasSuffix(suffix), "\(timeToLive)")
                try await expect(ctl, ["lease", "list"], prints: "found 1 leases\n\(id)\n")
                try await expect(ctl, ["lease", "revoke", id], prints: "lease \(id) revoked\n")
                try await expect(ctl, ["get", "leased"], prints: "")
                try await expect(ctl, ["lease", "timetolive", id], prints: "lease \(id) already expired\n")
                try await expect(ctl, ["lease", "list"], prints: "found 0 leases\n")
                // keep-alive renews every third of the TTL until the lease is revoked, then says so and exits 0.
                let short = try await succeed(ctl, ["lease", "grant", "3", "-w", "json"])
                let shortID = try jsonObject(short.output)["id"] as? String ?? ""
                let shortPadded = String(repeating: "0", count: max(0, 16 - shortID.count)) + shortID
                let keepAlive = try background(ctl, ["lease", "keep-alive", shortID])
                _ = try await keepAlive.waitForOutput("keep-alive to renew twice") {
                    $0.components(separatedBy: "lease \(shortPadded) keepalived with TTL(3)\n").count >= 3
                }
                try await expect(ctl, ["lease", "revoke", shortID], prints: "lease \(shortPadded) revoked\n")
                let keepAliveExit = try await keepAlive.waitForExit()
                #expect(keepAliveExit == .exited(0), "\(keepAlive.errorOutput)")
                #expect(keepAlive.output.hasSuffix("lease \(shortPadded) expired or revoked.\n"), "\(keepAlive.output)")

                let unknown = try await ctl.run(["lease", "keep-alive", "--once", id])
                #expect(unknown.status == .exited(1), "\(unknown)")
                #expect(unknown.errorOutput == "Error: etcdserver: requested lease not found\n", "\(unknown)")
            }
        }

        // MARK: - Lock and election

        @Test("lock and elect")
        func lockAndElect() async throws {
            try await withCtlCluster { cluster, ctl in
                // With a command: the command runs under the lock, with the key and the fencing token.
                let script = "echo key=$STATEHOUSE_LOCK_KEY token=$STATEHOUSE_FENCING_TOKEN etcd=$ETCD_LOCK_KEY/$ETCD_LOCK_REV; exit 3"
                let locked = try await ctl.run(["lock", "--endpoints=\(cluster.endpoints())", "mylock", "sh", "-c", script])
                #expect(locked.status == .exited(3), "lock exits with the command's status: \(locked)")
                let fields = Dictionary(
                    uniqueKeysWithValues: locked.output.trimmingCharacters(in: .newlines).split(separator: " ").compactMap { field in
                        field.split(separator: "=", maxSplits: 1).count == 2
                            ? (String(field.split(separator: "=")[0]), String(field.split(separator: "=", maxSplits: 1)[1])) : nil
                    })
                let key = fields["key"] ?? ""
                let token = Int64(fields["token"] ?? "") ?? 0
                #expect(key.hasPrefix("mylock/") && UInt64(key.dropFirst(7), radix: 16) != nil, "\(locked)")
                #expect(token > 0, "\(locked)")
                #expect(fields["etcd"] == "\(key)/\(token)", "\(locked)")
                try await expect(ctl, ["get", "--prefix", "mylock/"], prints: "")

                // Without a command: held until SIGINT; a second locker waits, then gets a larger token.
                let first = try background(ctl, ["lock", "mylock"])
                let firstKey = try await first.waitForOutput("the first lock") { $0.hasSuffix("\n") }.trimmingCharacters(in: .newlines)
                #expect(firstKey.hasPrefix("mylock/"), "\(firstKey)")
                let second = try background(ctl, ["lock", "-w", "json", "mylock"])
                try await Task.sleep(for: .seconds(1))
                #expect(second.output == "", "a second lock was acquired while the first is held")
                first.send(SIGINT)
                let firstExit = try await first.waitForExit()
                #expect(firstExit == .exited(0), "\(first.errorOutput)")
                let secondOutput = try await second.waitForOutput("the second lock") { $0.hasSuffix("\n") }
                let secondLock = try jsonObject(secondOutput)
                #expect(secondLock["key"] as? String != firstKey, "\(secondOutput)")
                #expect(jsonInt64(secondLock["revision"]) ?? 0 > token, "\(secondOutput)")
                second.send(SIGTERM)
                let secondExit = try await second.waitForExit()
                #expect(secondExit == .exited(0), "\(second.errorOutput)")
                try await expect(ctl, ["get", "--prefix", "mylock/"], prints: "")

                // Elections: a leader, an observer, a successor once the leader resigns.
                let p1 = try background(ctl, ["elect", "myelection", "p1"])
                let p1Output = try await p1.waitForOutput("p1 to be elected") { $0.hasSuffix("\np1\n") }
                #expect(p1Output.hasPrefix("myelection/"), "\(p1Output)")
                let p2 = try background(ctl, ["elect", "myelection", "p2"])
                let observer = try background(ctl, ["elect", "-l", "myelection"])
                let observed = try await observer.waitForOutput("the observer to print p1") { $0.hasSuffix("\np1\n") }
                #expect(observed == p1Output)
                #expect(p2.output == "", "p2 was elected while p1 leads")
                p1.send(SIGINT)
                let p1Exit = try await p1.waitForExit()
                #expect(p1Exit == .exited(0), "\(p1.errorOutput)")
                let p2Output = try await p2.waitForOutput("p2 to be elected") { $0.hasSuffix("\np2\n") }
                let observedBoth = try await observer.waitForOutput("the observer to print p2") { $0.hasSuffix("\np2\n") }
                #expect(observedBoth == p1Output + p2Output)
                p2.send(SIGINT)
                observer.send(SIGINT)
                let p2Exit = try await p2.waitForExit()
                let observerExit = try await observer.waitForExit()
                #expect(p2Exit == .exited(0), "\(p2.errorOutput)")
                #expect(observerExit == .exited(0), "\(observer.errorOutput)")
                try await expect(ctl, ["get", "--prefix", "myelection/"], prints: "")
            }
        }

        // MARK: - Authentication

        @Test("user, role and auth commands; --user inside and outside a role's prefix; the Swift client with credentials")
        func authentication() async throws {
            try await withCtlCluster(arguments: ["--auth-password-rounds=1000", "--auth-token-ttl=2"]) { cluster, ctl in
                try await expect(ctl, ["user", "add", "root:rootpw"], prints: "User root created\n")
                try await expect(ctl, ["user", "add", "alice", "--new-user-password=alicepw"], prints: "User alice created\n")
                try await expect(ctl, ["role", "add", "app"], prints: "Role app created\n")
                try await expect(
                    ctl, ["role", "grant-permission", "--prefix=true", "app", "readwrite", "app/"], prints: "Role app updated\n")
                try await expect(ctl, ["role", "grant-permission", "app", "read", "config"], prints: "Role app updated\n")
                try await expect(
                    ctl, ["role", "get", "app"],
                    prints: "Role app\nKV Read:\n\t[app/, app0) (prefix app/)\n\tconfig\nKV Write:\n\t[app/, app0) (prefix app/)\n")
                try await expect(ctl, ["user", "grant-role", "alice", "app"], prints: "Role app is granted to user alice\n")
                try await expect(ctl, ["user", "get", "alice"], prints: "User: alice\nRoles: app\n")
                // As etcdctl, enabling grants root the root role it lacks.
                try await expect(ctl, ["auth", "enable"], prints: "Authentication Enabled\n")

                let alice = ["--user=alice:alicepw"]
                try await expect(ctl, ["put", "app/x", "1"] + alice, prints: "OK\n")
                try await expect(ctl, ["get", "app/x", "--user", "alice", "--password", "alicepw"], prints: "app/x\n1\n")
                try await refuse(ctl, ["put", "other", "1"] + alice, with: "etcdserver: permission denied")
                try await refuse(ctl, ["get", "other"] + alice, with: "etcdserver: permission denied")
                try await refuse(ctl, ["get", "app/x"], with: "etcdserver: user name is empty")
                try await refuse(
                    ctl, ["get", "app/x", "--user=alice:wrong"], with: "etcdserver: authentication failed, invalid user ID or password")
                try await refuse(ctl, ["user", "list"] + alice, with: "etcdserver: permission denied")
                let noPassword = try await ctl.run(["get", "app/x", "--user=alice"])
                #expect(noPassword.status == .exited(2), "\(noPassword)")
                #expect(noPassword.errorOutput.contains("no password for user \"alice\""), "\(noPassword)")
                try await expect(ctl, ["user", "list", "--user=root:rootpw"], prints: "alice\nroot\n")
                try await expect(ctl, ["role", "list", "--user=root:rootpw"], prints: "app\nroot\n")

                // The Swift client: every kind of call carries the token.
                var configuration = try StatehouseClientConfiguration(endpoints: cluster.members.map(\.clientURL))
                configuration.credentials = StatehouseCredentials(user: "alice", password: "alicepw")
                try await withStatehouseClient(configuration: configuration) { client in
                    let start = try await client.put("app/y", "2").header.revision
                    #expect(try await client.get("app/y")?.valueString == "2")
                    let events = try await collect(1, from: client.watch(prefix: "app/", options: WatchOptions(startRevision: start)))
                    #expect(events.map(\.kv.keyString) == ["app/y"])
                    let grant = try await client.grantLease(ttl: 10)
                    try await client.put("app/leased", "v", lease: grant.id)
                    #expect(try await client.renewLease(grant.id) > 0)
                    try await client.withSession(ttl: 10) { session in
                        let mutex = DistributedMutex(session: session, name: "app/lock")
                        _ = try await mutex.withLock { _ in try await mutex.guardedPut("app/guarded", "1") }
                    }
                    let denied = await #expect(throws: StatehouseError.self) { try await client.put("other", "1") }
                    #expect(denied?.code == .permissionDenied)
                    // The token expires unused (--auth-token-ttl=2): the servers refuse it as an
                    // invalid auth token, and the client authenticates again by itself.
                    try await Task.sleep(for: .seconds(3))
                    try await client.put("app/z", "3")
                    try await Task.sleep(for: .seconds(3))
                    #expect(try await client.get("app/z")?.valueString == "3")
                }
                configuration.credentials = StatehouseCredentials(user: "alice", password: "wrong")
                try await withStatehouseClient(configuration: configuration) { client in
                    let failed = await #expect(throws: StatehouseError.self) { try await client.get("app/y") }
                    #expect(failed?.code == .authenticationFailed)
                    #expect(failed?.message == "etcdserver: authentication failed, invalid user ID or password")
                }
            }
        }

        @Test(
            "EdDSA JWT tokens: statehousectl and the Swift client authenticate; a token older than a change of users is replaced",
            .enabled(if: TestCertificates.isAvailable, "openssl is not installed"))
        func edDSATokens() async throws {
            let keys = try TestCertificates(
                directory: FileManager.default.temporaryDirectory.appendingPathComponent("statehouse-eddsa-\(getpid())").path)
            defer { try? FileManager.default.removeItem(atPath: keys.directory) }
            try keys.openssl(["genpkey", "-algorithm", "ed25519", "-out", keys.path("jwt.key")])
            try keys.openssl(["pkey", "-in", keys.path("jwt.key"), "-pubout", "-out", keys.path("jwt.pem")])
            let token = "--auth-token=jwt,priv-key=\(keys.path("jwt.key")),pub-key=\(keys.path("jwt.pem")),sign-method=EdDSA,ttl=5m"
            try await withCtlCluster(arguments: ["--auth-password-rounds=1000", token]) { cluster, ctl in
                let root = ["--user=root:rootpw"]
                try await expect(ctl, ["user", "add", "root:rootpw"], prints: "User root created\n")
                try await expect(ctl, ["auth", "enable"], prints: "Authentication Enabled\n")
                try await expect(ctl, ["put", "k", "v"] + root, prints: "OK\n")
                try await expect(ctl, ["get", "k"] + root, prints: "k\nv\n")

                var configuration = try StatehouseClientConfiguration(endpoints: cluster.members.map(\.clientURL))
                configuration.credentials = StatehouseCredentials(user: "root", password: "rootpw")
                try await withStatehouseClient(configuration: configuration) { client in
                    try await client.put("k", "w")
                    // Each change of users moves the auth revision past the client's token's: the
                    // server answers "revision of auth store is old", and the client authenticates
                    // again, for a write in its session and for a read.
                    try await client.addUser("bob", password: "bobpw")
                    try await client.put("k", "x")
                    try await client.addUser("carol", password: "carolpw")
                    #expect(try await client.get("k")?.valueString == "x")
                    #expect(try await client.users() == ["bob", "carol", "root"])
                }
            }
        }

        // MARK: - Cluster and maintenance

        @Test("member, endpoint, snapshot and move-leader")
        func memberEndpointSnapshotAndMoveLeader() async throws {
            try await withCtlCluster { cluster, ctl in
                let leader = try await cluster.waitForLeader()

                let list = try await succeed(ctl, ["member", "list"])
                for member in cluster.members {
                    #expect(
                        list.lines.contains("\(member.hexID), started, \(member.name), \(member.peerURL), \(member.clientURL), false"),
                        "\(list)")
                }
                let table = try await succeed(ctl, ["member", "list", "-w", "table"])
                #expect(table.lines.count == 7, "\(table)")
                #expect(table.lines[1].contains(" ID ") && table.lines[1].contains("PEER ADDRS"), "\(table)")
                let cells = table.lines.map { $0.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) } }
                for member in cluster.members {
                    #expect(cells.contains([member.hexID, "started", member.name, member.peerURL, member.clientURL, "false"]), "\(table)")
                }

                // member add (as an unstarted learner, so the quorum stays), update and remove.
                let learnerPeer = "http://127.0.0.1:\(try freePorts(count: 1)[0])"
                let add = try await succeed(ctl, ["member", "add", "n9", "--peer-urls", learnerPeer, "--learner"])
                let addWords = add.lines.first?.split(separator: " ") ?? []
                let learnerID = addWords.count == 6 ? String(addWords[1]) : ""
                #expect(addWords.count == 6 && addWords[2] == "added" && UInt64(learnerID, radix: 16) != nil, "\(add)")
                #expect(Array(add.lines.dropFirst()).first == "", "\(add)")
                #expect(add.lines.dropFirst(2).first == "STATEHOUSE_NAME=\"n9\"", "\(add)")
                #expect(add.lines.contains("STATEHOUSE_INITIAL_CLUSTER_STATE=\"existing\""), "\(add)")
                #expect(add.output.contains("n9=\(learnerPeer)") && add.output.contains("n1=\(cluster.members[0].peerURL)"), "\(add)")
                let withLearner = try await succeed(ctl, ["member", "list"])
                #expect(withLearner.lines.contains("\(learnerID), unstarted, , \(learnerPeer), , true"), "\(withLearner)")
                let movedPeer = "http://127.0.0.1:\(try freePorts(count: 1)[0])"
                let update = try await succeed(ctl, ["member", "update", learnerID, "--peer-urls", movedPeer])
                #expect(update.output.hasPrefix("Member \(learnerID) updated in cluster "), "\(update)")
                let remove = try await succeed(ctl, ["member", "remove", learnerID])
                #expect(remove.output.hasPrefix("Member \(learnerID) removed from cluster "), "\(remove)")
                let afterRemove = try await succeed(ctl, ["member", "list"])
                #expect(afterRemove.lines.count == 3, "\(afterRemove)")

                let status = try await succeed(ctl, ["endpoint", "status"])
                #expect(status.lines.count == 3, "\(status)")
                for member in cluster.members {
                    let columns = status.lines.first { $0.hasPrefix(member.clientURL + ",") }?.components(separatedBy: ", ") ?? []
                    #expect(columns.count == 10, "\(status)")
                    guard columns.count >= 10 else { continue }
                    #expect(columns[1] == member.hexID, "\(status)")
                    #expect(columns[4] == String(member === leader), "is leader, \(member.name): \(status)")
                }
                let statusTable = try await succeed(ctl, ["endpoint", "status", "--cluster", "-w", "table"])
                #expect(statusTable.lines.count == 7, "\(statusTable)")
                #expect(statusTable.lines[1].contains("RAFT APPLIED INDEX"), "\(statusTable)")
                let statusJSON = try await succeed(ctl, ["endpoint", "status", "-w", "json"])
                let leaders = (try JSONSerialization.jsonObject(with: Data(statusJSON.output.utf8)) as? [[String: Any]] ?? []).map {
                    $0["leader"] as? String
                }
                #expect(leaders == [leader.hexID, leader.hexID, leader.hexID], "\(statusJSON)")

                let health = try await succeed(ctl, ["endpoint", "health"])
                for member in cluster.members {
                    #expect(
                        health.lines.contains { $0.hasPrefix("\(member.clientURL) is healthy: successfully committed proposal: took = ") },
                        "\(health)")
                }
                let unhealthy = try await ctl.run(["endpoint", "health", "--endpoints=127.0.0.1:1", "--command-timeout=1s"])
                #expect(unhealthy.status == .exited(1), "\(unhealthy)")
                #expect(unhealthy.output == "127.0.0.1:1 is unhealthy: failed to commit proposal\n", "\(unhealthy)")
                #expect(unhealthy.errorOutput == "Error: unhealthy cluster\n", "\(unhealthy)")

                try await expect(ctl, ["alarm", "list"], prints: "")

                let path = cluster.root + "/ctl-snapshot.db"
                let snapshot = try await succeed(ctl, ["snapshot", "save", path])
                #expect(snapshot.output == "Snapshot saved at \(path)\n", "\(snapshot)")
                #expect(snapshot.errorOutput == "", "no progress bar when standard error is not a terminal")
                let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
                #expect(size > 0)
                #expect(!FileManager.default.fileExists(atPath: path + ".part"))

                let target = cluster.others(than: leader)[0]
                try await expect(
                    ctl, ["move-leader", target.hexID], prints: "Leadership transferred from \(leader.hexID) to \(target.hexID)\n")
                let newLeader = try await cluster.waitForLeader()
                #expect(newLeader === target, "move-leader to \(target.name) made \(newLeader.name) the leader")
            }
        }

        // MARK: - Usage

        @Test("Usage errors exit 2 with one line")
        func usageErrorsExitTwoWithOneLine() async throws {
            let executable = try StatehousectlRunner.builtExecutable()
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("statehousectl-usage-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let cases: [([String], String)] = [
                (["get", "--no-such-flag", "k"], "--no-such-flag"),
                (["get"], "<key>"),
                (["get", "k", "--prefix", "--from-key"], "--prefix and --from-key"),
                (["put", "k", "v", "--lease", "not-hex"], "--lease"),
                (["get", "k", "-w", "yaml"], "yaml"),
                (["get", "k", "--endpoints", "ftp://a:1"], "bad endpoint"),
                (["elect", "e"], "PROPOSAL"),
                (["no-such-command"], "no-such-command"),
            ]
            for (index, (arguments, mention)) in cases.enumerated() {
                let process = try ChildProcess(
                    executable: executable.path, arguments: arguments, outputPath: "\(directory)/\(index).out",
                    errorPath: "\(directory)/\(index).err")
                let status = try await process.waitForExit()
                let errorLines = process.errorOutput.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
                #expect(status == .exited(2), "\(arguments): \(process.errorOutput)")
                #expect(errorLines.count == 1, "\(arguments): exactly one line on stderr: \(process.errorOutput.debugDescription)")
                #expect(
                    errorLines.first?.hasPrefix("statehousectl: ") ?? false && process.errorOutput.contains(mention),
                    "\(arguments): \(process.errorOutput.debugDescription)")
                #expect(process.output == "", "\(arguments)")
            }

            let help = try ChildProcess(executable: executable.path, arguments: ["--help"], outputPath: "\(directory)/help.out")
            let helpStatus = try await help.waitForExit()
            #expect(helpStatus == .exited(0))
            for word in ["STATEHOUSE_ENDPOINTS", "json", "table", "lock", "snapshot", "move-leader", "EXIT STATUS"] {
                #expect(help.output.contains(word), "--help lacks \(word): \(help.output)")
            }
            let lockHelp = try ChildProcess(
                executable: executable.path, arguments: ["lock", "--help"], outputPath: "\(directory)/lock.out")
            _ = try await lockHelp.waitForExit()
            #expect(lockHelp.output.contains("STATEHOUSE_FENCING_TOKEN"), "\(lockHelp.output)")
        }
    }
}
