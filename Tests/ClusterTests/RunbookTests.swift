import EtcdWire
import Foundation
import Glibc
import Testing

extension LocalClusterTests {
    /// The runbooks of docs/operations.md, each followed step by step with etcdctl, as an operator
    /// would: the step numbers in the comments are the runbook's.
    @Suite(
        "Runbooks",
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: Etcdctl.path),
            "etcdctl is not installed at \(Etcdctl.path) (Debian's etcd-client package); skipping the runbook tests"))
    struct RunbookTests {
        /// Runs `arguments` and expects exit status 0.
        @discardableResult
        private static func succeed(_ etcdctl: Etcdctl, _ arguments: [String], on members: [LocalMember]) async throws -> EtcdctlResult {
            let result = try await etcdctl.run(arguments, endpoints: members)
            #expect(result.status == .exited(0), "\(result)")
            return result
        }

        /// Kills `member` and deletes its data directory: its machine is lost for good.
        private static func lose(_ member: LocalMember, in cluster: LocalCluster) async throws {
            try await cluster.stop(member, signal: SIGKILL)
            try FileManager.default.removeItem(atPath: member.dataDirectory)
        }

        /// "Replacing a failed member", steps 3 to 6: announces `name` as a learner, starts it on
        /// an empty data directory with `--initial-cluster-state existing`, waits until it has
        /// caught up and promotes it.
        private static func addAndPromote(_ name: String, to cluster: LocalCluster, etcdctl: Etcdctl) async throws -> LocalMember {
            let members = cluster.running
            let joining = try cluster.makeJoiningMember(name: name)
            // 3. member add … --learner (etcd also refuses while a member connected only just now).
            let add = try await eventually("member add to be accepted", timeout: .seconds(20), interval: .milliseconds(500)) {
                let result = try await etcdctl.run(
                    ["member", "add", name, "--peer-urls=\(joining.peerURL)", "--learner"], endpoints: members)
                return result.errorOutput.contains("unhealthy cluster") ? nil : result
            }
            #expect(add.status == .exited(0), "\(add)")
            let words = add.lines.first?.split(separator: " ") ?? []
            joining.id = try #require(words.count > 1 ? UInt64(words[1], radix: 16) : nil, "\(add)")
            let prefix = "ETCD_INITIAL_CLUSTER=\""
            let line = try #require(add.lines.first { $0.hasPrefix(prefix) }, "\(add)")
            // 4. Start it on an empty data directory with what member add printed.
            joining.initialCluster = String(line.dropFirst(prefix.count).dropLast())
            #expect(!FileManager.default.fileExists(atPath: joining.dataDirectory))
            try cluster.launch(joining)
            // 5. Caught up: its applied index reaches the others' Raft index (endpoint status).
            let leaderClient = try await cluster.client(try await cluster.waitForLeader(among: members))
            try await eventually("\(name) to catch up as a learner", timeout: .seconds(30)) {
                guard joining.isRunning else { throw LocalCluster.MemberExited(joining) }
                let target = try await leaderClient.status().raftIndex
                let status = try await cluster.client(joining).status(timeout: .seconds(2))
                return status.isLearner && status.raftAppliedIndex >= target ? () : nil
            }
            // 6. Promote, retrying the refusal of a learner not yet in sync.
            let promote = try await eventually("member promote to succeed", timeout: .seconds(20), interval: .milliseconds(300)) {
                let result = try await etcdctl.run(["member", "promote", joining.hexID], endpoints: members)
                return result.errorOutput.contains("in sync with leader") ? nil : result
            }
            #expect(promote.status == .exited(0), "\(promote)")
            try await cluster.waitUntilHealthy([joining])
            return joining
        }

        /// Expects every member of `members` to hold the `count` keys under `prefix` in its own copy.
        private static func expectKeys(_ prefix: String, count: Int, on members: [LocalMember], in cluster: LocalCluster) async throws {
            for member in members {
                try await eventually("\(member.name) to hold the \(count) keys under \(prefix)") {
                    let response = try await cluster.client(member).get(prefix, prefix: true, serializable: true)
                    return response.kvs.count == count ? () : nil
                }
            }
        }

        @Test("Replacing a failed member, then recovering from the loss of a quorum with --force-new-cluster")
        func replaceFailedMemberThenRecoverFromQuorumLoss() async throws {
            try await withCluster { cluster in
                let etcdctl = Etcdctl(cluster: cluster)
                let leader = try await cluster.waitForLeader()
                _ = try await putMany(try await cluster.client(leader), prefix: "runbook/before/", 0..<50)

                // Replacing a failed member: a follower's machine is lost.
                let failed = cluster.others(than: leader)[0]
                try await Self.lose(failed, in: cluster)
                // 1. Its ID, from member list on the members still running.
                let list = try await Self.succeed(etcdctl, ["member", "list"], on: cluster.running)
                let line = try #require(list.lines.first { $0.contains(", \(failed.name), ") }, "\(list)")
                let failedID = String(line.prefix { $0 != "," })
                #expect(failedID == failed.hexID)
                // 2. Remove it.
                try await Self.succeed(etcdctl, ["member", "remove", failedID], on: cluster.running)
                // 3 to 6.
                let replacement = try await Self.addAndPromote("n4", to: cluster, etcdctl: etcdctl)
                _ = try await putMany(try await cluster.client(replacement), prefix: "runbook/replaced/", 0..<20)
                let members = try await Self.succeed(etcdctl, ["member", "list"], on: cluster.running)
                #expect(members.lines.count == 3 && !members.output.contains(failed.name), "\(members)")
                #expect(members.lines.allSatisfy { $0.hasSuffix(", false") }, "a learner is left: \(members)")
                try await Self.expectKeys("runbook/", count: 70, on: cluster.running, in: cluster)

                // Recovering from the loss of a quorum: two of the three are lost for good.
                let survivor = cluster.running[0]
                for member in cluster.others(than: survivor) { try await Self.lose(member, in: cluster) }
                // 1. Stop the survivor; 2. start it with --force-new-cluster.
                #expect(try await cluster.stop(survivor, signal: SIGTERM) == .exited(0))
                try cluster.launch(survivor, adding: ["--force-new-cluster"])
                try await cluster.waitUntilHealthy([survivor])
                #expect(ChildProcess.read(survivor.logPath).contains("this member is now the only one of its cluster"))
                // 3. Only it is a member, with every key.
                let alone = try await Self.succeed(etcdctl, ["member", "list"], on: [survivor])
                #expect(alone.lines.count == 1 && alone.output.contains(survivor.name), "\(alone)")
                try await Self.expectKeys("runbook/", count: 70, on: [survivor], in: cluster)
                // 4. Restart it without the flag.
                #expect(try await cluster.stop(survivor, signal: SIGTERM) == .exited(0))
                try await cluster.restart(survivor)
                _ = try await putMany(try await cluster.client(survivor), prefix: "runbook/alone/", 0..<10)
                // 5. Add the others back one at a time, on empty data directories.
                _ = try await Self.addAndPromote("n5", to: cluster, etcdctl: etcdctl)
                _ = try await Self.addAndPromote("n6", to: cluster, etcdctl: etcdctl)
                let rebuilt = try await Self.succeed(etcdctl, ["member", "list"], on: cluster.running)
                #expect(rebuilt.lines.count == 3, "\(rebuilt)")
                let writer = try await cluster.client(try await cluster.waitForLeader())
                _ = try await putMany(writer, prefix: "runbook/rebuilt/", 0..<10)
                try await Self.expectKeys("runbook/", count: 90, on: cluster.running, in: cluster)
            }
        }

        /// A quota small enough for a few large values to exceed it.
        static let quotaBytes = 4 << 20

        @Test("Disk full: the NOSPACE alarm, then compaction, defrag and alarm disarm, and writes resume")
        func diskFullRecovery() async throws {
            try await withCluster(size: 1, arguments: ["--quota-backend-bytes", String(Self.quotaBytes)]) { cluster in
                let member = cluster.members[0]
                let etcdctl = Etcdctl(cluster: cluster)
                let client = try await cluster.client(member)
                // Printable noise: RocksDB compresses its files, and a repeated letter would take no room.
                let value = String(decoding: (0..<(512 << 10)).map { _ in UInt8.random(in: 33...126) }, as: UTF8.self)
                // The Raft log keeps its last entries whatever compaction frees, so it does not
                // count toward the quota: an application that compacts and defragments writes
                // more than the quota (6 MiB) into the log first, which step 4 must not count.
                for _ in 0..<6 {
                    var revision: Int64 = 0
                    for _ in 0..<2 { revision = try await client.put("runbook/large", value, timeout: .seconds(10)).header.revision }
                    try await Self.succeed(etcdctl, ["compaction", String(revision)], on: [member])
                    try await Self.succeed(etcdctl, ["defrag"], on: [member])
                }
                // An application overwrites one large value without compacting until writes are refused.
                let refusal = try await eventually("a write to be refused for space", timeout: .seconds(60), interval: .milliseconds(10)) {
                    () async throws -> String? in
                    do {
                        _ = try await client.put("runbook/large", value, timeout: .seconds(10))
                        return nil
                    } catch let error as GRPCCallError {
                        return error.message
                    }
                }
                #expect(refusal.contains("database space exceeded"), "\(refusal)")
                // 1. The alarm is raised.
                try await eventually("the NOSPACE alarm", timeout: .seconds(10)) {
                    try await etcdctl.run(["alarm", "list"]).output.contains("alarm:NOSPACE") ? () : nil
                }
                let (health, _) = try await LocalCluster.httpGet(port: member.clientPort, path: "/health")
                #expect(health == 503)
                // 2. Compact to the current revision.
                let status = try await Self.succeed(etcdctl, ["endpoint", "status", "-w", "json"], on: [member])
                let revision = try #require(jsonIntegers(named: "revision", in: status.output).first, "\(status)")
                try await Self.succeed(etcdctl, ["compaction", String(revision)], on: [member])
                // 3. Defragment.
                try await Self.succeed(etcdctl, ["defrag"], on: [member])
                // 4. The database is below the quota again.
                try await eventually("the database to shrink below the quota", timeout: .seconds(20)) {
                    let status = try await etcdctl.run(["endpoint", "status", "-w", "json"])
                    let size = jsonIntegers(named: "dbSize", in: status.output).first ?? .max
                    return size < UInt64(Self.quotaBytes) ? () : nil
                }
                // 5. Disarm: writes resume.
                try await Self.succeed(etcdctl, ["alarm", "disarm"], on: [member])
                #expect(try await etcdctl.run(["alarm", "list"]).output.isEmpty)
                // The size the write path checks is measured every ten heartbeats.
                try await eventually("writes to resume", timeout: .seconds(5)) {
                    try await etcdctl.run(["put", "runbook/after", "resumed"]).status == .exited(0) ? () : nil
                }
                #expect(try await client.value(of: "runbook/large") == value, "the last value written before the refusal")
                try await cluster.waitUntilHealthy([member])
            }
        }
    }
}
