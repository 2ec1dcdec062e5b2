import EtcdWire
import Foundation
import GRPCStatus
import Testing

extension LocalClusterTests {
    /// Replication, catch-up after a restart, and catch-up by snapshot, through etcd's gRPC API.
    @Suite("Replication")
    struct ReplicationTests {
        /// A put through each member is seen by a linearizable read on every member, at a revision
        /// no older than the put's.
        @Test("A put through any member is seen by linearizable reads on every member")
        func putThroughAnyMemberIsSeenByLinearizableReadsOnEveryMember() async throws {
            try await withCluster { cluster in
                var expected: [String: String] = [:]
                var lastRevision: Int64 = 0
                for member in cluster.members {
                    let key = "replicated/\(member.name)"
                    let response = try await cluster.client(member).put(key, "written through \(member.name)")
                    expected[key] = "written through \(member.name)"
                    #expect(response.header.revision > lastRevision, "revisions must grow with every put")
                    lastRevision = response.header.revision
                }
                var clusterIDs: Set<UInt64> = []
                for member in cluster.members {
                    let response = try await cluster.client(member).get("replicated/", prefix: true)
                    #expect(keyValues(response) == expected, "linearizable read on \(member.name)")
                    #expect(response.header.revision >= lastRevision, "\(member.name) answered from an older revision")
                    #expect(response.header.memberID == member.id, "\(member.name)'s header names another member")
                    clusterIDs.insert(response.header.clusterID)
                }
                #expect(clusterIDs.count == 1, "the members report different cluster IDs: \(clusterIDs)")
                #expect(!clusterIDs.contains(0), "the cluster ID is 0")
            }
        }

        /// A watch on one member sees puts made through another, in order, with their revisions,
        /// and a watch from an old revision replays them.
        @Test("A watch on one member sees puts through another")
        func watchOnOneMemberSeesPutsThroughAnother() async throws {
            try await withCluster { cluster in
                let watcher = try await cluster.client(cluster.members[0])
                let writer = try await cluster.client(cluster.members[1])
                var request = Etcdserverpb_WatchCreateRequest()
                request.key = Data("watched/".utf8)
                request.rangeEnd = EtcdClient.prefixEnd(of: request.key)
                let revisions = try await watcher.watch(request) { created, stream in
                    var revisions: [Int64] = []
                    for index in 0..<5 {
                        revisions.append(try await writer.put("watched/\(index)", "v\(index)").header.revision)
                    }
                    let events = try await stream.events(count: 5)
                    #expect(events.map { String(decoding: $0.kv.key, as: UTF8.self) } == (0..<5).map { "watched/\($0)" })
                    #expect(events.map { String(decoding: $0.kv.value, as: UTF8.self) } == (0..<5).map { "v\($0)" })
                    #expect(events.map(\.kv.modRevision) == revisions, "events must carry the puts' revisions")
                    #expect(events.allSatisfy { $0.type == .put })
                    #expect(created.header.revision < revisions[0], "the watch was created after the first put")
                    return revisions
                }

                request.startRevision = revisions[0]
                try await cluster.client(cluster.members[2]).watch(request) { _, stream in
                    let events = try await stream.events(count: 5)
                    #expect(events.map(\.kv.modRevision) == revisions, "a watch from revision \(revisions[0]) must replay the puts")
                }
            }
        }

        /// A follower killed while 200 keys are written catches up after its restart: its
        /// serializable (local) reads eventually show every key.
        @Test("A restarted follower catches up")
        func restartedFollowerCatchesUp() async throws {
            try await withCluster { cluster in
                let leader = try await cluster.waitForLeader()
                let follower = cluster.others(than: leader)[0]
                try await cluster.stop(follower, signal: SIGKILL)

                let revision = try await putMany(try await cluster.client(leader), prefix: "catch-up/", 0..<200)
                try await cluster.restart(follower)

                let client = try await cluster.client(follower)
                let response = try await eventually("\(follower.name) to serve all 200 keys locally", timeout: .seconds(20)) {
                    let response = try await client.get("catch-up/", prefix: true, serializable: true)
                    return response.kvs.count == 200 ? response : nil
                }
                #expect(
                    keyValues(response)
                        == Dictionary(uniqueKeysWithValues: (0..<200).map { (workloadKey("catch-up/", $0), workloadValue($0)) }))
                #expect(response.header.revision >= revision)
            }
        }

        /// With `--snapshot-count 100`, a follower that misses more entries than the leader keeps
        /// behind its snapshots (5,000) can only catch up from a snapshot; afterwards every member
        /// has the same HashKV at the same revision.
        @Test("A follower catches up from a snapshot")
        func followerCatchesUpFromASnapshot() async throws {
            try await withCluster(snapshotCount: 100) { cluster in
                let leader = try await cluster.waitForLeader()
                let follower = cluster.others(than: leader)[0]
                try await cluster.stop(follower, signal: SIGKILL)

                // The leader keeps 5,000 entries behind each snapshot; 5,600 puts compact its log past
                // everything the follower has.
                let count = 5_600
                let leaderClient = try await cluster.client(leader)
                let revision = try await putMany(leaderClient, prefix: "snap/", 0..<count, concurrency: 32)
                try await cluster.restart(follower, timeout: .seconds(60))

                let client = try await cluster.client(follower)
                let caughtUp = try await eventually("\(follower.name) to reach revision \(revision)", timeout: .seconds(60)) {
                    let response = try await client.get("snap/", prefix: true, serializable: true)
                    return response.header.revision >= revision ? response : nil
                }
                #expect(caughtUp.kvs.count == count)
                #expect(keyValues(caughtUp)[workloadKey("snap/", count - 1)] == workloadValue(count - 1))

                var hashes: [String: UInt32] = [:]
                for member in cluster.members {
                    let response = try await cluster.client(member).hashKV(revision: revision)
                    hashes[member.name] = response.hash
                }
                #expect(Set(hashes.values).count == 1, "HashKV at revision \(revision) differs between members: \(hashes)")
            }
        }

        /// `/version`, `/metrics` and `/health` on the client port.
        @Test("HTTP endpoints /version, /metrics and /health")
        func httpEndpoints() async throws {
            try await withCluster { cluster in
                let leader = try await cluster.waitForLeader()
                for member in cluster.members {
                    let (versionStatus, version) = try await LocalCluster.httpGet(port: member.clientPort, path: "/version")
                    #expect(versionStatus == 200)
                    #expect(version.contains(#""etcdserver":""#), "/version answered \(version)")
                    let (metricsStatus, metrics) = try await LocalCluster.httpGet(port: member.clientPort, path: "/metrics")
                    #expect(metricsStatus == 200)
                    #expect(metricValue("etcd_server_has_leader", in: metrics) == 1, "/metrics of \(member.name): etcd_server_has_leader")
                    #expect(
                        metricValue("etcd_server_is_leader", in: metrics) == (member === leader ? 1 : 0),
                        "/metrics of \(member.name) (\(member === leader ? "the leader" : "a follower")): etcd_server_is_leader")
                    let (healthStatus, health) = try await LocalCluster.httpGet(port: member.clientPort, path: "/health")
                    #expect(healthStatus == 200)
                    #expect(health.contains(#""health":"true""#), "/health answered \(health)")
                }
            }
        }
    }
}

/// The value of the unlabelled sample `name` in Prometheus text, or nil if there is none.
func metricValue(_ name: String, in text: String) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
        return Double(line.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces))
    }
    return nil
}
