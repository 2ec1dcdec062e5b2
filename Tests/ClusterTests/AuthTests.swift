import EtcdWire
import Foundation
import Glibc
import Testing

extension LocalClusterTests {
    /// etcd's Auth service with etcdctl 3.4 against a three-member cluster: users, roles and
    /// key-range permissions, enforced on every call with etcd's errors.
    @Suite(
        "Auth with etcdctl",
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: Etcdctl.path),
            "etcdctl is not installed at \(Etcdctl.path) (Debian's etcd-client package); skipping the auth tests"))
    struct AuthClusterTests {
        /// Runs etcdctl and checks it exits 0 and prints exactly `expected` (when given).
        @discardableResult
        private func expect(
            _ etcdctl: Etcdctl, _ arguments: [String], prints expected: String? = nil, endpoints: [LocalMember]? = nil,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws -> EtcdctlResult {
            let result = try await etcdctl.run(arguments, endpoints: endpoints)
            #expect(result.status == .exited(0), "\(result)", sourceLocation: sourceLocation)
            if let expected { #expect(result.output == expected, "\(result)", sourceLocation: sourceLocation) }
            return result
        }

        /// Runs etcdctl and checks it fails with `message` on standard error.
        private func refuse(
            _ etcdctl: Etcdctl, _ arguments: [String], with message: String, sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let result = try await etcdctl.run(arguments)
            #expect(result.status != .exited(0), "\(result)", sourceLocation: sourceLocation)
            #expect(result.errorOutput.contains(message), "\(result)", sourceLocation: sourceLocation)
        }

        @Test("users, roles and permissions; etcdctl --user works and is refused without credentials")
        func etcdctlWithAuth() async throws {
            try await withCluster(arguments: ["--auth-password-rounds=1000", "--auth-token-ttl=60"]) { cluster in
                let etcdctl = Etcdctl(cluster: cluster)
                let root = ["--user=root:rootpw"]
                let alice = ["--user=alice:alicepw"]
                try await expect(etcdctl, ["user", "add", "root:rootpw"], prints: "User root created\n")
                try await expect(etcdctl, ["role", "add", "app"], prints: "Role app created\n")
                try await expect(
                    etcdctl, ["role", "grant-permission", "--prefix=true", "app", "readwrite", "app/"],
                    prints: "Role app updated\n")
                try await expect(etcdctl, ["user", "add", "alice:alicepw"], prints: "User alice created\n")
                try await expect(etcdctl, ["user", "grant-role", "alice", "app"], prints: "Role app is granted to user alice\n")
                // etcdctl answers "root user does not have root role" by adding the role and granting it.
                try await expect(etcdctl, ["auth", "enable"], prints: "Authentication Enabled\n")

                // Without credentials, and with a wrong password.
                try await refuse(etcdctl, ["put", "app/a", "1"], with: "etcdserver: user name is empty")
                try await refuse(etcdctl, ["get", "app/a"], with: "etcdserver: user name is empty")
                try await refuse(
                    etcdctl, ["--user=alice:wrong", "get", "app/a"],
                    with: "etcdserver: authentication failed, invalid user ID or password")
                try await refuse(etcdctl, ["member", "add", "x", "--peer-urls=http://127.0.0.1:1"], with: "etcdserver: user name is empty")

                // Alice inside and outside her prefix, on every member.
                for member in cluster.members {
                    try await expect(etcdctl, alice + ["put", "app/\(member.name)", "v"], prints: "OK\n", endpoints: [member])
                }
                try await expect(etcdctl, alice + ["get", "app/a", "--prefix"])
                try await refuse(etcdctl, alice + ["put", "other", "1"], with: "etcdserver: permission denied")
                try await refuse(etcdctl, alice + ["get", "other"], with: "etcdserver: permission denied")
                try await refuse(etcdctl, alice + ["get", "", "--from-key"], with: "etcdserver: permission denied")
                try await refuse(etcdctl, alice + ["user", "list"], with: "etcdserver: permission denied")
                try await refuse(
                    etcdctl, alice + ["member", "add", "x", "--peer-urls=http://127.0.0.1:1"], with: "etcdserver: permission denied")
                try await expect(etcdctl, alice + ["member", "list"])

                // Transactions: every branch must be permitted.
                let txnOK = try await etcdctl.run(
                    alice + ["txn"], input: "value(\"app/x\") = \"1\"\n\nput app/x 1\n\nput app/y 2\n\n")
                #expect(txnOK.status == .exited(0), "\(txnOK)")
                let txnDenied = try await etcdctl.run(
                    alice + ["txn"], input: "value(\"app/x\") = \"1\"\n\nput app/x 1\n\nput other 2\n\n")
                #expect(txnDenied.errorOutput.contains("etcdserver: permission denied"), "\(txnDenied)")
                // A transaction that only reads is served as a read, with the same checks.
                let readOK = try await etcdctl.run(alice + ["txn"], input: "value(\"app/x\") = \"1\"\n\nget app/x\n\nget app/y\n\n")
                #expect(readOK.status == .exited(0), "\(readOK)")
                let readDenied = try await etcdctl.run(alice + ["txn"], input: "value(\"app/x\") = \"1\"\n\nget app/x\n\nget other\n\n")
                #expect(readDenied.errorOutput.contains("etcdserver: permission denied"), "\(readDenied)")

                // Leases and lease-attached writes.
                let grant = try await expect(etcdctl, alice + ["lease", "grant", "60"])
                let leaseID = String(grant.output.split(separator: " ")[1])
                try await expect(etcdctl, alice + ["put", "--lease=\(leaseID)", "app/leased", "v"], prints: "OK\n")
                try await refuse(etcdctl, ["lease", "grant", "60"], with: "etcdserver: user name is empty")

                // Watch: refused outside the prefix, delivered inside it.
                let refused = try etcdctl.start(alice + ["watch", "other"])
                cluster.adopt(refused)
                _ = try await refused.waitForExit(timeout: .seconds(15))
                #expect(refused.errorOutput.contains("permission denied") || refused.output.contains("permission denied"))
                let watch = cluster.adopt(try etcdctl.start(alice + ["watch", "app/w"]))
                _ = try await eventually("the watch to see a put", timeout: .seconds(20), interval: .milliseconds(300)) {
                    try await expect(etcdctl, alice + ["put", "app/w", "seen"])
                    return watch.output.contains("seen") ? true : nil
                }
                watch.send(SIGINT)

                // Lock: the lock key lives under the lock name.
                let lock = cluster.adopt(try etcdctl.start(alice + ["lock", "app/lock"]))
                _ = try await lock.waitForOutput("alice's lock") { $0.contains("app/lock/") }
                lock.send(SIGINT)
                let lockDenied = try await etcdctl.run(alice + ["lock", "other-lock", "echo", "held"])
                #expect(lockDenied.status != .exited(0), "\(lockDenied)")

                // Root may do anything; disabling auth opens the cluster again.
                try await expect(etcdctl, root + ["get", "other"])
                try await expect(etcdctl, root + ["user", "list"], prints: "alice\nroot\n")
                try await expect(etcdctl, root + ["role", "get", "app"])
                try await refuse(etcdctl, root + ["user", "delete", "root"], with: "etcdserver: invalid auth management")
                try await expect(etcdctl, root + ["auth", "disable"], prints: "Authentication Disabled\n")
                try await expect(etcdctl, ["put", "other", "1"], prints: "OK\n")
            }
        }

        /// Members learn a simple token when they apply its `Authenticate` entry. A client that
        /// authenticated on the leader may open a watch on a follower that has not applied it
        /// yet: the follower catches up before it judges the token, and does not refuse it.
        @Test("a follower that has not applied a new token yet accepts it for a watch and a read")
        func tokenOnLaggingFollower() async throws {
            try await withCluster(arguments: ["--auth-password-rounds=1000"]) { cluster in
                let etcdctl = Etcdctl(cluster: cluster)
                try await expect(etcdctl, ["user", "add", "root:rootpw"])
                try await expect(etcdctl, ["auth", "enable"], prints: "Authentication Enabled\n")
                let leader = try await cluster.waitForLeader()
                let follower = try #require(cluster.others(than: leader).first)
                let leaderClient = try await cluster.client(leader)
                let followerClient = try await EtcdClient.connect(port: follower.clientPort)
                defer { Task { await followerClient.close() } }

                // The follower sleeps while the token is made, so it cannot have applied it.
                let process = try #require(follower.process)
                process.send(SIGSTOP)
                var resumed = false
                defer { if !resumed { process.send(SIGCONT) } }
                var authenticate = Etcdserverpb_AuthenticateRequest()
                authenticate.name = "root"
                authenticate.password = "rootpw"
                let token = try await leaderClient.connection.unary(
                    "/etcdserverpb.Auth/Authenticate", authenticate, as: Etcdserverpb_AuthenticateResponse.self
                ).token
                let metadata = [("token", token)]

                var create = Etcdserverpb_WatchCreateRequest()
                create.key = Data("w".utf8)
                async let events: [Mvccpb_Event] = followerClient.watch(create, metadata: metadata) { created, stream in
                    #expect(!created.canceled, "the follower refused the token: \(created.cancelReason)")
                    return try await stream.events(count: 1)
                }
                var range = Etcdserverpb_RangeRequest()
                range.key = Data("w".utf8)
                async let read = followerClient.connection.unary(
                    "/etcdserverpb.KV/Range", range, as: Etcdserverpb_RangeResponse.self, metadata: metadata)
                // The watch and the read reach the follower's socket before it wakes.
                try await Task.sleep(for: .milliseconds(300))
                process.send(SIGCONT)
                resumed = true
                _ = try await read

                var put = Etcdserverpb_PutRequest()
                put.key = Data("w".utf8)
                put.value = Data("seen".utf8)
                _ = try await eventually("the put to reach the watch", timeout: .seconds(10)) {
                    let _: Etcdserverpb_PutResponse = try await leaderClient.connection.unary(
                        "/etcdserverpb.KV/Put", put, metadata: metadata)
                    return true
                }
                let seen = try await events
                #expect(seen.map { String(decoding: $0.kv.value, as: UTF8.self) } == ["seen"])
            }
        }

        @Test("auth state survives a restart of every member")
        func survivesRestart() async throws {
            try await withCluster(arguments: ["--auth-password-rounds=1000"]) { cluster in
                let etcdctl = Etcdctl(cluster: cluster)
                try await refuse(etcdctl, ["auth", "enable"], with: "etcdserver: root user does not exist")
                try await expect(etcdctl, ["user", "add", "root:rootpw"])
                try await expect(etcdctl, ["user", "grant-role", "root", "root"])
                try await expect(etcdctl, ["auth", "enable"], prints: "Authentication Enabled\n")
                for member in cluster.members {
                    try await cluster.restart(member)
                }
                try await refuse(etcdctl, ["put", "k", "v"], with: "etcdserver: user name is empty")
                _ = try await eventually("root to write after the restart", timeout: .seconds(20), interval: .milliseconds(300)) {
                    let result = try await etcdctl.run(["--user=root:rootpw", "put", "k", "v"])
                    return result.status == .exited(0) ? true : nil
                }
            }
        }

        @Test("JWT tokens: a rotated signing key is picked up without a restart, old tokens verify while their key is listed")
        func jwtRotation() async throws {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("statehouse-jwt-\(getpid())").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            func openssl(_ arguments: [String]) throws {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
                process.arguments = arguments
                process.standardOutput = FileHandle.nullDevice
                process.standardError = FileHandle.nullDevice
                try process.run()
                process.waitUntilExit()
                #expect(process.terminationStatus == 0, "openssl \(arguments)")
            }
            for name in ["a", "b"] {
                try openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "\(directory)/\(name).key"])
                try openssl(["ec", "-in", "\(directory)/\(name).key", "-pubout", "-out", "\(directory)/\(name).pem"])
            }
            func copy(_ from: String, _ to: String) throws {
                let data = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(from)"))
                try data.write(to: URL(fileURLWithPath: "\(directory)/\(to)"), options: .atomic)
            }
            try copy("a.key", "signing.key")
            try copy("a.pem", "signing.pem")
            try copy("a.pem", "previous.pem")
            let option =
                "--auth-token=jwt,priv-key=\(directory)/signing.key,pub-key=\(directory)/signing.pem,sign-method=ES256,ttl=5m,"
                + "verify-key=\(directory)/previous.pem"
            try await withCluster(arguments: ["--auth-password-rounds=1000", option]) { cluster in
                let etcdctl = Etcdctl(cluster: cluster)
                try await expect(etcdctl, ["user", "add", "root:rootpw"])
                try await expect(etcdctl, ["auth", "enable"], prints: "Authentication Enabled\n")
                let gateway = GatewayClient(cluster: cluster)
                let member = cluster.members[0]
                func token() async throws -> String {
                    let answer = try await gateway.post(member, "/v3/auth/authenticate", #"{"name":"root","password":"rootpw"}"#)
                    let object = try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]
                    return try #require(object?["token"] as? String, "\(answer)")
                }
                func put(_ token: String, on member: LocalMember) async throws -> GatewayClient.Answer {
                    try await gateway.run([
                        "-sS", "-X", "POST", "-w", "\n%{http_code}", "-H", "Authorization: \(token)", "-d",
                        #"{"key":"aw==","value":"dg=="}"#, member.clientURL + "/v3/kv/put",
                    ])
                }
                let old = try await token()
                for member in cluster.members { #expect(try await put(old, on: member).status == 200) }
                #expect(try await put("forged.token.value", on: member).body.contains("etcdserver: invalid auth token"))

                // Rotate: the new key signs; the old public key still verifies, then is dropped.
                try copy("b.key", "signing.key")
                try copy("b.pem", "signing.pem")
                try await Task.sleep(for: .seconds(1.5))
                let new = try await token()
                #expect(new != old)
                for member in cluster.members {
                    #expect(try await put(new, on: member).status == 200)
                    #expect(try await put(old, on: member).status == 200)
                }
                try copy("b.pem", "previous.pem")
                try await Task.sleep(for: .seconds(1.5))
                for member in cluster.members {
                    #expect(try await put(new, on: member).status == 200)
                    let refused = try await put(old, on: member)
                    #expect(refused.status == 401 && refused.body.contains("etcdserver: invalid auth token"), "\(refused)")
                }
            }
        }
    }
}
