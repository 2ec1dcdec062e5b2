import Primitives
import RaftCore
import StateMachine
import Testing

@testable import ReplicatedMember

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Client writes survive leader changes: they wait for a leader instead of failing, and a write
/// whose proposal provably cannot commit any more is proposed again, never answered twice or
/// applied twice.
@Suite("Member failover")
struct FailoverMemberTests {
    private static func put(_ key: String, _ value: String) -> ClientRequest {
        .write(.put(PutRequest(key: bytes(key), value: bytes(value))))
    }

    /// How many revisions wrote `key` on `member` (its version).
    private static func version(of key: String, on member: Member) -> Int64 {
        (try? member.store.range(RangeRequest(key: bytes(key))))?.kvs.first?.version ?? 0
    }

    @Test("a write submitted while no leader is known waits for one instead of failing")
    func writeWaitsForALeader() throws {
        var harness = MemberHarness(voters: [1, 2, 3])
        let id = harness.nextRequest
        harness.nextRequest += 1
        #expect(harness.members[2]!.submit(Self.put("a", "1"), id: id) == nil, "answered at once without a leader")
        harness.elect(1)
        guard case .write? = harness.responses[id] else {
            Issue.record("unexpected \(String(describing: harness.responses[id]))")
            return
        }
        #expect(Self.version(of: "a", on: harness.members[3]!) == 1)
    }

    @Test("a write parked without a leader fails with \"no leader\" after two election timeouts")
    func parkedWriteGivesUp() throws {
        var harness = MemberHarness(voters: [1, 2, 3]) { $0.raft.preVote = true }
        // Member 2 alone: it can never learn of a leader.
        var lonely = harness.members.removeValue(forKey: 2)!
        #expect(lonely.submit(Self.put("a", "1"), id: 1) == nil)
        var answer: ClientResponse?
        for _ in 0..<(2 * lonely.configuration.raft.electionTicks + 1) where answer == nil {
            lonely.tick()
            while lonely.hasBatch {
                _ = lonely.startBatch()
                answer = lonely.finishBatch().responses.first { $0.0 == 1 }?.1 ?? answer
            }
        }
        #expect(answer == .failure(.noLeader))
    }

    @Test("a write forwarded to a leader that died is proposed again to its successor and applied once")
    func lostForwardIsProposedAgain() throws {
        var harness = MemberHarness(voters: [1, 2, 3])
        harness.elect(1)
        _ = harness.call(Self.put("warm", "up"), at: 2)
        // The leader dies: what member 2 forwards to it is lost.
        harness.members[1] = nil
        let id = harness.nextRequest
        harness.nextRequest += 1
        #expect(harness.members[2]!.submit(Self.put("k", "v"), id: id) == nil)
        harness.settle()
        #expect(harness.responses[id] == nil)
        harness.tick(4 * harness.members[2]!.configuration.raft.electionTicks)
        guard case .write? = harness.responses[id] else {
            Issue.record("the forwarded write was not proposed again: \(String(describing: harness.responses[id]))")
            return
        }
        for member in harness.members.values { #expect(Self.version(of: "k", on: member) == 1) }
    }

    @Test("a leader's write whose log slot another leader took is proposed again and applied once")
    func displacedWriteIsProposedAgain() throws {
        var harness = MemberHarness(voters: [1, 2, 3])
        harness.elect(1)
        _ = harness.call(Self.put("warm", "up"), at: 1)
        // Member 1 is cut off right after appending a write; 2 and 3 elect a new leader.
        var old = harness.members.removeValue(forKey: 1)!
        let id = harness.nextRequest
        harness.nextRequest += 1
        #expect(old.submit(Self.put("k", "v"), id: id) == nil)
        _ = old.startBatch()
        _ = old.finishBatch()
        harness.tick(4 * old.configuration.raft.electionTicks)
        let successor = try #require(harness.members.values.first { $0.raft.role == .leader }?.id)
        _ = harness.call(Self.put("other", "x"), at: successor)
        // Member 1 comes back: its entry is overwritten, and the write goes to the new leader.
        harness.members[1] = old
        harness.tick(2)
        guard case .write? = harness.responses[id] else {
            Issue.record("the displaced write was not proposed again: \(String(describing: harness.responses[id]))")
            return
        }
        for member in harness.members.values { #expect(Self.version(of: "k", on: member) == 1) }
    }
}
