import EtcdWire
import Foundation
import GRPCStatus
import Glibc
import Testing

extension LocalClusterTests {
    /// Membership changes through the Cluster service: a member added as a learner joins with
    /// `--initial-cluster-state existing`, catches up, is promoted and serves; a dead member is
    /// removed. The promotion and the removal are asked of followers, which forward them to the
    /// leader (its refusals cross the peer link as the member's error) and answer once applied.
    @Suite("Membership")
    struct MembershipTests {
        @Test("An added learner catches up and is promoted through a follower, and a dead member is removed through a follower")
        func addedLearnerCatchesUpIsPromotedAndADeadMemberIsRemoved() async throws {
            try await withCluster { cluster in
                let original = cluster.members
                let leader = try await cluster.waitForLeader()
                let leaderClient = try await cluster.client(leader)
                try await putMany(leaderClient, prefix: "before-join/", 0..<100)

                // etcd refuses to add a member until every member has been connected for a while
                // ("unhealthy cluster"); retry that refusal only.
                let joining = try cluster.makeJoiningMember(name: "n4")
                let added = try await eventually("MemberAdd to be accepted", timeout: .seconds(20), interval: .milliseconds(500)) {
                    do {
                        return try await leaderClient.memberAdd(peerURLs: [joining.peerURL], isLearner: true)
                    } catch let error as GRPCCallError where error.message.contains("unhealthy cluster") {
                        return nil
                    }
                }
                #expect(added.member.peerUrls == [joining.peerURL])
                #expect(added.member.isLearner)
                #expect(added.members.count == 4, "\(added.members)")
                let newID = added.member.id
                #expect(newID != 0)

                // The new member's --initial-cluster lists every member, as etcdctl member add prints it.
                joining.initialCluster = added.members.map { member in
                    let name = member.id == newID ? joining.name : member.name
                    return member.peerUrls.map { "\(name)=\($0)" }.joined(separator: ",")
                }.joined(separator: ",")
                try cluster.launch(joining)
                try await eventually("n4 to run as a learner and catch up", timeout: .seconds(30)) {
                    guard joining.isRunning else { throw LocalCluster.MemberExited(joining) }
                    let target = try await leaderClient.status().raftIndex
                    let status = try await cluster.client(joining).status(timeout: .seconds(2))
                    return status.isLearner && status.raftAppliedIndex >= target ? () : nil
                }
                joining.id = newID
                let learnerCopy = try await cluster.client(joining).get("before-join/", prefix: true, serializable: true)
                #expect(learnerCopy.kvs.count == 100, "the learner's local copy")

                // Promotion is refused until the learner is in sync; retry that refusal only. A
                // follower forwards it: the leader's refusal reaches the client as etcd words it,
                // and the answer lists the promoted member as the follower has applied it.
                let follower = try await cluster.client(original.first { $0 !== leader }!)
                let promoted = try await eventually("MemberPromote to succeed", timeout: .seconds(20), interval: .milliseconds(200)) {
                    do {
                        return try await follower.memberPromote(id: newID)
                    } catch let error as GRPCCallError where error.message.contains("in sync with leader") {
                        return nil
                    }
                }
                #expect(promoted.members.first { $0.id == newID }?.isLearner == false, "\(promoted.members)")
                try await cluster.waitUntilHealthy([joining])
                try await cluster.client(joining).put("after-join/written-through-n4", "yes")
                for member in cluster.members {
                    let value = try await cluster.client(member).value(of: "after-join/written-through-n4")
                    #expect(value == "yes", "linearizable read on \(member.name)")
                }
                let list = try await eventually("n4 to publish its name and client URL") {
                    let list = try await leaderClient.memberList()
                    return list.members.contains { $0.id == newID && $0.name == "n4" } ? list : nil
                }
                #expect(list.members.count == 4)
                #expect(list.members.first { $0.id == newID }?.clientUrls == [joining.clientURL])
                #expect(list.members.allSatisfy { !$0.isLearner }, "\(list.members)")

                // With four voters, one dead member leaves a quorum; then it is removed.
                let victim = original.first { $0 !== leader }!
                try await cluster.stop(victim, signal: SIGKILL)
                let survivors = cluster.members.filter { $0 !== victim }
                let currentLeader = try await cluster.waitForLeader(among: survivors)
                let removed = try await cluster.client(survivors.first { $0 !== currentLeader }!).memberRemove(id: victim.id)
                #expect(Set(removed.members.map(\.id)) == Set(survivors.map(\.id)), "\(removed.members)")
                for member in survivors {
                    let members = try await cluster.client(member).memberList().members
                    #expect(!members.contains { $0.id == victim.id }, "\(member.name) still lists \(victim.name)")
                }
                try await putMany(try await cluster.client(joining), prefix: "after-remove/", 0..<20)
                for member in survivors {
                    let response = try await cluster.client(member).get("after-remove/", prefix: true)
                    #expect(response.kvs.count == 20, "linearizable read on \(member.name) after the removal")
                }
            }
        }
    }
}
