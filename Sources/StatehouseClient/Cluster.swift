import EtcdWire

/// A member of the cluster.
public struct ClusterMember: Sendable, Hashable {
    public var id: UInt64
    /// The member's name (empty until a member added with MemberAdd has started).
    public var name: String
    public var peerURLs: [String]
    public var clientURLs: [String]
    public var isLearner: Bool

    /// The ID in hexadecimal, as etcdctl prints it.
    public var idString: String { String(id, radix: 16) }

    init(_ member: Etcdserverpb_Member) {
        id = member.id
        name = member.name
        peerURLs = member.peerUrls
        clientURLs = member.clientUrls
        isLearner = member.isLearner
    }
}

/// The members after a change, and the member added.
public struct MemberChange: Sendable, Hashable {
    public var header: ResponseHeader
    /// The member added (MemberAdd only).
    public var member: ClusterMember?
    /// Every member after the change.
    public var members: [ClusterMember]
}

extension StatehouseClient {
    /// Every member of the cluster.
    public func members() async throws -> [ClusterMember] {
        let response: Etcdserverpb_MemberListResponse = try await unary(
            Methods.memberList, Etcdserverpb_MemberListRequest(), policy: .idempotent)
        return response.members.map(ClusterMember.init)
    }

    /// Adds a member with `peerURLs`, as a non-voting learner if `isLearner`.
    public func addMember(peerURLs: [String], isLearner: Bool = false) async throws -> MemberChange {
        var request = Etcdserverpb_MemberAddRequest()
        request.peerUrls = peerURLs
        request.isLearner = isLearner
        let response: Etcdserverpb_MemberAddResponse = try await unary(Methods.memberAdd, request, policy: .unsentOnly)
        return MemberChange(
            header: ResponseHeader(response.header), member: response.hasMember ? ClusterMember(response.member) : nil,
            members: response.members.map(ClusterMember.init))
    }

    /// Removes the member `id`.
    @discardableResult
    public func removeMember(_ id: UInt64) async throws -> MemberChange {
        var request = Etcdserverpb_MemberRemoveRequest()
        request.id = id
        let response: Etcdserverpb_MemberRemoveResponse = try await unary(
            Methods.memberRemove, request, policy: .unsentOnly)
        return MemberChange(header: ResponseHeader(response.header), member: nil, members: response.members.map(ClusterMember.init))
    }

    /// Replaces the peer URLs of member `id`.
    @discardableResult
    public func updateMember(_ id: UInt64, peerURLs: [String]) async throws -> MemberChange {
        var request = Etcdserverpb_MemberUpdateRequest()
        request.id = id
        request.peerUrls = peerURLs
        let response: Etcdserverpb_MemberUpdateResponse = try await unary(
            Methods.memberUpdate, request, policy: .unsentOnly)
        return MemberChange(header: ResponseHeader(response.header), member: nil, members: response.members.map(ClusterMember.init))
    }

    /// Promotes the learner `id` to a voting member (it must have caught up with the leader).
    @discardableResult
    public func promoteMember(_ id: UInt64) async throws -> MemberChange {
        var request = Etcdserverpb_MemberPromoteRequest()
        request.id = id
        let response: Etcdserverpb_MemberPromoteResponse = try await unary(
            Methods.memberPromote, request, policy: .unsentOnly)
        return MemberChange(header: ResponseHeader(response.header), member: nil, members: response.members.map(ClusterMember.init))
    }
}
