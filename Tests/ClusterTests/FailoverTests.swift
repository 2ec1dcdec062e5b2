import EtcdWire
import Foundation
import GRPCStatus
import Glibc
import Testing

extension LocalClusterTests {
    /// Leader failure and leader change: elections, continued writes, durability of acknowledged
    /// writes, and linearizable reads across the change.
    @Suite("Failover")
    struct FailoverTests {
        /// Killing the leader (SIGKILL) while a client writes through a follower: the survivors
        /// elect a new leader, writes continue, and every acknowledged write is still readable,
        /// including on the old leader once it is restarted.
        @Test("A killed leader is replaced and acknowledged writes survive")
        func killedLeaderIsReplacedAndAcknowledgedWritesSurvive() async throws {
            try await withCluster { cluster in
                let oldLeader = try await cluster.waitForLeader()
                let survivors = cluster.others(than: oldLeader)
                let writer = try await cluster.client(survivors[0])

                async let writes = writeContinuously(writer, prefix: "failover/", count: 150, deadline: .seconds(60))
                try await eventually("the first writes to be acknowledged", timeout: .seconds(10)) {
                    try await writer.get("failover/", prefix: true, serializable: true).kvs.count >= 30 ? () : nil
                }
                let killedAt = ContinuousClock.now
                try await cluster.stop(oldLeader, signal: SIGKILL)
                let newLeader = try await cluster.waitForLeader(among: survivors, excluding: oldLeader.id)
                let electionTime = ContinuousClock.now - killedAt
                print("new leader \(newLeader.name) elected \(electionTime) after killing \(oldLeader.name)")
                #expect(electionTime < .seconds(10), "electing a new leader took \(electionTime)")

                let log = await writes
                #expect(log.acknowledged.count == 150, "writes did not continue after the leader was killed; failures: \(log.failed)")
                if !log.failed.isEmpty { print("writes that failed around the leader change: \(log.failed)") }

                for member in survivors {
                    let stored = keyValues(try await cluster.client(member).get("failover/", prefix: true))
                    for (index, value) in log.acknowledged where stored[workloadKey("failover/", index)] != value {
                        Issue.record(
                            "\(member.name) lost acknowledged write \(index): \(String(describing: stored[workloadKey("failover/", index)]))"
                        )
                    }
                }
                let newLeaderClient = try await cluster.client(newLeader)
                try await newLeaderClient.put("failover/after", "written through the new leader")
                let after = try await cluster.client(survivors[0]).value(of: "failover/after")
                #expect(after == "written through the new leader")

                try await cluster.restart(oldLeader)
                let oldLeaderClient = try await cluster.client(oldLeader)
                let stored = try await eventually("the restarted old leader to catch up", timeout: .seconds(20)) {
                    let response = try await oldLeaderClient.get("failover/", prefix: true, serializable: true)
                    return response.kvs.contains { $0.key == Data("failover/after".utf8) } ? keyValues(response) : nil
                }
                for (index, value) in log.acknowledged where stored[workloadKey("failover/", index)] != value {
                    Issue.record("the restarted old leader lacks acknowledged write \(index)")
                }
            }
        }

        /// Right after leadership moves (MoveLeader), a linearizable read on any member returns the
        /// last acknowledged write, never an older value; three transfers in a row.
        @Test("Linearizable reads after a leader transfer see the latest write")
        func linearizableReadsAfterLeaderTransferSeeTheLatestWrite() async throws {
            try await withCluster { cluster in
                for round in 0..<3 {
                    let leader = try await cluster.waitForLeader()
                    let leaderClient = try await cluster.client(leader)
                    let put = try await leaderClient.put("linearizable/key", "round \(round)")
                    let target = cluster.others(than: leader)[round % 2]
                    try await leaderClient.moveLeader(to: target.id)
                    for member in cluster.members {
                        let response = try await readRetryingUnavailable(cluster, member, "linearizable/key")
                        #expect(
                            response.kvs.first.map { String(decoding: $0.value, as: UTF8.self) } == "round \(round)",
                            "\(member.name), round \(round)")
                        #expect(response.header.revision >= put.header.revision, "\(member.name), round \(round)")
                    }
                    let newLeader = try await cluster.waitForLeader()
                    #expect(newLeader === target, "MoveLeader to \(target.name) made \(newLeader.name) leader")
                }
            }
        }

        /// After the leader is killed, a linearizable read on a survivor returns the last write the
        /// old leader acknowledged; a write through the new leader is then seen by the other survivor.
        @Test("A linearizable read after a leader kill sees the latest acknowledged write")
        func linearizableReadAfterLeaderKillSeesTheLatestAcknowledgedWrite() async throws {
            try await withCluster { cluster in
                let oldLeader = try await cluster.waitForLeader()
                let survivors = cluster.others(than: oldLeader)
                let put = try await cluster.client(oldLeader).put("linearizable/killed", "acknowledged by the old leader")
                try await cluster.stop(oldLeader, signal: SIGKILL)

                for member in survivors {
                    let response = try await readRetryingUnavailable(cluster, member, "linearizable/killed")
                    #expect(response.kvs.first.map { String(decoding: $0.value, as: UTF8.self) } == "acknowledged by the old leader")
                    #expect(response.header.revision >= put.header.revision)
                }
                let newLeader = try await cluster.waitForLeader(among: survivors, excluding: oldLeader.id)
                let follower = cluster.others(than: newLeader, among: survivors)[0]
                let second = try await cluster.client(newLeader).put("linearizable/killed", "acknowledged by the new leader")
                let response = try await cluster.client(follower).get("linearizable/killed")
                #expect(response.kvs.first.map { String(decoding: $0.value, as: UTF8.self) } == "acknowledged by the new leader")
                #expect(response.header.revision >= second.header.revision)
            }
        }

        /// A linearizable Range on `member`, retried while it fails with UNAVAILABLE (no leader
        /// yet, or the leader changed), for up to 15 seconds.
        private func readRetryingUnavailable(
            _ cluster: LocalCluster, _ member: LocalMember, _ key: String
        ) async throws
            -> Etcdserverpb_RangeResponse
        {
            let client = try await cluster.client(member)
            let deadline = ContinuousClock.now + .seconds(15)
            while true {
                do {
                    return try await client.get(key, timeout: .seconds(5))
                } catch let error as GRPCCallError where error.code == .unavailable && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
        }
    }
}
