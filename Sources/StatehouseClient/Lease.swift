import EtcdWire
import GRPCCore
import GRPCProtobuf
import Logging
import Synchronization

/// A lease's ID.
public struct LeaseID: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: Int64

    public init(rawValue: Int64) {
        self.rawValue = rawValue
    }

    public init(_ rawValue: Int64) {
        self.rawValue = rawValue
    }

    /// The ID in hexadecimal, as etcdctl prints it.
    public var description: String { String(UInt64(bitPattern: rawValue), radix: 16) }
}

/// A granted lease.
public struct LeaseGrant: Sendable, Hashable {
    public var header: ResponseHeader
    /// The lease's ID.
    public var id: LeaseID
    /// The TTL the server granted, in seconds (it may raise a TTL below its minimum).
    public var ttl: Int64
}

/// What a lease has left.
public struct LeaseTimeToLive: Sendable, Hashable {
    public var header: ResponseHeader
    public var id: LeaseID
    /// Seconds left; -1 if the lease does not exist (expired or revoked).
    public var ttl: Int64
    /// The TTL the lease was granted with.
    public var grantedTTL: Int64
    /// The keys attached to the lease, if asked for.
    public var keys: [[UInt8]]
}

extension StatehouseClient {
    /// Grants a lease of `ttl` seconds (and `id`, if given; 0 lets the server choose).
    ///
    /// A grant is sent again only when it provably never reached a server, so a retry never
    /// leaves a second lease behind.
    public func grantLease(ttl: Int64, id: LeaseID? = nil) async throws -> LeaseGrant {
        var request = Etcdserverpb_LeaseGrantRequest()
        request.ttl = ttl
        request.id = id?.rawValue ?? 0
        let response: Etcdserverpb_LeaseGrantResponse = try await unary(Methods.leaseGrant, request, policy: .unsentOnly)
        if !response.error.isEmpty { throw StatehouseError(.unknown, response.error) }
        return LeaseGrant(header: ResponseHeader(response.header), id: LeaseID(response.id), ttl: response.ttl)
    }

    /// Revokes a lease: the keys attached to it are deleted.
    @discardableResult
    public func revokeLease(_ id: LeaseID) async throws -> ResponseHeader {
        var request = Etcdserverpb_LeaseRevokeRequest()
        request.id = id.rawValue
        let response: Etcdserverpb_LeaseRevokeResponse = try await unary(Methods.leaseRevoke, request, policy: .idempotent)
        return ResponseHeader(response.header)
    }

    /// How long a lease has left (TTL -1 if it no longer exists), and its keys if `keys` is set.
    public func leaseTimeToLive(_ id: LeaseID, keys: Bool = false) async throws -> LeaseTimeToLive {
        var request = Etcdserverpb_LeaseTimeToLiveRequest()
        request.id = id.rawValue
        request.keys = keys
        let response: Etcdserverpb_LeaseTimeToLiveResponse = try await unary(
            Methods.leaseTimeToLive, request, policy: .idempotent)
        return LeaseTimeToLive(
            header: ResponseHeader(response.header), id: LeaseID(response.id), ttl: response.ttl,
            grantedTTL: response.grantedTtl, keys: response.keys.map { Array($0) })
    }

    /// The IDs of every lease.
    public func leases() async throws -> [LeaseID] {
        let response: Etcdserverpb_LeaseLeasesResponse = try await unary(
            Methods.leaseLeases, Etcdserverpb_LeaseLeasesRequest(), policy: .idempotent)
        return response.leases.map { LeaseID($0.id) }
    }

    /// Renews a lease once (one round on the LeaseKeepAlive stream); returns the granted TTL,
    /// or 0 if the lease no longer exists.
    public func renewLease(_ id: LeaseID) async throws -> Int64 {
        let connection = try chooseConnection()
        var options = CallOptions.defaults
        options.timeout = configuration.requestTimeout
        options.waitForReady = false
        // The request side stays open until the answer arrives (as etcd's KeepAliveOnce does): a
        // server may end the call when the client half-closes, before answering.
        let answered = Signal<Void>()
        do {
            return try await connection.grpc.bidirectionalStreaming(
                request: StreamingClientRequest(of: Etcdserverpb_LeaseKeepAliveRequest.self) { writer in
                    var request = Etcdserverpb_LeaseKeepAliveRequest()
                    request.id = id.rawValue
                    try await writer.write(request)
                    _ = await answered.wait()
                },
                descriptor: Methods.leaseKeepAlive,
                serializer: ProtobufSerializer<Etcdserverpb_LeaseKeepAliveRequest>(),
                deserializer: ProtobufDeserializer<Etcdserverpb_LeaseKeepAliveResponse>(),
                options: options
            ) { response in
                defer { answered.fire(()) }
                for try await message in response.messages { return message.ttl }
                throw StatehouseError(.unavailable, "the keep-alive stream ended without an answer")
            }
        } catch {
            let failure = StatehouseError.from(error)
            if failure.isEndpointFailure { connection.recordFailure() }
            _ = dropTokenIfRefused(failure)
            throw failure
        }
    }

    /// Keeps a lease alive in the background (a renewal every third of its TTL, over a
    /// LeaseKeepAlive stream that moves to another endpoint when one fails) until the handle
    /// is cancelled, the client shuts down, or the lease is lost.
    ///
    /// - Parameters:
    ///   - id: The lease.
    ///   - ttl: The lease's TTL in seconds (as granted).
    public func keepAlive(_ id: LeaseID, ttl: Int64) -> LeaseKeepAlive {
        let keepAlive = LeaseKeepAlive(id: id, ttl: ttl)
        let task = background.spawn { [self] in
            await keepAlive.run(client: self)
        }
        if let task {
            keepAlive.attach(task)
        } else {
            keepAlive.lose(.clientShutDown)
        }
        return keepAlive
    }
}

/// Why a kept-alive lease is no longer kept alive.
public enum LeaseLoss: Sendable, Hashable {
    /// The server answered that the lease does not exist (it expired or was revoked).
    case expiredOrRevoked
    /// No renewal succeeded before the lease's TTL ran out (the cluster was unreachable).
    case renewalsFailed
    /// The keep-alive was cancelled by its owner.
    case cancelled
    /// The client shut down.
    case clientShutDown
}

/// A lease being kept alive in the background by ``StatehouseClient/keepAlive(_:ttl:)``.
public final class LeaseKeepAlive: Sendable {
    /// The lease.
    public let id: LeaseID
    /// The TTL the lease was granted with, in seconds.
    public let ttl: Int64
    private let loss = Signal<LeaseLoss>()
    private let task = Synchronization.Mutex<BackgroundTask?>(nil)
    private let lastRenewal = Synchronization.Mutex<ContinuousClock.Instant>(.now)

    init(id: LeaseID, ttl: Int64) {
        self.id = id
        self.ttl = ttl
    }

    /// Why the lease is no longer kept alive; nil while it is.
    public var lost: LeaseLoss? { loss.value }

    /// Waits until the lease is no longer kept alive and returns why (nil if the waiting task
    /// is cancelled first).
    public func waitUntilLost() async -> LeaseLoss? { await loss.wait() }

    /// Stops renewing (the lease itself stays until its TTL runs out; revoke it to end it now).
    public func cancel() {
        lose(.cancelled)
    }

    func attach(_ task: BackgroundTask) {
        let cancelNow = self.task.withLock { slot in
            slot = task
            return loss.value != nil
        }
        if cancelNow { task.cancel() }
    }

    func lose(_ reason: LeaseLoss) {
        guard loss.fire(reason) else { return }
        task.withLock { $0 }?.cancel()
    }

    /// Renews until the lease is lost or the task is cancelled.
    func run(client: StatehouseClient) async {
        let clock = ContinuousClock()
        lastRenewal.withLock { $0 = clock.now }
        let interval = Duration.milliseconds(max(ttl * 1000 / 3, 100))
        var attempt = 0
        while !Task.isCancelled, loss.value == nil {
            let connection: EndpointConnection
            do { connection = try client.chooseConnection() } catch { break }
            do {
                try await stream(on: connection, client: client, interval: interval)
            } catch {
                let failure = StatehouseError.from(error)
                if failure.isEndpointFailure { connection.recordFailure() }
                client.skip(connection)
                // A refused token: the next stream authenticates again.
                _ = client.dropTokenIfRefused(failure)
                client.logger.debug(
                    "lease keep-alive stream failed", metadata: ["lease": "\(id)", "error": "\(failure)"])
            }
            if Task.isCancelled || loss.value != nil { break }
            if clock.now - lastRenewal.withLock({ $0 }) > .seconds(ttl) {
                client.logger.warning("lease lost: no renewal within its TTL", metadata: ["lease": "\(id)"])
                lose(.renewalsFailed)
                break
            }
            let pause = client.nextDelay(attempt: attempt)
            attempt += 1
            try? await Task.sleep(for: pause)
        }
        if Task.isCancelled, loss.value == nil { lose(client.isShutDown ? .clientShutDown : .cancelled) }
    }

    /// One LeaseKeepAlive stream: a request every `interval`, until an error or the lease is
    /// lost.
    private func stream(on connection: EndpointConnection, client: StatehouseClient, interval: Duration) async throws {
        var options = CallOptions.defaults
        options.waitForReady = false
        let id = self.id
        let ttl = self.ttl
        let clock = ContinuousClock()
        try await connection.grpc.bidirectionalStreaming(
            request: StreamingClientRequest(of: Etcdserverpb_LeaseKeepAliveRequest.self) { writer in
                var request = Etcdserverpb_LeaseKeepAliveRequest()
                request.id = id.rawValue
                while !Task.isCancelled {
                    try await writer.write(request)
                    try await Task.sleep(for: interval)
                    // A renewal overdue by a whole TTL means this stream is stuck: give it up.
                    if clock.now - self.lastRenewal.withLock({ $0 }) > .seconds(ttl) {
                        throw StatehouseError(.unavailable, "no keep-alive answer within the lease's TTL")
                    }
                }
            },
            descriptor: Methods.leaseKeepAlive,
            serializer: ProtobufSerializer<Etcdserverpb_LeaseKeepAliveRequest>(),
            deserializer: ProtobufDeserializer<Etcdserverpb_LeaseKeepAliveResponse>(),
            options: options
        ) { response in
            for try await message in response.messages {
                if message.ttl <= 0 {
                    client.logger.warning("lease lost: the server no longer has it", metadata: ["lease": "\(id)"])
                    self.lose(.expiredOrRevoked)
                    return
                }
                connection.recordSuccess()
                self.lastRenewal.withLock { $0 = clock.now }
            }
        }
    }
}
