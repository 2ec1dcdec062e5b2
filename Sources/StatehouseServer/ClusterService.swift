import EtcdMapping
import EtcdWire
import GRPCServer
import GRPCStatus
import NIOCore
import Primitives
import RaftCore
import ReplicatedMember
import ServerConfiguration
import StateMachine

/// `etcdserverpb.Cluster`: the member list, and membership changes through Raft.
struct ClusterService: EtcdService {
    let host: MemberHost
    /// The cluster token, from which new members' IDs are derived (as the new member derives
    /// its own from `--initial-advertise-peer-urls` and `--initial-cluster-token`).
    let token: String

    static func wire(_ member: ClusterMember) -> Etcdserverpb_Member {
        var wire = Etcdserverpb_Member()
        wire.id = member.id
        wire.name = member.name
        wire.peerUrls = member.peerURLs
        wire.clientUrls = member.clientURLs
        wire.isLearner = member.isLearner
        return wire
    }

    func memberList(_ request: Etcdserverpb_MemberListRequest, _ responder: UnaryResponder) {
        let host = self.host
        onLoop(responder) { (done: @escaping @Sendable (Result<Etcdserverpb_MemberListResponse, ServiceError>) -> Void) in
            var response = Etcdserverpb_MemberListResponse()
            response.header = header(host.header, revision: host.member.store.currentRevision)
            response.members = host.member.store.members().map(Self.wire)
            done(.success(response))
        }
    }

    func memberAdd(_ request: Etcdserverpb_MemberAddRequest, _ responder: UnaryResponder) {
        let host = self.host
        let token = self.token
        onLoop(responder, admin: true) { (done: @escaping @Sendable (Result<Etcdserverpb_MemberAddResponse, ServiceError>) -> Void) in
            guard !request.peerUrls.isEmpty, request.peerUrls.allSatisfy({ (try? NetworkAddress(parsing: $0)) != nil }) else {
                return done(.failure(ServiceError(.invalidArgument, "etcdserver: invalid peer URLs \(request.peerUrls)")))
            }
            let members = host.member.store.members()
            if members.contains(where: { !Set($0.peerURLs).isDisjoint(with: request.peerUrls) }) {
                return done(.failure(.peerURLExists))
            }
            let id = ServerConfiguration.memberID(peerURLs: request.peerUrls, token: token)
            if members.contains(where: { $0.id == id }) { return done(.failure(.memberExists)) }
            let record = ClusterMember(id: id, peerURLs: request.peerUrls, isLearner: request.isLearner)
            let change = ConfChange(request.isLearner ? .addLearner : .addVoter, node: id, context: record.encodedAttributes())
            host.submitOnLoop(.confChange(change)) { response, _ in
                if case .failure(let error) = response { return done(.failure(ServiceError(error))) }
                host.loop.execute {
                    var response = Etcdserverpb_MemberAddResponse()
                    response.header = header(host.header, revision: host.member.store.currentRevision)
                    response.member = Self.wire(host.member.store.member(id) ?? record)
                    response.members = host.member.store.members().map(Self.wire)
                    done(.success(response))
                }
            }
        }
    }

    func memberRemove(_ request: Etcdserverpb_MemberRemoveRequest, _ responder: UnaryResponder) {
        let host = self.host
        onLoop(responder, admin: true) { (done: @escaping @Sendable (Result<Etcdserverpb_MemberRemoveResponse, ServiceError>) -> Void) in
            guard host.member.store.member(request.id) != nil else { return done(.failure(.memberNotFound)) }
            host.submitOnLoop(.confChange(ConfChange(.removeNode, node: request.id))) { response, _ in
                if case .failure(let error) = response { return done(.failure(ServiceError(error))) }
                host.loop.execute {
                    var response = Etcdserverpb_MemberRemoveResponse()
                    response.header = header(host.header, revision: host.member.store.currentRevision)
                    response.members = host.member.store.members().map(Self.wire)
                    done(.success(response))
                }
            }
        }
    }

    func memberPromote(_ request: Etcdserverpb_MemberPromoteRequest, _ responder: UnaryResponder) {
        let host = self.host
        onLoop(responder, admin: true) { (done: @escaping @Sendable (Result<Etcdserverpb_MemberPromoteResponse, ServiceError>) -> Void) in
            guard let record = host.member.store.member(request.id) else { return done(.failure(.memberNotFound)) }
            guard record.isLearner else { return done(.failure(.memberNotLearner)) }
            host.submitOnLoop(.confChange(ConfChange(.addVoter, node: request.id))) { response, _ in
                if case .failure(let error) = response { return done(.failure(ServiceError(error))) }
                host.loop.execute {
                    var response = Etcdserverpb_MemberPromoteResponse()
                    response.header = header(host.header, revision: host.member.store.currentRevision)
                    response.members = host.member.store.members().map(Self.wire)
                    done(.success(response))
                }
            }
        }
    }

    func memberUpdate(_ request: Etcdserverpb_MemberUpdateRequest, _ responder: UnaryResponder) {
        let host = self.host
        onLoop(responder, admin: true) { (done: @escaping @Sendable (Result<Etcdserverpb_MemberUpdateResponse, ServiceError>) -> Void) in
            guard host.member.store.member(request.id) != nil else { return done(.failure(.memberNotFound)) }
            guard !request.peerUrls.isEmpty, request.peerUrls.allSatisfy({ (try? NetworkAddress(parsing: $0)) != nil }) else {
                return done(.failure(ServiceError(.invalidArgument, "etcdserver: invalid peer URLs \(request.peerUrls)")))
            }
            let change = StateRequest.updateMemberPeerURLs(MemberPeerURLsRequest(id: request.id, peerURLs: request.peerUrls))
            host.submitOnLoop(.write(change)) { response, context in
                if case .failure(let error) = response { return done(.failure(ServiceError(error))) }
                host.loop.execute {
                    var response = Etcdserverpb_MemberUpdateResponse()
                    response.header = header(context, revision: host.member.store.currentRevision)
                    response.members = host.member.store.members().map(Self.wire)
                    done(.success(response))
                }
            }
        }
    }
}
