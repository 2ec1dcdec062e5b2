import Foundation
import Glibc
import StatehouseClient
import Testing

extension LocalClusterTests {
    /// The client library under failures: members killed during calls, a watch across a leader
    /// kill, and a lock handed over when its holder's process dies. Against Statehouse and etcd.
    @Suite("Client library under failures")
    struct ClientFailureTests {
        @Test("Calls go on while the endpoint in use is killed; acknowledged writes survive", arguments: ServerKind.available)
        func endpointKilledDuringCalls(server: ServerKind) async throws {
            try await withClusterClient(server) { cluster, client in
                // The client prefers the first endpoint while it answers: kill that member mid-run.
                let victim = cluster.members[0]
                var acknowledged: [String: String] = [:]
                var writeFailures: [StatehouseError] = []
                var readFailures: [StatehouseError] = []
                for index in 0..<60 {
                    if index == 20 { try await cluster.stop(victim) }
                    let key = "survive/\(index)"
                    do {
                        try await client.put(key, "v\(index)")
                        acknowledged[key] = "v\(index)"
                    } catch let error as StatehouseError {
                        writeFailures.append(error)
                    }
                    do { _ = try await client.get(.prefix("survive/"), options: GetOptions(countOnly: true)) } catch let error
                        as StatehouseError
                    {
                        readFailures.append(error)
                    }
                }
                // Reads are retried on another endpoint, so none fails.
                #expect(readFailures.isEmpty, "reads failed: \(readFailures)")
                // A write in flight when the member died may fail (it is not retried: it may have
                // been applied); every other write goes through on another endpoint.
                #expect(writeFailures.count <= 2, "writes failed: \(writeFailures)")
                #expect(acknowledged.count >= 58)
                let stored = try await client.get(.prefix("survive/"))
                let values = Dictionary(uniqueKeysWithValues: stored.kvs.map { ($0.keyString, $0.valueString) })
                for (key, value) in acknowledged {
                    #expect(values[key] == value, "acknowledged \(key) is missing or different")
                }
            }
        }

        @Test("A watch resumes across a leader kill with no gap and no duplicate", arguments: ServerKind.available)
        func watchAcrossLeaderKill(server: ServerKind) async throws {
            try await withClusterClient(server) { cluster, writer in
                let leader = try await cluster.waitForLeader()
                // The watcher's first endpoint is the leader, so its stream breaks when the leader dies.
                let order = [leader] + cluster.others(than: leader)
                var configuration = try StatehouseClientConfiguration(endpoints: order.map(\.clientURL))
                configuration.requestTimeout = .seconds(10)
                let start = try await writer.put("feed/start", "0").header.revision
                let total = 120
                try await withStatehouseClient(configuration: configuration) { watcher in
                    try await withThrowingTaskGroup(of: [WatchEvent].self) { group in
                        group.addTask {
                            try await collect(
                                total, from: watcher.watch(prefix: "feed/item/", options: WatchOptions(startRevision: start + 1)),
                                timeout: .seconds(60))
                        }
                        for index in 0..<total {
                            if index == total / 2 { try await cluster.stop(leader) }
                            // Each write is retried by hand until acknowledged: a write that failed
                            // around the kill may have been applied, so it is re-sent only when it
                            // provably was not (its key does not exist yet).
                            // Either way the key exists once the transaction returns.
                            _ = try await eventually("write \(index)", timeout: .seconds(30)) { () -> Bool? in
                                let key = "feed/item/\(String(format: "%04d", index))"
                                try await writer.txn().when(.version(key) == 0).then(.put(key, "\(index)")).commit()
                                return true
                            }
                        }
                        let events = try #require(try await group.next())
                        let keys = events.map(\.kv.keyString)
                        #expect(
                            keys == (0..<total).map { "feed/item/\(String(format: "%04d", $0))" }, "events out of order, lost or repeated")
                        let revisions = events.map(\.revision)
                        #expect(revisions == revisions.sorted() && Set(revisions).count == revisions.count)
                    }
                }
            }
        }

        @Test("A lock held by a killed process (etcdctl lock) passes to the next waiter", arguments: ServerKind.available)
        func lockHandoverAfterHolderKilled(server: ServerKind) async throws {
            try #require(FileManager.default.isExecutableFile(atPath: Etcdctl.path), "etcdctl is missing (apt-get install etcd-client)")
            try await withClusterClient(server) { cluster, client in
                let output = cluster.root + "/etcdctl-lock.out"
                var environment = ProcessInfo.processInfo.environment
                environment["ETCDCTL_API"] = "3"
                let holder = try ChildProcess(
                    executable: Etcdctl.path,
                    arguments: ["--endpoints", cluster.endpoints(), "lock", "--ttl=2", "locks/handover"],
                    environment: environment, outputPath: output)
                let holderKey = try await eventually("etcdctl to hold the lock", timeout: .seconds(20)) { () -> String? in
                    let line = holder.output.split(separator: "\n").first.map(String.init)
                    return line?.hasPrefix("locks/handover/") == true ? line : nil
                }
                let holderRevision = try #require(try await client.get(holderKey)).createRevision

                try await client.withSession(ttl: 10) { session in
                    let mutex = DistributedMutex(session: session, name: "locks/handover")
                    try await withThrowingTaskGroup(of: LockToken.self) { group in
                        group.addTask { try await mutex.lock() }
                        try await Task.sleep(for: .seconds(1))
                        #expect(mutex.token == nil, "took the lock while etcdctl held it")
                        let killedAt = ContinuousClock.now
                        holder.send(SIGKILL)
                        _ = try await holder.waitForExit()
                        let token = try #require(try await group.next())
                        // The dead holder's session lease (TTL 2 s) had to expire first.
                        #expect(ContinuousClock.now - killedAt < .seconds(15))
                        #expect(token.revision > holderRevision)
                        #expect(try await client.get(holderKey) == nil)
                        try await mutex.guardedPut("handover/owner", "me")
                        try await mutex.unlock()
                    }
                }
            }
        }
    }
}
