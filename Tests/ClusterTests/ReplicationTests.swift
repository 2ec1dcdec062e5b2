import EtcdWire
import Foundation
import GRPCStatus
import XCTest

/// Replication, catch-up after a restart, and catch-up by snapshot, through etcd's gRPC API.
final class ReplicationTests: ClusterTestCase {
    /// A put through each member is seen by a linearizable read on every member, at a revision
    /// no older than the put's.
    func testPutThroughAnyMemberIsSeenByLinearizableReadsOnEveryMember() async throws {
        let cluster = try await startCluster()
        var expected: [String: String] = [:]
        var lastRevision: Int64 = 0
        for member in cluster.members {
            let key = "replicated/\(member.name)"
            let response = try await cluster.client(member).put(key, "written through \(member.name)")
            expected[key] = "written through \(member.name)"
            XCTAssertGreaterThan(response.header.revision, lastRevision, "revisions must grow with every put")
            lastRevision = response.header.revision
        }
        var clusterIDs: Set<UInt64> = []
        for member in cluster.members {
            let response = try await cluster.client(member).get("replicated/", prefix: true)
            XCTAssertEqual(keyValues(response), expected, "linearizable read on \(member.name)")
            XCTAssertGreaterThanOrEqual(response.header.revision, lastRevision, "\(member.name) answered from an older revision")
            XCTAssertEqual(response.header.memberID, member.id, "\(member.name)'s header names another member")
            clusterIDs.insert(response.header.clusterID)
        }
        XCTAssertEqual(clusterIDs.count, 1, "the members report different cluster IDs: \(clusterIDs)")
        XCTAssertFalse(clusterIDs.contains(0), "the cluster ID is 0")
    }

    /// A watch on one member sees puts made through another, in order, with their revisions,
    /// and a watch from an old revision replays them.
    func testWatchOnOneMemberSeesPutsThroughAnother() async throws {
        let cluster = try await startCluster()
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
            XCTAssertEqual(events.map { String(decoding: $0.kv.key, as: UTF8.self) }, (0..<5).map { "watched/\($0)" })
            XCTAssertEqual(events.map { String(decoding: $0.kv.value, as: UTF8.self) }, (0..<5).map { "v\($0)" })
            XCTAssertEqual(events.map(\.kv.modRevision), revisions, "events must carry the puts' revisions")
            XCTAssertTrue(events.allSatisfy { $0.type == .put })
            XCTAssertLessThan(created.header.revision, revisions[0], "the watch was created after the first put")
            return revisions
        }

        request.startRevision = revisions[0]
        try await cluster.client(cluster.members[2]).watch(request) { _, stream in
            let events = try await stream.events(count: 5)
            XCTAssertEqual(events.map(\.kv.modRevision), revisions, "a watch from revision \(revisions[0]) must replay the puts")
        }
    }

    /// A follower killed while 200 keys are written catches up after its restart: its
    /// serializable (local) reads eventually show every key.
    func testRestartedFollowerCatchesUp() async throws {
        let cluster = try await startCluster()
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
        XCTAssertEqual(
            keyValues(response), Dictionary(uniqueKeysWithValues: (0..<200).map { (workloadKey("catch-up/", $0), workloadValue($0)) }))
        XCTAssertGreaterThanOrEqual(response.header.revision, revision)
    }

    /// With `--snapshot-count 100`, a follower that misses more entries than the leader keeps
    /// behind its snapshots (5,000) can only catch up from a snapshot; afterwards every member
    /// has the same HashKV at the same revision.
    func testFollowerCatchesUpFromASnapshot() async throws {
        let cluster = try await startCluster(snapshotCount: 100)
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
        XCTAssertEqual(caughtUp.kvs.count, count)
        XCTAssertEqual(keyValues(caughtUp)[workloadKey("snap/", count - 1)], workloadValue(count - 1))

        var hashes: [String: UInt32] = [:]
        for member in cluster.members {
            let response = try await cluster.client(member).hashKV(revision: revision)
            hashes[member.name] = response.hash
        }
        XCTAssertEqual(Set(hashes.values).count, 1, "HashKV at revision \(revision) differs between members: \(hashes)")
    }

    /// `/version`, `/metrics` and `/health` on the client port.
    func testHTTPEndpoints() async throws {
        let cluster = try await startCluster()
        let leader = try await cluster.waitForLeader()
        for member in cluster.members {
            let (versionStatus, version) = try await LocalCluster.httpGet(port: member.clientPort, path: "/version")
            XCTAssertEqual(versionStatus, 200)
            XCTAssertTrue(version.contains(#""etcdserver":""#), "/version answered \(version)")
            let (metricsStatus, metrics) = try await LocalCluster.httpGet(port: member.clientPort, path: "/metrics")
            XCTAssertEqual(metricsStatus, 200)
            XCTAssertEqual(metricValue("etcd_server_has_leader", in: metrics), 1, "/metrics of \(member.name): etcd_server_has_leader")
            XCTAssertEqual(
                metricValue("etcd_server_is_leader", in: metrics), member === leader ? 1 : 0,
                "/metrics of \(member.name) (\(member === leader ? "the leader" : "a follower")): etcd_server_is_leader")
            let (healthStatus, health) = try await LocalCluster.httpGet(port: member.clientPort, path: "/health")
            XCTAssertEqual(healthStatus, 200)
            XCTAssertTrue(health.contains(#""health":"true""#), "/health answered \(health)")
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
