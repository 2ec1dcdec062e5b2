import EtcdWire
import Foundation
import TestSupport
import Testing

extension LocalClusterTests {
    /// A leader whose disk stalls for longer than the election timeout (issue 10, "Raft never
    /// waits"). Its storage stage syncs off the member loop, so its heartbeats keep going out,
    /// the followers store and acknowledge its appends, and it stays leader; its writes are
    /// answered once its own sync lands. A member loop that waited for the sync would send no
    /// heartbeat for the whole stall, and the followers would elect another leader.
    @Suite("A leader with a slow disk")
    struct SlowDiskTests {
        /// How long each of the leader's synced writes takes: three election timeouts of the
        /// test clusters (500 ms).
        static let syncMilliseconds = 1_500
        /// How long puts go on while the leader's disk is slow.
        static let slowPeriod = Duration.seconds(8)

        @Test("a leader whose every fsync takes three election timeouts keeps leading, and its writes commit")
        func slowLeaderDiskKeepsLeadership() async throws {
            try await withCluster(prepare: { cluster in
                for member in cluster.members { member.environment[Self.delayVariable] = Self.delayFile(of: member, in: cluster) }
            }) { cluster in
                let leader = try await cluster.waitForLeader()
                let client = try await cluster.client(leader)
                _ = try await client.put("slow/before", "fast")
                let termsBefore = try await cluster.terms()
                let changesBefore = try await cluster.leaderChangesSeen()

                let delayFile = Self.delayFile(of: leader, in: cluster)
                try "\(Self.syncMilliseconds)".write(toFile: delayFile, atomically: true, encoding: .utf8)
                var slowest = Duration.zero
                var puts = 0
                let start = ContinuousClock.now
                while ContinuousClock.now - start < Self.slowPeriod {
                    let began = ContinuousClock.now
                    _ = try await client.put("slow/\(puts)", "v\(puts)", timeout: .seconds(30))
                    slowest = max(slowest, ContinuousClock.now - began)
                    puts += 1
                }
                try FileManager.default.removeItem(atPath: delayFile)

                // The stall was real: a put waits for at least one of the leader's slow syncs.
                #expect(slowest >= .milliseconds(Self.syncMilliseconds), "no put took as long as one slow sync (\(slowest))")
                #expect(try await cluster.leaderChangesSeen() == changesBefore, "a leader change while the leader's disk was slow")
                #expect(try await cluster.terms() == termsBefore, "the Raft term moved while the leader's disk was slow")
                #expect(try await cluster.waitForLeader() === leader)
                for member in cluster.members {
                    let value = try await cluster.client(member).get("slow/\(puts - 1)").kvs.first?.value
                    #expect(value.map { String(decoding: $0, as: UTF8.self) } == "v\(puts - 1)", "\(member.name) has the last put")
                }
            }
        }

        static let delayVariable = "TESTING_STATEHOUSE_SYNC_DELAY_FILE"

        /// The file whose milliseconds `member`'s storage stage sleeps before each synced write.
        static func delayFile(of member: LocalMember, in cluster: LocalCluster) -> String {
            "\(cluster.root)/\(member.name).sync-delay"
        }
    }
}
