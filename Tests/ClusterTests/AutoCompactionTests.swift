import EtcdWire
import Foundation
import GRPCStatus
import Testing

extension LocalClusterTests {
    /// `--auto-compaction-mode` and `--auto-compaction-retention` on real members.
    @Suite("Auto-compaction")
    struct AutoCompactionTests {
        /// With a 2 s periodic retention the leader compacts on its own: a read at the first put's
        /// revision is refused as compacted on every member, the latest values stay, and the
        /// compaction revision is no newer than the history of the last 2 s.
        @Test("A cluster with --auto-compaction-retention=2s compacts its history on its own")
        func periodicRetention() async throws {
            try await withCluster(arguments: ["--auto-compaction-mode=periodic", "--auto-compaction-retention=2s"]) { cluster in
                let client = try await cluster.client(try await cluster.waitForLeader())
                let first = try await client.put("auto/key", "v0").header.revision
                var latest = first
                for index in 1...5 { latest = try await client.put("auto/key", "v\(index)").header.revision }
                let keptSince = ContinuousClock.now
                for member in cluster.members {
                    let memberClient = try await cluster.client(member)
                    let refused: GRPCCallError = try await eventually(
                        "\(member.name) to refuse revision \(first) as compacted", timeout: .seconds(20)
                    ) {
                        do {
                            _ = try await memberClient.get("auto/key", serializable: true, revision: first)
                            return nil
                        } catch let error as GRPCCallError where error.code == .outOfRange {
                            return error
                        }
                    }
                    #expect(refused.message == "etcdserver: mvcc: required revision has been compacted")
                    #expect(try await memberClient.value(of: "auto/key", serializable: true) == "v5")
                }
                #expect(ContinuousClock.now - keptSince >= .seconds(1), "compacted before a retention could pass")
                // Writes keep their history for a retention: a fresh revision is still readable.
                let fresh = try await client.put("auto/other", "x").header.revision
                let read = try await client.get("auto/key", revision: fresh)
                #expect(read.kvs.first.map { String(decoding: $0.value, as: UTF8.self) } == "v5")
                #expect(latest < fresh)
            }
        }
    }
}
