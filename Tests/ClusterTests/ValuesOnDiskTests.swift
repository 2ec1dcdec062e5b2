import EtcdWire
import Foundation
import TestSupport
import Testing

extension LocalClusterTests {
    /// A member keeps its key index in memory and its values in RocksDB.
    @Suite("Values on disk")
    struct ValuesOnDiskTests {
        @Test("a member loaded with 20,000 keys of 1 KiB holds no values in memory between batches, before and after a restart")
        func valuesStayOnDisk() async throws {
            try await withCluster(size: 1) { cluster in
                let member = try await cluster.waitForLeader()
                let client = try await cluster.client(member)
                let value = String(repeating: "v", count: 1024)
                // 400 transactions of 50 puts each, 8 at a time.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<8 {
                        group.addTask {
                            for batch in stride(from: worker, to: 400, by: 8) {
                                var txn = Etcdserverpb_TxnRequest()
                                for i in batch * 50..<(batch + 1) * 50 {
                                    var put = Etcdserverpb_PutRequest()
                                    put.key = Data(workloadKey("resident/", i).utf8)
                                    put.value = Data(value.utf8)
                                    var op = Etcdserverpb_RequestOp()
                                    op.requestPut = put
                                    txn.success.append(op)
                                }
                                _ = try await client.txn(txn)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                func residentValueBytes() async throws -> Double? {
                    let (_, text) = try await LocalCluster.httpGet(port: member.clientPort, path: "/metrics")
                    return metricValue("statehouse_mvcc_resident_value_bytes", in: text)
                }
                #expect(try await residentValueBytes() == 0, "20 MiB of values were written; none stays in memory")
                #expect(try await client.value(of: workloadKey("resident/", 12_345)) == value)

                try await cluster.restart(member)
                let restarted = try await cluster.client(member)
                #expect(try await restarted.value(of: workloadKey("resident/", 19_999)) == value)
                #expect(try await residentValueBytes() == 0, "a restart reads the key index, not the values")
            }
        }
    }
}
