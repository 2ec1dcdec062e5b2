import EtcdWire
import GRPCCore
import SwiftProtobuf
import Synchronization

/// The request metadata that places a write in a Statehouse client session (docs/api.md).
enum WriteSessionHeaders {
    static let session = "statehouse-session"
    static let sequence = "statehouse-sequence"
    static let acknowledged = "statehouse-acknowledged"
    /// The trailer a Statehouse server adds to every lease it grants.
    static let supported = "statehouse-sessions"
}

/// The client's write session: a lease kept alive in the background whose ID, with a sequence
/// number per write, lets a Statehouse server apply each write exactly once however often it is
/// sent (docs/client.md, "Exactly-once writes").
///
/// The session is opened by the first write, with a lease grant: a Statehouse server answers it
/// with the `statehouse-sessions` trailer, so even the first write is deduplicated. An etcd
/// server sends no such trailer (nor `statehouse-session-applied` on writes), and the client
/// then drops the session and writes as an etcd client does.
actor WriteSession {
    /// Whether the cluster applies writes in sessions.
    enum Support: Sendable {
        case unknown, supported, unsupported
    }

    /// One write's place in the session.
    struct Stamp: Sendable {
        var lease: LeaseID
        var sequence: UInt64
        var acknowledged: UInt64

        var metadata: Metadata {
            [
                WriteSessionHeaders.session: "\(lease.rawValue)",
                WriteSessionHeaders.sequence: "\(sequence)",
                WriteSessionHeaders.acknowledged: "\(acknowledged)",
            ]
        }
    }

    /// The session's lease TTL in seconds.
    static let ttl: Int64 = 60

    private(set) var support = Support.unknown
    private var lease: LeaseKeepAlive?
    private var nextSequence: UInt64 = 1
    /// Sequence numbers sent whose answer has not arrived.
    private var outstanding: Set<UInt64> = []
    private var isOpening = false
    private var openingWaiters: [CheckedContinuation<Void, Never>] = []

    /// The next write's stamp, opening a session first if there is none; nil when the cluster
    /// does not apply sessions (the write is sent without one).
    func begin(client: StatehouseClient) async throws -> Stamp? {
        while true {
            if support == .unsupported { return nil }
            if let lease, lease.lost == nil {
                let sequence = nextSequence
                nextSequence += 1
                outstanding.insert(sequence)
                return Stamp(lease: lease.id, sequence: sequence, acknowledged: outstanding.min() ?? sequence)
            }
            if isOpening {
                await withCheckedContinuation { openingWaiters.append($0) }
                continue
            }
            isOpening = true
            defer {
                isOpening = false
                for waiter in openingWaiters { waiter.resume() }
                openingWaiters.removeAll()
            }
            var request = Etcdserverpb_LeaseGrantRequest()
            request.ttl = Self.ttl
            let trailers = TrailerRecorder()
            let grant: Etcdserverpb_LeaseGrantResponse = try await client.unary(
                Methods.leaseGrant, request, policy: .unsentOnly, trailers: trailers)
            if !grant.error.isEmpty { throw StatehouseError(.unknown, grant.error) }
            lease = client.keepAlive(LeaseID(grant.id), ttl: grant.ttl)
            nextSequence = 1
            outstanding.removeAll()
            if trailers.contains(WriteSessionHeaders.supported) {
                support = .supported
            } else if support == .unknown {
                // An etcd server, or one from before sessions: write as etcd's clients do.
                support = .unsupported
                dropLease(client: client)
            }
        }
    }

    /// Records that a write's answer arrived (or that it will never be sent again).
    func end(_ stamp: Stamp) {
        guard lease?.id == stamp.lease else { return }
        outstanding.remove(stamp.sequence)
    }

    /// Forgets a session the server no longer knows (its lease expired): the next write opens
    /// a new one.
    func expire(_ stamp: Stamp) {
        guard lease?.id == stamp.lease else { return }
        lease?.cancel()
        lease = nil
    }

    /// Ends the session and revokes its lease (best effort).
    func close(client: StatehouseClient) async {
        guard let lease else { return }
        self.lease = nil
        lease.cancel()
        var request = Etcdserverpb_LeaseRevokeRequest()
        request.id = lease.id.rawValue
        let _: Etcdserverpb_LeaseRevokeResponse? = try? await client.unary(
            Methods.leaseRevoke, request, policy: .idempotent, timeout: .seconds(1))
    }

    private func dropLease(client: StatehouseClient) {
        guard let lease else { return }
        self.lease = nil
        lease.cancel()
        let id = lease.id
        client.cleanUp { try await $0.revokeLease(id) }
    }
}

extension StatehouseClient {
    /// Sends a write in the client's write session: a failure that leaves its outcome unknown
    /// (the connection closed or timed out after the request was sent) is retried with the same
    /// sequence number, on another endpoint if needed, and the server applies it at most once.
    func sessionWrite<Request: SwiftProtobuf.Message & Sendable, Response: SwiftProtobuf.Message & Sendable>(
        _ method: MethodDescriptor, _ request: Request
    ) async throws -> Response {
        guard configuration.exactlyOnceWrites else { return try await unary(method, request, policy: .unsentOnly) }
        var renewed = false
        var reauthenticated = false
        while true {
            guard let stamp = try await writeSession.begin(client: self) else {
                return try await unary(method, request, policy: .unsentOnly)
            }
            let attempts = SendCounter()
            do {
                let response: Response = try await unary(
                    method, request, policy: .deduplicated, metadata: stamp.metadata,
                    sent: attempts, reauthenticates: false)
                await writeSession.end(stamp)
                return response
            } catch let error as StatehouseError where error.message == "etcdserver: session expired" {
                await writeSession.expire(stamp)
                // Only the first attempt may be sent again in a new session: after an earlier
                // attempt whose answer was lost, whether the write was applied is unknown.
                guard attempts.count <= 1, !renewed else {
                    throw StatehouseError(
                        .sessionLost, "the write session expired while the write was retried: it may or may not have been applied")
                }
                renewed = true
            } catch let error as StatehouseError where !reauthenticated && dropTokenIfRefused(error) {
                // The server refused the credentials and applied nothing; the session records that
                // answer under this sequence number, so the write goes again with the next one.
                await writeSession.end(stamp)
                reauthenticated = true
            } catch {
                await writeSession.end(stamp)
                throw error
            }
        }
    }

    /// Ends the write session, revoking its lease (best effort), so no lease of this client
    /// outlives it by its TTL.
    func closeWriteSession() async {
        await writeSession.close(client: self)
    }
}

/// Collects the trailing metadata of a call.
final class TrailerRecorder: Sendable {
    private let names = Synchronization.Mutex<Set<String>>([])

    func record(_ metadata: Metadata) {
        names.withLock { names in
            for (key, _) in metadata { names.insert(key.lowercased()) }
        }
    }

    func contains(_ name: String) -> Bool { names.withLock { $0.contains(name) } }
}
