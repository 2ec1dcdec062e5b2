import Foundation
import Glibc
import Logging
import StatehouseClient
import TestSupport
import Testing

extension LocalClusterTests {
    /// TLS on the client and peer ports, with certificates made by the test with openssl.
    @Suite("TLS")
    struct TLSTests {
        /// A CA with member, client and intruder certificates, and an unrelated CA with its own
        /// client certificate.
        struct Files {
            let certificates: TestCertificates
            let ca: TestCertificates.Pair
            let member: TestCertificates.Pair
            let client: TestCertificates.Pair
            /// Signed by `ca`, but with a common name peers are not allowed to have.
            let intruder: TestCertificates.Pair
            let otherCA: TestCertificates.Pair
            let otherClient: TestCertificates.Pair

            init() throws {
                guard TestCertificates.isAvailable else { try skipTest("openssl is not installed") }
                let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                    "statehouse-tls-\(UUID().uuidString.prefix(8))")
                certificates = try TestCertificates(directory: directory.path)
                ca = try certificates.makeAuthority("ca")
                member = try certificates.makeCertificate("member", commonName: "member", signedBy: ca)
                client = try certificates.makeCertificate("client", commonName: "alice", signedBy: ca)
                intruder = try certificates.makeCertificate("intruder", commonName: "intruder", signedBy: ca)
                otherCA = try certificates.makeAuthority("other-ca")
                otherClient = try certificates.makeCertificate("other-client", commonName: "alice", signedBy: otherCA)
            }

            /// etcdctl's and statehousectl's flags for `pair` trusting `ca`.
            func clientFlags(_ pair: TestCertificates.Pair?, trusting authority: TestCertificates.Pair? = nil) -> [String] {
                ["--cacert=\((authority ?? ca).certificate)"] + (pair.map { ["--cert=\($0.certificate)", "--key=\($0.key)"] } ?? [])
            }
        }

        @Test("a three-member cluster with mutual TLS on both ports serves etcdctl, statehousectl and the Swift client")
        func mutualTLSCluster() async throws {
            let files = try Files()
            defer { try? FileManager.default.removeItem(atPath: files.certificates.directory) }
            let arguments = [
                "--cert-file", files.member.certificate, "--key-file", files.member.key, "--trusted-ca-file", files.ca.certificate,
                "--client-cert-auth", "--peer-cert-file", files.member.certificate, "--peer-key-file", files.member.key,
                "--peer-trusted-ca-file", files.ca.certificate, "--peer-client-cert-auth", "--peer-cert-allowed-cn", "member",
                "--cipher-suites", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            ]
            let curlFlags = ["--cacert", files.ca.certificate, "--cert", files.client.certificate, "--key", files.client.key]
            try await withCluster(arguments: arguments, scheme: "https", curlTLSArguments: curlFlags) { cluster in
                var etcdctl = Etcdctl(cluster: cluster)
                etcdctl.globalArguments = files.clientFlags(files.client)
                let put = try await etcdctl.run(["put", "k", "v1"])
                #expect(put.status == .exited(0) && put.output == "OK\n", "\(put)")
                let watch = try etcdctl.start(["watch", "w"])
                _ = cluster.adopt(watch)
                let get = try await etcdctl.run(["get", "k"])
                #expect(get.lines == ["k", "v1"], "\(get)")
                let txn = try await etcdctl.run(["txn"], input: "value(\"k\") = \"v1\"\n\nput k v2\n\nput k nope\n\n")
                #expect(txn.lines.first == "SUCCESS", "\(txn)")
                let grant = try await etcdctl.run(["lease", "grant", "30"])
                #expect(grant.status == .exited(0), "\(grant)")
                let leaseID = grant.output.split(separator: " ").dropFirst().first.map(String.init) ?? ""
                let keepAlive = try await etcdctl.run(["lease", "keep-alive", "--once", leaseID])
                #expect(keepAlive.output.contains("keepalived with TTL"), "\(keepAlive)")
                let lock = try await etcdctl.run(["lock", "l", "echo", "locked"])
                #expect(lock.lines == ["locked"], "\(lock)")
                let members = try await etcdctl.run(["member", "list"])
                #expect(members.lines.count == 3 && members.lines.allSatisfy { $0.contains("https://127.0.0.1:") }, "\(members)")
                _ = try await etcdctl.run(["put", "w", "seen"])
                try await eventually("the watch over TLS to see the put", timeout: .seconds(10)) {
                    watch.output.contains("seen") ? () : nil
                }

                // Without a client certificate, or with one from another CA: refused.
                for flags in [files.clientFlags(nil), files.clientFlags(files.otherClient)] {
                    var refused = Etcdctl(cluster: cluster)
                    refused.globalArguments = flags
                    let result = try await refused.run(["--command-timeout=3s", "get", "k"])
                    #expect(result.status != .exited(0), "\(result)")
                }
                // Plain HTTP to the TLS port: no answer, and the member is unharmed.
                let plain = try await cluster.curl("http://127.0.0.1:\(cluster.members[0].clientPort)/health")
                #expect(plain == nil || plain?.0 != 200)
                let health = try await cluster.curl(cluster.members[0].clientURL + "/health")
                #expect(health?.0 == 200)

                // statehousectl and the Swift client take the same files (the endpoints are IP
                // addresses: the certificate is checked against the address, with no SNI).
                let ctl = StatehousectlRunner(executable: try StatehousectlRunner.builtExecutable(), cluster: cluster)
                let ctlGet = try await ctl.run(["get", "k"] + files.clientFlags(files.client))
                #expect(ctlGet.lines == ["k", "v2"], "\(ctlGet)")
                let ctlRefused = try await ctl.run(["get", "k", "--command-timeout=2s"] + files.clientFlags(nil))
                #expect(ctlRefused.status != .exited(0), "\(ctlRefused)")
                var configuration = try StatehouseClientConfiguration(endpoints: [cluster.endpoints()])
                configuration.tls = StatehouseClientTLS(
                    trustedCAFile: files.ca.certificate, certificateFile: files.client.certificate, keyFile: files.client.key)
                let value = try await withStatehouseClient(configuration: configuration) { client in
                    try await client.put("swift", "tls")
                    return try await client.get("swift")?.valueString
                }
                #expect(value == "tls")

                // Peers with a certificate of another CA, or of the right CA with a common name
                // not allowed, are refused before any frame is read; the cluster keeps working.
                let peerPort = cluster.members[0].peerPort
                for (index, intruder) in [files.otherClient, files.intruder].enumerated() {
                    let base = cluster.root + "/s_client-\(index)"
                    let process = try ChildProcess(
                        executable: "/usr/bin/openssl",
                        arguments: [
                            "s_client", "-connect", "127.0.0.1:\(peerPort)", "-CAfile", files.ca.certificate, "-cert",
                            intruder.certificate, "-key", intruder.key, "-quiet", "-no_ign_eof",
                        ], input: "not a hello\n", outputPath: base + ".out", errorPath: base + ".err")
                    _ = try? await process.waitForExit(timeout: .seconds(10))
                    if process.isRunning { await process.killAndWait() }
                }
                try await eventually("n1 to log the refused common name", timeout: .seconds(5)) {
                    tail(of: cluster.members[0].logPath, lines: 200).contains("refused a peer connection") ? () : nil
                }
                let after = try await etcdctl.run(["put", "k", "v3"])
                #expect(after.status == .exited(0), "\(after)")
            }
        }

        @Test("TLS on both ports with auth: etcdctl --user over mutual TLS, and a client certificate's CN as the user")
        func mutualTLSWithAuth() async throws {
            let files = try Files()
            defer { try? FileManager.default.removeItem(atPath: files.certificates.directory) }
            let rootClient = try files.certificates.makeCertificate("root-client", commonName: "root", signedBy: files.ca)
            let arguments = [
                "--cert-file", files.member.certificate, "--key-file", files.member.key, "--trusted-ca-file", files.ca.certificate,
                "--client-cert-auth", "--peer-cert-file", files.member.certificate, "--peer-key-file", files.member.key,
                "--peer-trusted-ca-file", files.ca.certificate, "--peer-client-cert-auth", "--auth-password-rounds=1000",
            ]
            let curlFlags = ["--cacert", files.ca.certificate, "--cert", files.client.certificate, "--key", files.client.key]
            try await withCluster(arguments: arguments, scheme: "https", curlTLSArguments: curlFlags) { cluster in
                // The client certificate names "alice"; a token (--user) takes precedence over it.
                var etcdctl = Etcdctl(cluster: cluster)
                etcdctl.globalArguments = files.clientFlags(files.client)
                for setup in [
                    ["user", "add", "root:rootpw"], ["role", "add", "app"],
                    ["role", "grant-permission", "--prefix=true", "app", "readwrite", "app/"],
                    ["user", "add", "bob:bobpw"], ["user", "grant-role", "bob", "app"], ["user", "add", "alice:alicepw"],
                    ["auth", "enable"],
                ] {
                    let result = try await etcdctl.run(setup)
                    #expect(result.status == .exited(0), "\(setup): \(result)")
                }
                let bob = ["--user=bob:bobpw"]
                let put = try await etcdctl.run(bob + ["put", "app/k", "v"])
                #expect(put.output == "OK\n", "\(put)")
                let get = try await etcdctl.run(bob + ["get", "app/k"])
                #expect(get.lines == ["app/k", "v"], "\(get)")
                let txn = try await etcdctl.run(bob + ["txn"], input: "value(\"app/k\") = \"v\"\n\nput app/k v2\n\n\n")
                #expect(txn.lines.first == "SUCCESS", "\(txn)")
                let grant = try await etcdctl.run(bob + ["lease", "grant", "30"])
                #expect(grant.status == .exited(0), "\(grant)")
                let lock = try await etcdctl.run(bob + ["lock", "app/l", "echo", "locked"])
                #expect(lock.lines == ["locked"], "\(lock)")
                let members = try await etcdctl.run(bob + ["member", "list"])
                #expect(members.lines.count == 3, "\(members)")
                let watch = cluster.adopt(try etcdctl.start(bob + ["watch", "app/w"]))
                _ = try await eventually("the watch over TLS with auth to see a put", timeout: .seconds(20), interval: .milliseconds(300)) {
                    _ = try await etcdctl.run(bob + ["put", "app/w", "seen"])
                    return watch.output.contains("seen") ? true : nil
                }
                watch.send(SIGINT)
                let outside = try await etcdctl.run(bob + ["put", "other", "1"])
                #expect(outside.errorOutput.contains("etcdserver: permission denied"), "\(outside)")

                // Without a token the certificate's CN is the user: alice has no role, root may
                // do anything.
                let asAlice = try await etcdctl.run(["get", "app/k"])
                #expect(asAlice.errorOutput.contains("etcdserver: permission denied"), "\(asAlice)")
                var rootByCertificate = Etcdctl(cluster: cluster)
                rootByCertificate.globalArguments = files.clientFlags(rootClient)
                let asRoot = try await rootByCertificate.run(["get", "app/k", "--print-value-only"])
                #expect(asRoot.lines == ["v2"], "\(asRoot)")
                let users = try await rootByCertificate.run(["user", "list"])
                #expect(users.lines == ["alice", "bob", "root"], "\(users)")

                // A certificate from another CA is refused before auth is reached.
                var stranger = Etcdctl(cluster: cluster)
                stranger.globalArguments = files.clientFlags(files.otherClient)
                let refused = try await stranger.run(["--command-timeout=3s", "--user=bob:bobpw", "get", "app/k"])
                #expect(refused.status != .exited(0), "\(refused)")
            }
        }

        /// The rotation runbook of docs/security.md ("Rotating certificates"), to a new CA through
        /// a bundle, with client certificates checked: no restart at any step.
        @Test("a rotated certificate and CA are used for new connections without a restart")
        func rotation() async throws {
            let files = try Files()
            defer { try? FileManager.default.removeItem(atPath: files.certificates.directory) }
            let live = TestCertificates.Pair(certificate: files.certificates.path("live.crt"), key: files.certificates.path("live.key"))
            let liveCA = files.certificates.path("live-ca.crt")
            try FileManager.default.copyItem(atPath: files.member.certificate, toPath: live.certificate)
            try FileManager.default.copyItem(atPath: files.member.key, toPath: live.key)
            try FileManager.default.copyItem(atPath: files.ca.certificate, toPath: liveCA)
            /// Replaces `target` with `contents` through a rename, as the runbook does.
            func replace(_ target: String, with contents: String) throws {
                try contents.write(toFile: target + ".new", atomically: false, encoding: .utf8)
                #expect(rename(target + ".new", target) == 0)
            }
            func read(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }
            let arguments = [
                "--cert-file", live.certificate, "--key-file", live.key, "--client-cert-auth", "--trusted-ca-file", liveCA,
                "--peer-cert-file", files.member.certificate, "--peer-key-file", files.member.key,
            ]
            try await withCluster(
                size: 1, arguments: arguments, scheme: "https",
                curlTLSArguments: ["--cacert", files.ca.certificate, "--cert", files.client.certificate, "--key", files.client.key]
            ) { cluster in
                // A client of the old CA and one of the new, each trusting one CA or the bundle.
                func etcdctl(_ client: TestCertificates.Pair, trusting authority: String) -> Etcdctl {
                    var etcdctl = Etcdctl(cluster: cluster)
                    etcdctl.globalArguments = ["--cacert=\(authority)", "--cert=\(client.certificate)", "--key=\(client.key)"]
                    return etcdctl
                }
                let bundle = files.certificates.path("bundle.crt")
                try replace(bundle, with: try read(files.ca.certificate) + read(files.otherCA.certificate))
                let oldClient = etcdctl(files.client, trusting: bundle)
                let newClient = etcdctl(files.otherClient, trusting: bundle)
                #expect(try await oldClient.run(["put", "k", "v"]).status == .exited(0))
                let early = try await newClient.run(["--dial-timeout=1s", "--command-timeout=1s", "get", "k"])
                #expect(early.status != .exited(0), "a client of the new CA is accepted before the CA file lists it: \(early)")

                // 1. The new certificate, from the new CA.
                let next = try files.certificates.makeCertificate("next", commonName: "member", signedBy: files.otherCA)
                // 2. The CA file becomes the bundle of the old and the new CA: both clients verify.
                try replace(liveCA, with: try read(bundle))
                try await eventually("a client of the new CA to be accepted", timeout: .seconds(10)) {
                    try await newClient.run(["get", "k"]).lines == ["k", "v"] ? () : nil
                }
                #expect(try await oldClient.run(["get", "k"]).lines == ["k", "v"])
                // 3. The member's key, then its certificate, each through a rename.
                for (source, target) in [(next.key, live.key), (next.certificate, live.certificate)] {
                    try replace(target, with: try read(source))
                }
                // 4. New connections get the new certificate: only the new CA verifies it.
                let newOnly = etcdctl(files.otherClient, trusting: files.otherCA.certificate)
                try await eventually("new connections to get the new certificate", timeout: .seconds(10)) {
                    try await newOnly.run(["get", "k"]).lines == ["k", "v"] ? () : nil
                }
                let stale = try await etcdctl(files.client, trusting: files.ca.certificate).run([
                    "--dial-timeout=1s", "--command-timeout=1s", "get", "k",
                ])
                #expect(stale.status != .exited(0), "the old CA still verifies the server: \(stale)")
                // 5. The old CA leaves the CA file: its clients are refused, the new CA's are not.
                try replace(liveCA, with: try read(files.otherCA.certificate))
                try await eventually("a client of the old CA to be refused", timeout: .seconds(10)) {
                    try await oldClient.run(["--dial-timeout=1s", "--command-timeout=1s", "get", "k"]).status != .exited(0) ? () : nil
                }
                #expect(try await newClient.run(["get", "k"]).lines == ["k", "v"])
                #expect(cluster.members[0].isRunning)
                #expect(
                    ChildProcess.read(cluster.members[0].logPath).contains("TLS files changed: new connections use the new certificates"))
            }
        }
    }
}
