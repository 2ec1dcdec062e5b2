import EtcdWire
import Foundation
import Glibc
import TestSupport
import Testing

extension LocalClusterTests {
    /// Backups that restore: `statehousectl snapshot save` while clients write, `statehouse-restore`
    /// into a new three-member cluster, and the same HashKV at the backup's revision.
    @Suite("Backup and restore")
    struct BackupRestoreTests {
        @Test("A backup saved under load restores into a new cluster with the same HashKV at its revision")
        func backupUnderLoadRestores() async throws {
            guard let restore = builtExecutable(named: "statehouse-restore") else {
                try skipTest("statehouse-restore was not built; build it with `swift build --product statehouse-restore`")
            }
            let ctl = try StatehousectlRunner.builtExecutable()
            try await withCluster { old in
                let writer = try await old.client(try await old.waitForLeader())
                _ = try await putMany(writer, prefix: "before/", 0..<300)
                let backup = old.root + "/backup.db"
                // Clients keep writing while the backup streams.
                let save = try StatehousectlRunner(executable: ctl, cluster: old).start(["snapshot", "save", backup])
                _ = try await putMany(writer, prefix: "during/", 0..<400, concurrency: 8)
                let status = try await save.waitForExit(timeout: .seconds(60))
                let saved = EtcdctlResult(
                    command: "statehousectl snapshot save", status: status, output: save.output, errorOutput: save.errorOutput)
                #expect(saved.status == .exited(0), "\(saved)")
                #expect(saved.output.contains("Snapshot saved at \(backup)"), "\(saved)")

                let fresh = try LocalCluster(size: 3)
                do {
                    for member in fresh.members {
                        let process = try ChildProcess(
                            executable: restore.path, arguments: [backup] + fresh.arguments(for: member),
                            outputPath: fresh.root + "/restore-\(member.name).out")
                        let status = try await process.waitForExit(timeout: .seconds(30))
                        #expect(status == .exited(0), "statehouse-restore for \(member.name): \(process.output)")
                    }
                    try await fresh.start()
                    let statuses = await fresh.statuses()
                    #expect(statuses.count == 3)
                    let revisions = Set(statuses.values.map(\.header.revision))
                    let revision = try #require(revisions.count == 1 ? revisions.first : nil, "\(revisions)")
                    #expect(revision > 300, "the backup holds at least the keys written before it")
                    let expected = try await writer.hashKV(revision: revision)
                    for member in fresh.members {
                        let restored = try await fresh.client(member).hashKV(revision: revision)
                        #expect(restored.hash == expected.hash, "\(member.name): HashKV at \(revision) differs from the old cluster's")
                    }
                    let before = try await fresh.client(fresh.members[0]).get("before/", prefix: true)
                    #expect(before.kvs.count == 300)
                    // The new cluster takes writes.
                    _ = try await fresh.client(try await fresh.waitForLeader()).put("after/restore", "yes")
                } catch {
                    print(fresh.logTails())
                    await fresh.shutdown()
                    throw error
                }
                await fresh.shutdown()
                fresh.removeFiles()
            }
        }

        /// The one-survivor disaster: two of three members are lost for good; the survivor,
        /// restarted with `--force-new-cluster`, is a one-member cluster with every committed key,
        /// takes writes, and stays one after a restart without the flag.
        @Test("--force-new-cluster turns the last survivor into a one-member cluster with its data")
        func forceNewCluster() async throws {
            try await withCluster { cluster in
                // Without data the flag would make an empty cluster under the real one's IDs: refused.
                let empty = try ChildProcess(
                    executable: cluster.executable.path,
                    arguments: cluster.arguments(for: cluster.members[0]).map {
                        $0 == cluster.members[0].dataDirectory ? cluster.root + "/empty" : $0
                    } + ["--force-new-cluster"],
                    outputPath: cluster.root + "/empty.out")
                #expect(try await empty.waitForExit(timeout: .seconds(10)) == .exited(1))
                #expect(empty.output.contains("--force-new-cluster needs the data of a member"), "\(empty.output)")

                let leader = try await cluster.waitForLeader()
                _ = try await putMany(try await cluster.client(leader), prefix: "survive/", 0..<100)
                let survivor = cluster.others(than: leader)[0]
                for member in cluster.others(than: survivor) { try await cluster.stop(member, signal: SIGKILL) }
                try await cluster.stop(survivor, signal: SIGTERM)

                try cluster.launch(survivor, adding: ["--force-new-cluster"])
                try await cluster.waitUntilHealthy([survivor])
                let client = try await cluster.client(survivor)
                let members = try await client.memberList().members
                #expect(members.map(\.name) == [survivor.name], "\(members)")
                #expect(try await client.get("survive/", prefix: true).kvs.count == 100)
                _ = try await client.put("after/force", "yes")
                #expect(ChildProcess.read(survivor.logPath).contains("this member is now the only one of its cluster"))

                try await cluster.stop(survivor, signal: SIGTERM)
                try cluster.launch(survivor)
                try await cluster.waitUntilHealthy([survivor])
                let again = try await cluster.client(survivor)
                #expect(try await again.memberList().members.count == 1)
                #expect(try await again.value(of: "after/force") == "yes")
            }
        }
    }
}
