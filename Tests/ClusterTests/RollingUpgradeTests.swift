import Foundation
import Glibc
import Testing

extension LocalClusterTests {
    /// The rolling-upgrade runbook of docs/operations.md, step by step, with members that stand
    /// for other builds through the peer protocol's testing variable.
    @Suite("Rolling upgrade")
    struct RollingUpgradeTests {
        /// The testing variable that makes a member speak `versions` only
        /// (`PeerTransport.protocolVersionsTestingVariable`).
        private static func speaking(_ versions: String) -> [String: String] {
            ["TESTING_STATEHOUSE_PEER_PROTOCOL_VERSIONS": versions]
        }

        /// The peer protocol metrics `member` exports for `peer`: the version, and the number of
        /// round trips measured.
        private static func peerMetrics(of member: LocalMember, for peer: LocalMember) async throws -> (version: Double, roundTrips: Double)
        {
            let (_, text) = try await LocalCluster.httpGet(port: member.clientPort, path: "/metrics")
            let label = #"{To=""# + peer.hexID + #""}"#
            return (
                metricValue("statehouse_network_peer_protocol_version" + label, in: text) ?? -1,
                metricValue("etcd_network_peer_round_trip_time_seconds_count" + label, in: text) ?? 0
            )
        }

        /// Reads every key written so far from `member`'s own copy and checks each acknowledged value.
        private static func expectEveryWrite(_ written: [String: String], on member: LocalMember, in cluster: LocalCluster) async throws {
            let copy = try await eventually("\(member.name) to hold every acknowledged write", timeout: .seconds(20)) {
                let response = try await cluster.client(member).get("upgrade/", prefix: true, serializable: true)
                let values = keyValues(response)
                return written.allSatisfy { values[$0.key] == $0.value } ? values : nil
            }
            #expect(copy.count == written.count, "\(member.name) holds keys nobody wrote")
        }

        @Test(
            "Members of the previous build (peer protocol 1 only) are replaced one at a time by this build (1...4) with writes throughout; a build with no version in common is refused, naming both ranges; the next build (4...5) joins; nothing is lost"
        )
        func rollingUpgradeAndRefusal() async throws {
            try await withCluster { cluster in
                // The cluster as the previous build runs it: every member speaks version 1 only.
                for member in cluster.members {
                    try await cluster.stop(member)
                    member.environment = Self.speaking("1...1")
                }
                try await cluster.start()
                var written: [String: String] = [:]
                func write(_ phase: String, through member: LocalMember) async throws {
                    let client = try await cluster.client(member)
                    for index in 0..<20 {
                        let key = "upgrade/\(phase)/\(index)"
                        _ = try await client.put(key, "\(phase)-\(index)", timeout: .seconds(10))
                        written[key] = "\(phase)-\(index)"
                    }
                }
                try await write("before", through: cluster.members[0])

                // The runbook: one member at a time, the leader last; each stopped with SIGTERM,
                // started on its data with the new build, and healthy before the next.
                let leader = try await cluster.waitForLeader()
                var upgraded: [LocalMember] = []
                for member in cluster.others(than: leader) + [leader] {
                    #expect(try await cluster.stop(member, signal: SIGTERM) == .exited(0))
                    member.environment = [:]
                    try await write("while-\(member.name)-is-down", through: cluster.others(than: member)[0])
                    try await cluster.restart(member)
                    upgraded.append(member)
                    try await cluster.waitForLeader()
                    try await write("after-\(member.name)", through: member)
                    // Half upgraded, the new build talks to the old one at version 1.
                    for old in cluster.members where !upgraded.contains(where: { $0 === old }) {
                        _ = try await eventually("\(member.name) to speak version 1 with \(old.name)") {
                            try await Self.peerMetrics(of: member, for: old).version == 1 ? () : nil
                        }
                    }
                }
                // Every pair now speaks version 4 and measures round trips.
                for member in cluster.members {
                    for peer in cluster.others(than: member) {
                        _ = try await eventually("\(member.name) to speak version 4 with \(peer.name) and time a round trip") {
                            let metrics = try await Self.peerMetrics(of: member, for: peer)
                            return metrics.version == 4 && metrics.roundTrips >= 1 ? () : nil
                        }
                    }
                }

                // A build two steps ahead (version 5 only) shares no version with this one: its
                // peers refuse it and say why, and the other two carry on.
                let ahead = cluster.members[2]
                try await cluster.stop(ahead, signal: SIGTERM)
                ahead.environment = Self.speaking("5...5")
                try cluster.launch(ahead)
                let others = cluster.others(than: ahead, among: cluster.members)
                try await write("while-\(ahead.name)-is-refused", through: others[0])
                let refusal = "it speaks peer protocol versions 5...5, this member 1...4: no version in common"
                _ = try await eventually("the others to log the refusal", timeout: .seconds(15)) {
                    others.allSatisfy { ChildProcess.read($0.logPath).contains(refusal) } ? () : nil
                }
                #expect(ChildProcess.read(ahead.logPath).contains("this member 5...5: no version in common"))
                #expect(try await Self.peerMetrics(of: others[0], for: ahead).version == 0)
                #expect(ahead.isRunning)

                // The next build (4...5) shares version 4 with this one: it joins, catches up, and
                // every acknowledged write is on every member.
                try await cluster.stop(ahead, signal: SIGTERM)
                ahead.environment = Self.speaking("4...5")
                try await cluster.restart(ahead)
                for peer in others {
                    _ = try await eventually("\(ahead.name) to speak version 4 with \(peer.name)") {
                        try await Self.peerMetrics(of: ahead, for: peer).version == 4 ? () : nil
                    }
                }
                for member in cluster.members {
                    try await Self.expectEveryWrite(written, on: member, in: cluster)
                }
            }
        }
    }
}
