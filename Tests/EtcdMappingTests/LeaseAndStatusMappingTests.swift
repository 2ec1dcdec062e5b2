import EtcdMapping
import EtcdWire
import Foundation
import GRPCStatus
import ReplicatedMember
import StateMachine
import Testing

@Suite("Lease mapping")
struct LeaseMappingTests {
    let h = header(clusterID: 1, memberID: 2, revision: 3, raftTerm: 4)

    @Test func grant() throws {
        var wire = Etcdserverpb_LeaseGrantRequest()
        wire.ttl = 30
        wire.id = 0x1234
        let request = LeaseGrantRequest(wire)
        #expect(request == LeaseGrantRequest(ttl: 30, id: 0x1234))
        #expect(Etcdserverpb_LeaseGrantRequest(request) == wire)

        let response = try throughBytes(
            Etcdserverpb_LeaseGrantResponse(LeaseGrantResponse(revision: 3, id: 0x1234, ttl: 30), header: h))
        #expect(response.header == h)
        #expect(response.id == 0x1234)
        #expect(response.ttl == 30)
        #expect(response.error.isEmpty)
    }

    @Test func revoke() {
        var wire = Etcdserverpb_LeaseRevokeRequest()
        wire.id = 99
        let request = LeaseRevokeRequest(wire)
        #expect(request == LeaseRevokeRequest(id: 99))
        #expect(Etcdserverpb_LeaseRevokeRequest(request) == wire)
        #expect(Etcdserverpb_LeaseRevokeResponse(LeaseRevokeResponse(revision: 3), header: h).header == h)
    }

    @Test func keepAliveAndTimeToLive() throws {
        var keepAlive = Etcdserverpb_LeaseKeepAliveRequest()
        keepAlive.id = 7
        #expect(ClientRequest(keepAlive) == .leaseKeepAlive(id: 7))
        let answer = Etcdserverpb_LeaseKeepAliveResponse(id: 7, ttl: 0, header: h)
        #expect(answer.header == h && answer.id == 7 && answer.ttl == 0)

        var ttl = Etcdserverpb_LeaseTimeToLiveRequest()
        ttl.id = 7
        ttl.keys = true
        #expect(ClientRequest(ttl) == .leaseTimeToLive(id: 7, keys: true))
        let ttlAnswer = try throughBytes(
            Etcdserverpb_LeaseTimeToLiveResponse(id: 7, ttl: 12, grantedTTL: 30, keys: [b("a"), b("b")], header: h))
        #expect(ttlAnswer.header == h)
        #expect(ttlAnswer.id == 7)
        #expect(ttlAnswer.ttl == 12)
        #expect(ttlAnswer.grantedTtl == 30)
        #expect(ttlAnswer.keys == [d("a"), d("b")])

        let missing = Etcdserverpb_LeaseTimeToLiveResponse(id: 8, ttl: -1, grantedTTL: 0, keys: [], header: h)
        #expect(missing.ttl == -1 && missing.keys.isEmpty)
    }

    @Test func leases() throws {
        let response = try throughBytes(Etcdserverpb_LeaseLeasesResponse(ids: [3, 1, 2], header: h))
        #expect(response.header == h)
        #expect(response.leases.map(\.id) == [3, 1, 2])
        #expect(Etcdserverpb_LeaseLeasesResponse(ids: [], header: h).leases.isEmpty)
    }
}

@Suite("Error status mapping")
struct StatusMappingTests {
    @Test func stateMachineErrorsKeepEtcdsCodesAndMessages() {
        let expected: [(StateError, StatusCode, String)] = [
            (.emptyKey, .invalidArgument, "etcdserver: key is not provided"),
            (.keyNotFound, .invalidArgument, "etcdserver: key not found"),
            (.valueProvided, .invalidArgument, "etcdserver: value is provided"),
            (.leaseProvided, .invalidArgument, "etcdserver: lease is provided"),
            (.tooManyOperations, .invalidArgument, "etcdserver: too many operations in txn request"),
            (.duplicateKey, .invalidArgument, "etcdserver: duplicate key given in txn request"),
            (.compacted, .outOfRange, "etcdserver: mvcc: required revision has been compacted"),
            (.futureRevision, .outOfRange, "etcdserver: mvcc: required revision is a future revision"),
            (.leaseNotFound, .notFound, "etcdserver: requested lease not found"),
            (.leaseExists, .failedPrecondition, "etcdserver: lease already exists"),
            (.leaseTTLTooLarge, .outOfRange, "etcdserver: too large lease TTL"),
            (.requestTooLarge, .invalidArgument, "etcdserver: request is too large"),
        ]
        for (error, code, message) in expected {
            #expect(status(for: error) == (code, message))
            #expect(status(for: error as any Error) == (code, message))
            #expect(error.code == code && error.description == message)
        }
    }

    @Test func statusCodeValues() {
        #expect(StatusCode.invalidArgument.rawValue == 3)
        #expect(StatusCode.notFound.rawValue == 5)
        #expect(StatusCode.failedPrecondition.rawValue == 9)
        #expect(StatusCode.outOfRange.rawValue == 11)
    }

    @Test func memberErrorsKeepEtcdsCodesAndMessages() {
        let expected: [(MemberError, StatusCode, String)] = [
            (.noLeader, .unavailable, "etcdserver: no leader"),
            (.notLeader(leader: 2), .unavailable, "etcdserver: not leader"),
            (.leaderChanged, .unavailable, "etcdserver: leader changed"),
            (.tooManyRequests, .resourceExhausted, "etcdserver: too many requests"),
            (
                .timedOutDueToLeaderFailure, .unavailable,
                "etcdserver: request timed out, possibly due to previous leader failure"
            ),
            (.state(.compacted), .outOfRange, "etcdserver: mvcc: required revision has been compacted"),
        ]
        for (error, code, message) in expected {
            #expect(status(for: error) == (code, message))
            #expect(status(for: error as any Error) == (code, message))
        }
    }

    @Test func otherErrors() {
        #expect(status(for: WireRequestError.invalidSortOption) == (.invalidArgument, "etcdserver: invalid sort option"))
        #expect(status(for: WireRequestError.emptyRequestOperation as any Error) == (.invalidArgument, "etcdserver: key not found"))
        #expect(status(for: CancellationError()) == (.cancelled, "etcdserver: request canceled"))

        struct Custom: Error, CustomStringConvertible {
            var description: String { "election: no leader" }
        }
        #expect(status(for: Custom()) == (.unknown, "election: no leader"))
    }
}
