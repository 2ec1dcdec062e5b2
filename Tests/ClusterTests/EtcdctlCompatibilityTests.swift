import Crypto
import EtcdWire
import Foundation
import Glibc
import Testing

extension LocalClusterTests {
    /// etcdctl 3.4 against a three-member cluster: every command's exit status and what it
    /// prints, as etcdctl prints it for etcd.
    @Suite(
        "etcdctl compatibility",
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: Etcdctl.path),
            "etcdctl is not installed at \(Etcdctl.path) (Debian's etcd-client package); skipping the etcdctl compatibility tests"))
    struct EtcdctlCompatibilityTests {
        /// Runs `body` with a three-member cluster (see ``withCluster(size:snapshotCount:arguments:_:)``) and
        /// an etcdctl runner for it.
        private func withEtcdctlCluster(_ body: (LocalCluster, Etcdctl) async throws -> Void) async throws {
            try await withCluster { cluster in try await body(cluster, Etcdctl(cluster: cluster)) }
        }

        /// Runs etcdctl and checks it exits 0 and prints exactly `expected` on stdout.
        @discardableResult
        private func expect(
            _ etcdctl: Etcdctl, _ arguments: [String], prints expected: String, endpoints: [LocalMember]? = nil, input: String? = nil,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws -> EtcdctlResult {
            let result = try await etcdctl.run(arguments, endpoints: endpoints, input: input)
            #expect(result.status == .exited(0), "\(result)", sourceLocation: sourceLocation)
            #expect(result.output == expected, "\(result)", sourceLocation: sourceLocation)
            return result
        }

        /// Runs etcdctl and checks it exits 0; returns what it printed.
        private func succeed(
            _ etcdctl: Etcdctl, _ arguments: [String], endpoints: [LocalMember]? = nil, input: String? = nil,
            timeout: Duration = .seconds(30),
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws -> EtcdctlResult {
            let result = try await etcdctl.run(arguments, endpoints: endpoints, input: input, timeout: timeout)
            #expect(result.status == .exited(0), "\(result)", sourceLocation: sourceLocation)
            return result
        }

        /// Starts etcdctl in the background; the cluster kills it when the test ends if the test
        /// does not.
        private func background(_ etcdctl: Etcdctl, _ arguments: [String]) throws -> ChildProcess {
            etcdctl.cluster.adopt(try etcdctl.start(arguments))
        }

        // MARK: - Key-value commands

        @Test("put, get, del and txn")
        func putGetDeleteAndTxn() async throws {
            try await withEtcdctlCluster { _, etcdctl in
                try await expect(etcdctl, ["put", "foo", "bar"], prints: "OK\n")
                try await expect(etcdctl, ["get", "foo"], prints: "foo\nbar\n")
                try await expect(etcdctl, ["put", "foo1", "a"], prints: "OK\n")
                try await expect(etcdctl, ["put", "foo2", "b"], prints: "OK\n")
                try await expect(etcdctl, ["get", "--prefix", "foo"], prints: "foo\nbar\nfoo1\na\nfoo2\nb\n")
                try await expect(etcdctl, ["get", "--prefix", "--keys-only", "foo"], prints: "foo\n\nfoo1\n\nfoo2\n\n")
                try await expect(etcdctl, ["get", "--prefix", "--limit", "1", "foo"], prints: "foo\nbar\n")
                try await expect(etcdctl, ["get", "--print-value-only", "foo1"], prints: "a\n")
                try await expect(etcdctl, ["get", "missing"], prints: "")

                // -w json: the header's revision and the key and value in base64.
                let json = try await succeed(etcdctl, ["get", "foo", "-w", "json"])
                let object = try jsonObject(json.output)
                let header = object["header"] as? [String: Any]
                let revision = jsonInt64(header?["revision"]) ?? 0
                #expect(revision >= 4, "header.revision after four puts: \(json.output)")
                #expect(jsonIntegers(named: "member_id", in: json.output).count == 1, "\(json.output)")
                let kvs = object["kvs"] as? [[String: Any]] ?? []
                #expect(kvs.count == 1, "\(json.output)")
                #expect(kvs.first.flatMap { base64Text($0["key"]) } == "foo", "\(json.output)")
                #expect(kvs.first.flatMap { base64Text($0["value"]) } == "bar", "\(json.output)")
                #expect(jsonInt64(kvs.first?["mod_revision"]) == jsonInt64(kvs.first?["create_revision"]), "\(json.output)")
                #expect(jsonInt64(object["count"]) == 1, "\(json.output)")

                // get --rev: the value at an older revision.
                let first = try await succeed(etcdctl, ["put", "versioned", "old", "-w", "json"])
                let oldRevision = jsonInt64((try jsonObject(first.output)["header"] as? [String: Any])?["revision"]) ?? 0
                #expect(oldRevision > revision, "\(first.output)")
                try await expect(etcdctl, ["put", "versioned", "new"], prints: "OK\n")
                try await expect(etcdctl, ["get", "versioned", "--rev", String(oldRevision)], prints: "versioned\nold\n")
                try await expect(etcdctl, ["get", "versioned"], prints: "versioned\nnew\n")
                try await expect(etcdctl, ["put", "versioned", "newest", "--prev-kv"], prints: "OK\nversioned\nnew\n")

                // txn, non-interactive: compares, blank line, success ops, blank line, failure ops.
                try await expect(
                    etcdctl, ["txn"], prints: "SUCCESS\n\nOK\n\nfoo\nbaz\n",
                    input: "value(\"foo\") = \"bar\"\n\nput foo baz\nget foo\n\nput foo failed\n\n")
                try await expect(
                    etcdctl, ["txn"], prints: "FAILURE\n\nOK\n",
                    input: "value(\"foo\") = \"bar\"\nmod(\"foo1\") > \"0\"\n\nput foo never\n\nput txn-failure yes\n\n")
                try await expect(etcdctl, ["get", "txn-failure"], prints: "txn-failure\nyes\n")
                try await expect(etcdctl, ["get", "foo"], prints: "foo\nbaz\n")

                // del prints the number of keys deleted.
                try await expect(etcdctl, ["del", "foo"], prints: "1\n")
                try await expect(etcdctl, ["del", "foo"], prints: "0\n")
                try await expect(etcdctl, ["del", "--prefix", "foo"], prints: "2\n")
                try await expect(etcdctl, ["get", "--prefix", "foo"], prints: "")
                try await expect(etcdctl, ["del", "--prev-kv", "versioned"], prints: "1\nversioned\nnewest\n")
            }
        }

        // MARK: - Watch

        @Test("watch prints events and replays history")
        func watchPrintsEventsAndReplaysHistory() async throws {
            try await withEtcdctlCluster { cluster, etcdctl in
                let client = try await cluster.client(cluster.members[1])
                let watch = try background(etcdctl, ["watch", "wk"])
                // The watch starts at a time etcdctl does not tell: put until it reports a put.
                var attempt = 0
                let firstSeen = try await eventually("etcdctl watch to print a PUT", timeout: .seconds(20), interval: .milliseconds(300)) {
                    if let index = watch.output.split(separator: "\n").last(where: { $0.hasPrefix("v") }).flatMap({ Int($0.dropFirst()) }) {
                        return index
                    }
                    attempt += 1
                    try await client.put("wk", "v\(attempt)")
                    return nil
                }
                try await client.put("wk", "final")
                try await client.delete("wk")
                let output = try await watch.waitForOutput("the final put and the delete") { $0.hasSuffix("DELETE\nwk\n\n") }
                let firstIndex = output.split(separator: "\n").first { $0.hasPrefix("v") }.flatMap { Int($0.dropFirst()) } ?? firstSeen
                let expected =
                    (firstIndex...attempt).map { "PUT\nwk\nv\($0)\n" }.joined() + "PUT\nwk\nfinal\nDELETE\nwk\n\n"
                #expect(output == expected, "etcdctl watch wk")
                #expect(watch.isRunning, "etcdctl watch exited: \(watch.errorOutput)")
                watch.send(SIGINT)

                // watch --rev replays history from that revision.
                let old = try await client.put("history", "a").header.revision
                try await client.put("history", "b")
                let replay = try background(etcdctl, ["watch", "--rev", String(old), "history"])
                let replayed = try await replay.waitForOutput("etcdctl watch --rev \(old) to replay two puts") {
                    $0.split(separator: "\n").count >= 6
                }
                #expect(replayed == "PUT\nhistory\na\nPUT\nhistory\nb\n")
                replay.send(SIGINT)

                // watch --prefix --prev-kv prints the previous key-value pair before the new one.
                let prefixed = try background(etcdctl, ["watch", "--prefix", "--prev-kv", "--rev", String(old + 1), "hist"])
                let withPrevious = try await prefixed.waitForOutput("etcdctl watch --prev-kv") { $0.split(separator: "\n").count >= 5 }
                #expect(withPrevious == "PUT\nhistory\na\nhistory\nb\n")
                prefixed.send(SIGINT)
            }
        }

        // MARK: - Leases

        @Test("lease commands")
        func leaseCommands() async throws {
            try await withEtcdctlCluster { _, etcdctl in
                let grant = try await succeed(etcdctl, ["lease", "grant", "60"])
                let words = grant.output.split(separator: " ")
                let id = words.count > 1 ? String(words[1]) : ""
                #expect(grant.output == "lease \(id) granted with TTL(60s)\n")
                #expect(id.count == 16, "the lease ID is printed as 16 hex digits: \(grant.output)")
                #expect(UInt64(id, radix: 16) != nil, "\(grant.output)")

                try await expect(etcdctl, ["put", "leased", "value", "--lease=\(id)"], prints: "OK\n")
                try await expect(etcdctl, ["lease", "keep-alive", "--once", id], prints: "lease \(id) keepalived with TTL(60)\n")

                let timeToLive = try await succeed(etcdctl, ["lease", "timetolive", id, "--keys"])
                let prefix = "lease \(id) granted with TTL(60s), remaining("
                let suffix = "s), attached keys([leased])\n"
                #expect(timeToLive.output.hasPrefix(prefix) && timeToLive.output.hasSuffix(suffix), "\(timeToLive)")
                let remaining = Int(timeToLive.output.dropFirst(prefix.count).dropLast(suffix.count)) ?? -1
                #expect((50...60).contains(remaining), "remaining TTL \(remaining): \(timeToLive)")

                try await expect(etcdctl, ["lease", "list"], prints: "found 1 leases\n\(id)\n")
                try await expect(etcdctl, ["lease", "revoke", id], prints: "lease \(id) revoked\n")
                try await expect(etcdctl, ["get", "leased"], prints: "")
                try await expect(etcdctl, ["lease", "timetolive", id], prints: "lease \(id) already expired\n")
                try await expect(etcdctl, ["lease", "list"], prints: "found 0 leases\n")

                let unknown = try await etcdctl.run(["lease", "revoke", "1234abcd"])
                #expect(unknown.status != .exited(0), "\(unknown)")
                #expect(unknown.errorOutput.contains("requested lease not found"), "\(unknown)")
            }
        }

        // MARK: - Lock and election

        @Test("lock is held until released")
        func lockIsHeldUntilReleased() async throws {
            try await withEtcdctlCluster { cluster, etcdctl in
                let first = try background(etcdctl, ["lock", "mylock"])
                let firstOutput = try await first.waitForOutput("the first lock to be acquired") { $0.hasSuffix("\n\n") }
                let firstKey = String(firstOutput.dropLast(2))
                #expect(
                    firstKey.hasPrefix("mylock/") && UInt64(firstKey.dropFirst(7), radix: 16) != nil,
                    "lock printed \(firstOutput.debugDescription)")

                let second = try background(etcdctl, ["lock", "mylock"])
                try await Task.sleep(for: .seconds(2))
                #expect(second.output == "", "a second lock was acquired while the first is held")
                #expect(second.isRunning, "the second lock exited: \(second.errorOutput)")

                first.send(SIGINT)
                let firstExit = try await first.waitForExit()
                #expect(firstExit == .exited(0), "the first lock after SIGINT: \(first.errorOutput)")
                let secondOutput = try await second.waitForOutput("the second lock to be acquired") { $0.hasSuffix("\n\n") }
                let secondKey = String(secondOutput.dropLast(2))
                #expect(secondKey.hasPrefix("mylock/"), "\(secondOutput)")
                #expect(secondKey != firstKey)
                let firstKeyValue = try await cluster.client(cluster.members[0]).value(of: firstKey)
                #expect(firstKeyValue == nil, "the first lock's key was not deleted")
                second.send(SIGINT)
                let secondExit = try await second.waitForExit()
                #expect(secondExit == .exited(0), "the second lock after SIGINT: \(second.errorOutput)")

                // With a command, the lock is held while it runs.
                try await expect(etcdctl, ["lock", "mylock", "echo", "held"], prints: "held\n")
            }
        }

        @Test("elect campaigns, observes and resigns")
        func electCampaignsObservesAndResigns() async throws {
            try await withEtcdctlCluster { _, etcdctl in
                let first = try background(etcdctl, ["elect", "myelection", "p1"])
                let firstOutput = try await first.waitForOutput("p1 to be elected") { $0.hasSuffix("\np1\n") }
                let firstKey = String(firstOutput.dropLast(4))
                #expect(firstKey.hasPrefix("myelection/") && UInt64(firstKey.dropFirst(11), radix: 16) != nil, "\(firstOutput)")

                let second = try background(etcdctl, ["elect", "myelection", "p2"])
                let observer = try background(etcdctl, ["elect", "-l", "myelection"])
                let observed = try await observer.waitForOutput("the observer to print the leader") { $0.hasSuffix("\np1\n") }
                #expect(observed == firstOutput)
                try await Task.sleep(for: .seconds(1))
                #expect(second.output == "", "p2 was elected while p1 leads")

                first.send(SIGINT)
                let firstExit = try await first.waitForExit()
                #expect(firstExit == .exited(0), "p1 resigning: \(first.errorOutput)")
                let secondOutput = try await second.waitForOutput("p2 to be elected") { $0.hasSuffix("\np2\n") }
                #expect(secondOutput.hasPrefix("myelection/") && secondOutput != firstOutput, "\(secondOutput)")
                let observedBoth = try await observer.waitForOutput("the observer to print the new leader") { $0.hasSuffix("\np2\n") }
                #expect(observedBoth == firstOutput + secondOutput)
                second.send(SIGINT)
                observer.send(SIGINT)
            }
        }

        // MARK: - Membership

        @Test("member list, add as a learner, and promote")
        func memberListAddLearnerAndPromote() async throws {
            try await withEtcdctlCluster { cluster, etcdctl in
                _ = await cluster.statuses()
                let list = try await succeed(etcdctl, ["member", "list"])
                #expect(list.lines.count == 3, "\(list)")
                for member in cluster.members {
                    let expectedLine = "\(member.hexID), started, \(member.name), \(member.peerURL), \(member.clientURL), false"
                    #expect(list.lines.contains(expectedLine), "member list lacks \(expectedLine): \(list)")
                }

                let joining = try cluster.makeJoiningMember(name: "n4")
                // etcd refuses to add a member until every member has been connected for 5 seconds
                // ("unhealthy cluster"); retry that refusal only.
                let add = try await eventually("member add to be accepted", timeout: .seconds(20), interval: .milliseconds(500)) {
                    let result = try await etcdctl.run(["member", "add", "n4", "--peer-urls=\(joining.peerURL)", "--learner"])
                    return result.errorOutput.contains("etcdserver: unhealthy cluster") ? nil : result
                }
                #expect(add.status == .exited(0), "\(add)")
                let addLines = add.lines
                #expect(addLines.count == 6, "\(add)")
                let addedWords = addLines.first?.split(separator: " ") ?? []
                #expect(
                    addedWords.count == 6 && addedWords[0] == "Member" && addedWords[2] == "added" && addedWords[4] == "cluster", "\(add)")
                let newID = addedWords.count > 1 ? UInt64(addedWords[1], radix: 16) ?? 0 : 0
                #expect(newID != 0, "\(add)")
                #expect(addLines.dropFirst().first == "")
                #expect(addLines.dropFirst(2).first == "ETCD_NAME=\"n4\"")
                #expect(addLines.dropFirst(4).first == "ETCD_INITIAL_ADVERTISE_PEER_URLS=\"\(joining.peerURL)\"")
                #expect(addLines.dropFirst(5).first == "ETCD_INITIAL_CLUSTER_STATE=\"existing\"")
                let clusterLine = addLines.dropFirst(3).first ?? ""
                let initialCluster = String(clusterLine.dropFirst("ETCD_INITIAL_CLUSTER=\"".count).dropLast())
                #expect(clusterLine.hasPrefix("ETCD_INITIAL_CLUSTER=\""), "\(add)")
                let entries = Set(initialCluster.split(separator: ",").map(String.init))
                #expect(entries == Set(cluster.members.map { "\($0.name)=\($0.peerURL)" }), "\(add)")

                let unstarted = try await succeed(etcdctl, ["member", "list"])
                #expect(unstarted.lines.count == 4, "\(unstarted)")
                #expect(unstarted.lines.contains("\(String(newID, radix: 16)), unstarted, , \(joining.peerURL), , true"), "\(unstarted)")

                joining.initialCluster = initialCluster
                try cluster.launch(joining)
                let leader = try await cluster.waitForLeader(among: cluster.members.filter { $0 !== joining })
                let leaderClient = try await cluster.client(leader)
                try await eventually("n4 to run as a learner and catch up", timeout: .seconds(30)) {
                    guard joining.isRunning else { throw LocalCluster.MemberExited(joining) }
                    let target = try await leaderClient.status().raftIndex
                    let status = try await cluster.client(joining).status(timeout: .seconds(2))
                    return status.isLearner && status.raftAppliedIndex >= target ? () : nil
                }
                joining.id = newID

                // A learner is promoted once it is in sync; etcd refuses earlier, so retry briefly.
                let promote = try await eventually("member promote to succeed", timeout: .seconds(20), interval: .milliseconds(500)) {
                    let result = try await etcdctl.run(
                        ["member", "promote", String(newID, radix: 16)], endpoints: Array(cluster.members.prefix(3)))
                    return result.status == .exited(0) ? result : nil
                }
                // etcdctl prints IDs with %16x: an ID with fewer than 16 hex digits is padded with spaces.
                let promoteWords = promote.output.split(separator: " ").map(String.init)
                #expect(
                    promoteWords.count == 6 && promoteWords.prefix(5) == ["Member", String(newID, radix: 16), "promoted", "in", "cluster"],
                    "\(promote)")

                let final = try await succeed(etcdctl, ["member", "list"])
                #expect(final.lines.count == 4, "\(final)")
                #expect(
                    final.lines.contains("\(String(newID, radix: 16)), started, n4, \(joining.peerURL), \(joining.clientURL), false"),
                    "\(final)")

                try await cluster.waitUntilHealthy([joining])
                try await cluster.client(joining).put("written/through/n4", "yes")
                let written = try await cluster.client(cluster.members[0]).value(of: "written/through/n4")
                #expect(written == "yes")
                try await expect(etcdctl, ["get", "written/through/n4"], prints: "written/through/n4\nyes\n", endpoints: [joining])
            }
        }

        // MARK: - Maintenance

        @Test("endpoint status and health, snapshot, move-leader and alarms")
        func endpointStatusHealthSnapshotMoveLeaderAndAlarms() async throws {
            try await withEtcdctlCluster { cluster, etcdctl in
                let leader = try await cluster.waitForLeader()

                let status = try await succeed(etcdctl, ["endpoint", "status", "-w", "json"])
                let memberIDs = jsonIntegers(named: "member_id", in: status.output)
                let leaders = jsonIntegers(named: "leader", in: status.output)
                #expect(Set(memberIDs) == Set(cluster.members.map(\.id)), "\(status)")
                #expect(leaders == [leader.id, leader.id, leader.id], "every endpoint must name the leader: \(status)")

                let table = try await succeed(etcdctl, ["endpoint", "status"])
                #expect(table.lines.count == 3, "\(table)")
                for member in cluster.members {
                    let columns = table.lines.first { $0.hasPrefix(member.clientURL + ",") }?.components(separatedBy: ", ") ?? []
                    #expect(columns.count >= 9, "\(table)")
                    guard columns.count >= 9 else { continue }
                    #expect(columns[1] == member.hexID, "\(table)")
                    #expect(columns[4] == (member === leader ? "true" : "false"), "is leader, \(member.name): \(table)")
                    #expect(columns[5] == "false", "is learner, \(member.name): \(table)")
                }

                let health = try await succeed(etcdctl, ["endpoint", "health"])
                let healthLines = (health.output + health.errorOutput).split(separator: "\n")
                for member in cluster.members {
                    #expect(
                        healthLines.contains { $0.hasPrefix("\(member.clientURL) is healthy: successfully committed proposal") },
                        "\(health)")
                }

                try await expect(etcdctl, ["alarm", "list"], prints: "")

                let snapshotPath = cluster.root + "/snapshot.db"
                let snapshot = try await succeed(etcdctl, ["snapshot", "save", snapshotPath], endpoints: [leader])
                #expect(snapshot.output.contains("Snapshot saved at \(snapshotPath)"), "\(snapshot)")
                let bytes = try Data(contentsOf: URL(fileURLWithPath: snapshotPath))
                #expect(bytes.count % 512 == 32, "etcd's snapshot size rule (bbolt pages plus a SHA-256): \(bytes.count) bytes")
                if bytes.count > 32 {
                    #expect(
                        Data(SHA256.hash(data: bytes.dropLast(32))) == bytes.suffix(32),
                        "the snapshot's last 32 bytes must be the SHA-256 of the rest")
                }

                let target = cluster.others(than: leader)[0]
                let move = try await succeed(etcdctl, ["move-leader", target.hexID])
                #expect(move.output == "Leadership transferred from \(leader.hexID) to \(target.hexID)\n", "\(move)")
                let newLeader = try await cluster.waitForLeader()
                #expect(newLeader === target, "move-leader to \(target.name) made \(newLeader.name) the leader")
            }
        }

        /// `etcdctl check perf --load=s`: 60 seconds of 150 puts a second from 50 clients. etcdctl
        /// passes a cluster with at least 90 % of that throughput, no request slower than 0.5 s
        /// and a standard deviation of at most 0.1 s.
        ///
        /// This checks compatibility, not speed: etcdctl runs its whole check against Statehouse
        /// and reports on all three criteria, and the throughput one passes (150 puts a second is
        /// far below what a member sustains). The two latency criteria depend on how loaded the
        /// machine is: beside `make test`'s parallel simulator sweeps an fsync took 0.2 s and one
        /// request 0.58 s. They are printed, not asserted; speed goals live in the benchmarks.
        @Test("check perf runs to its verdict, and its throughput criterion passes")
        func checkPerfRuns() async throws {
            try await withEtcdctlCluster { _, etcdctl in
                let result = try await etcdctl.run(["check", "perf", "--load=s"], timeout: .seconds(150))
                // Keep the verdict lines, not the progress bar's carriage-return updates.
                let verdict = result.output.split(whereSeparator: \.isNewline).map(String.init).filter {
                    !$0.hasPrefix(" ")
                }
                let summary =
                    "`\(result.command)` \(result.status): \(verdict.joined(separator: " | ")); stderr: \(result.errorOutput.suffix(500))"
                print(summary)
                #expect(verdict.contains { $0.hasPrefix("PASS: Throughput is ") }, "\(summary)")
                #expect(verdict.contains { $0.contains("Slowest request took") }, "\(summary)")
                #expect(verdict.contains { $0.contains("Stddev is") }, "\(summary)")
                let passed = verdict.last == "PASS"
                #expect(passed ? result.status == .exited(0) : verdict.last == "FAIL" && result.status == .exited(1), "\(summary)")
            }
        }
    }
}
