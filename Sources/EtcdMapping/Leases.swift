public import EtcdWire
import Foundation
public import ReplicatedMember
public import StateMachine

// MARK: - Grant

extension LeaseGrantRequest {
    /// Creates a lease grant request from its wire form (`TTL`, and `ID`, 0 to let the store choose).
    public init(_ wire: Etcdserverpb_LeaseGrantRequest) {
        self.init(ttl: wire.ttl, id: wire.id)
    }
}

extension Etcdserverpb_LeaseGrantRequest {
    /// Creates the wire form of a lease grant request.
    public init(_ request: LeaseGrantRequest) {
        self.init()
        ttl = request.ttl
        id = request.id
    }
}

extension Etcdserverpb_LeaseGrantResponse {
    /// Creates the wire answer to a lease grant: the lease ID and the granted TTL, with an empty
    /// `error` (etcd reports grant failures as gRPC errors, not in this field).
    ///
    /// - Parameters:
    ///   - response: The state machine's answer.
    ///   - header: The response header; its revision is normally `response.revision`.
    public init(_ response: LeaseGrantResponse, header: Etcdserverpb_ResponseHeader) {
        self.init()
        self.header = header
        id = response.id
        ttl = response.ttl
    }
}

// MARK: - Revoke

extension LeaseRevokeRequest {
    /// Creates a lease revoke request from its wire form.
    public init(_ wire: Etcdserverpb_LeaseRevokeRequest) {
        self.init(id: wire.id)
    }
}

extension Etcdserverpb_LeaseRevokeRequest {
    /// Creates the wire form of a lease revoke request.
    public init(_ request: LeaseRevokeRequest) {
        self.init()
        id = request.id
    }
}

extension Etcdserverpb_LeaseRevokeResponse {
    /// Creates the wire answer to a lease revocation.
    ///
    /// - Parameters:
    ///   - response: The state machine's answer.
    ///   - header: The response header; its revision is normally `response.revision`.
    public init(_ response: LeaseRevokeResponse, header: Etcdserverpb_ResponseHeader) {
        self.init()
        self.header = header
    }
}

// MARK: - Keep-alive, time-to-live, list

extension ClientRequest {
    /// Creates the member request for a keep-alive message of the `LeaseKeepAlive` stream.
    public init(_ wire: Etcdserverpb_LeaseKeepAliveRequest) {
        self = .leaseKeepAlive(id: wire.id)
    }

    /// Creates the member request for a `LeaseTimeToLive` call.
    public init(_ wire: Etcdserverpb_LeaseTimeToLiveRequest) {
        self = .leaseTimeToLive(id: wire.id, keys: wire.keys)
    }
}

extension Etcdserverpb_LeaseKeepAliveResponse {
    /// Creates the answer to one keep-alive message.
    ///
    /// - Parameters:
    ///   - id: The lease ID.
    ///   - ttl: The renewed TTL in seconds; 0 tells the client the lease does not exist.
    ///   - header: The response header.
    public init(id: Int64, ttl: Int64, header: Etcdserverpb_ResponseHeader) {
        self.init()
        self.header = header
        self.id = id
        self.ttl = ttl
    }
}

extension Etcdserverpb_LeaseTimeToLiveResponse {
    /// Creates the answer to a `LeaseTimeToLive` call.
    ///
    /// - Parameters:
    ///   - id: The lease ID.
    ///   - ttl: The remaining TTL in seconds, or -1 when the lease does not exist.
    ///   - grantedTTL: The TTL the lease was granted with (0 when it does not exist).
    ///   - keys: The keys attached to the lease, if they were asked for.
    ///   - header: The response header.
    public init(id: Int64, ttl: Int64, grantedTTL: Int64, keys: [[UInt8]], header: Etcdserverpb_ResponseHeader) {
        self.init()
        self.header = header
        self.id = id
        self.ttl = ttl
        self.grantedTtl = grantedTTL
        self.keys = keys.map { Data($0) }
    }
}

extension Etcdserverpb_LeaseLeasesResponse {
    /// Creates the answer to a `LeaseLeases` call.
    ///
    /// - Parameters:
    ///   - ids: The IDs of every lease, in the order to report them.
    ///   - header: The response header.
    public init(ids: [Int64], header: Etcdserverpb_ResponseHeader) {
        self.init()
        self.header = header
        leases = ids.map { id in
            var status = Etcdserverpb_LeaseStatus()
            status.id = id
            return status
        }
    }
}
