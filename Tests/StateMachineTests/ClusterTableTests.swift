import Testing

@testable import StateMachine

@Suite("Cluster members and alarms")
struct ClusterTableTests {
    let one = ClusterMember(id: 1, name: "n1", peerURLs: ["http://127.0.0.1:2380"])
    let two = ClusterMember(id: 2, name: "n2", peerURLs: ["http://127.0.0.1:12380"])

    @Test("membership changes, publishing and peer URL updates are kept and survive a restore")
    func membersRoundTrip() throws {
        var store = StateStore()
        _ = store.applyMembership(.addVoter(one))
        _ = store.applyMembership(.addLearner(two))
        _ = try store.apply(.publishMember(MemberAttributesRequest(id: 1, name: "n1", clientURLs: ["http://127.0.0.1:2379"])))
        _ = try store.apply(.updateMemberPeerURLs(MemberPeerURLsRequest(id: 2, peerURLs: ["http://10.0.0.2:2380"])))
        #expect(store.members().map(\.id) == [1, 2])
        #expect(store.member(1)?.clientURLs == ["http://127.0.0.1:2379"])
        #expect(store.member(2)?.isLearner == true)
        #expect(store.member(2)?.peerURLs == ["http://10.0.0.2:2380"])

        // Promotion keeps the learner's attributes.
        _ = store.applyMembership(.addVoter(ClusterMember(id: 2)))
        #expect(store.member(2)?.isLearner == false)
        #expect(store.member(2)?.name == "n2")

        let restored = try StateStore(restoringFrom: store.backendPairs())
        #expect(restored.members() == store.members())
        #expect(restored.backendPairs().map(\.0) == store.backendPairs().map(\.0))

        _ = store.applyMembership(.remove(id: 1))
        #expect(store.members().map(\.id) == [2])
    }

    @Test("a NOSPACE alarm refuses writes that add data until it is disarmed")
    func noSpaceAlarm() throws {
        var store = StateStore()
        _ = store.applyMembership(.addVoter(one))
        _ = try store.apply(.put(PutRequest(key: Array("a".utf8), value: [1])))
        let raised = try store.apply(.alarm(AlarmRequest(action: .activate, memberID: 1, alarm: .noSpace)))
        #expect(raised.response == .cluster(ClusterResponse(revision: 2, alarms: [AlarmMember(memberID: 1, alarm: .noSpace)])))
        #expect(throws: StateError.noSpace) { try store.apply(.put(PutRequest(key: Array("b".utf8), value: [1]))) }
        #expect(throws: StateError.noSpace) { try store.apply(.leaseGrant(LeaseGrantRequest(ttl: 10))) }
        let write = TxnRequest(success: [.put(PutRequest(key: Array("c".utf8), value: []))])
        #expect(throws: StateError.noSpace) { try store.apply(.txn(write)) }
        // Reads, read-only transactions and deletions still work.
        _ = try store.apply(.txn(TxnRequest(success: [.range(RangeRequest(key: Array("a".utf8)))])))
        _ = try store.apply(.deleteRange(DeleteRangeRequest(key: Array("a".utf8))))
        // The alarm is replicated state: it survives a restore.
        #expect(try StateStore(restoringFrom: store.backendPairs()).isOutOfSpace)

        _ = try store.apply(.alarm(AlarmRequest(action: .deactivate, memberID: 0, alarm: .none)))
        #expect(store.alarms().isEmpty)
        _ = try store.apply(.put(PutRequest(key: Array("b".utf8), value: [1])))
    }

    @Test("alarms for members outside the cluster are ignored, as etcd does")
    func alarmForUnknownMember() throws {
        var store = StateStore()
        _ = try store.apply(.alarm(AlarmRequest(action: .activate, memberID: 9, alarm: .noSpace)))
        #expect(store.alarms().isEmpty)
    }
}
