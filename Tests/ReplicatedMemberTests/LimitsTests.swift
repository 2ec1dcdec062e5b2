import RaftCore
import ReplicatedMember
import StateMachine
import Testing

@Suite("Member limits")
struct MemberLimitsTests {
    @Test("--max-txn-ops: a transaction with more operations fails with etcd's error; one within it commits")
    func transactionOperationLimit() {
        var harness = MemberHarness(voters: [1]) { $0.store.maxTxnOperations = 2 }
        harness.elect(1)
        let puts = (0..<3).map { RequestOp.put(PutRequest(key: Array("k\($0)".utf8))) }
        let refused = harness.call(.write(.txn(TxnRequest(success: puts))), at: 1)
        guard case .failure(.state(let error))? = refused else {
            Issue.record("unexpected \(String(describing: refused))")
            return
        }
        #expect(error == .tooManyOperations)
        #expect(error.description == "etcdserver: too many operations in txn request")
        let accepted = harness.call(.write(.txn(TxnRequest(success: Array(puts.prefix(2))))), at: 1)
        guard case .write(.txn(let response))? = accepted else {
            Issue.record("unexpected \(String(describing: accepted))")
            return
        }
        #expect(response.succeeded)
    }

    @Test("The largest Raft message payload covers a snapshot chunk, an append and any accepted entry")
    func largestMessagePayload() {
        var configuration = MemberConfiguration(id: 1)
        #expect(configuration.maxEntryBytes == 2 * 1_572_864 + (1 << 20))
        #expect(configuration.largestMessagePayload == configuration.maxEntryBytes)
        configuration.raft.maxSnapshotChunkBytes = 16 << 20
        #expect(configuration.largestMessagePayload == 16 << 20)
    }
}
