import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import Logging
import Metrics
import Primitives
import ServiceLifecycle
import SwiftProtobuf
import Synchronization

/// How a ``StatehouseClient`` connects, retries and times out.
public struct StatehouseClientConfiguration: Sendable {
    /// The servers to call. Calls go to one endpoint at a time and move on when it fails.
    public var endpoints: [Endpoint]
    /// The deadline of each call, retries included.
    public var requestTimeout: Duration = .seconds(5)
    /// How many times a retryable call is tried in all (on different endpoints where possible).
    public var maxAttempts: Int = 6
    /// The first retry waits up to this long (full jitter), doubling each time.
    public var retryBaseDelay: Duration = .milliseconds(50)
    /// No retry waits longer than this.
    public var retryMaxDelay: Duration = .seconds(1)
    /// Consecutive failures after which an endpoint is skipped (its circuit breaker opens).
    public var circuitBreakerThreshold: Int = 3
    /// How long an open circuit breaker skips its endpoint before letting one probe call through.
    public var circuitBreakerCooldown: Duration = .seconds(2)
    /// The largest response message accepted (etcd's client default is unlimited; snapshots
    /// arrive in small messages).
    public var maxResponseBytes: Int = 64 << 20
    /// How often the client reads the member list and adds the client URLs of members it does
    /// not know yet to its endpoints (nil: never; ``StatehouseClient/refreshEndpoints()`` does
    /// it on demand).
    public var endpointRefreshInterval: Duration?
    /// TLS to every endpoint (etcdctl's `--cacert`, `--cert`, `--key`); nil speaks TLS only to
    /// `https://` endpoints, verifying them against the system's authorities.
    public var tls: StatehouseClientTLS?
    /// Whether puts, deletes and writing transactions go through the client's write session, so
    /// that one whose answer was lost is retried and applied exactly once (on Statehouse; etcd
    /// ignores sessions, and the client then writes without one). See docs/client.md.
    public var exactlyOnceWrites: Bool = true
    /// The user and password to authenticate with, for clusters with authentication enabled
    /// (etcdctl's `--user`); nil sends no credentials.
    public var credentials: StatehouseCredentials?

    /// A configuration for `endpoints` with the defaults above.
    public init(endpoints: [Endpoint]) {
        self.endpoints = endpoints
    }

    /// A configuration for endpoints written as etcdctl takes them (`http://host:port`,
    /// `host:port`), separated by commas or given one by one.
    ///
    /// - Throws: ``StatehouseError`` with code `invalidArgument` naming the bad endpoint.
    public init(endpoints: [String]) throws {
        var parsed: [Endpoint] = []
        for text in endpoints.flatMap({ $0.split(separator: ",").map(String.init) }) {
            guard let endpoint = Endpoint(text) else {
                throw StatehouseError(
                    .invalidArgument, "bad endpoint \"\(text)\": expected http://host:port, https://host:port or host:port")
            }
            parsed.append(endpoint)
        }
        guard !parsed.isEmpty else { throw StatehouseError(.invalidArgument, "no endpoints given") }
        self.init(endpoints: parsed)
    }
}

/// A client of a Statehouse (or etcd v3) cluster.
///
/// For a scoped lifetime use ``withStatehouseClient(configuration:logger:metricsFactory:_:)``.
/// A long-lived client is created with ``init(configuration:logger:metricsFactory:)`` and
/// served by ``run()``; it is a swift-service-lifecycle `Service`, so it can run in a
/// `ServiceGroup`, which shuts it down gracefully. Calls made before `run()` starts wait for it. Background work (watches, keep-alives) runs inside `run()`, so
/// nothing outlives the client.
public final class StatehouseClient: Sendable {
    /// The configuration the client was created with.
    public let configuration: StatehouseClientConfiguration
    let logger: Logger
    private let connectionList: Synchronization.Mutex<[EndpointConnection]>
    let background = BackgroundTasks()
    let metrics: ClientMetrics
    let writeSession = WriteSession()
    private let pinned = Atomic<Int>(0)
    private let random = Synchronization.Mutex(SeededGenerator(seed: UInt64.random(in: 0...UInt64.max)))
    private let shutDown = Atomic<Bool>(false)
    /// The auth token of the configured credentials; nil without credentials.
    let tokens: AuthTokenSource?

    /// Creates a client; no connection is made until ``run()`` starts.
    ///
    /// - Parameters:
    ///   - configuration: Endpoints, deadlines and retry settings.
    ///   - logger: Where the client logs endpoint failures, retries and lost sessions.
    ///   - metricsFactory: Where call counters and latencies go (the global factory by default).
    public init(
        configuration: StatehouseClientConfiguration,
        logger: Logger = Logger(label: "statehouse.client"),
        metricsFactory: (any MetricsFactory)? = nil
    ) throws {
        guard !configuration.endpoints.isEmpty else {
            throw StatehouseError(.invalidArgument, "no endpoints given")
        }
        self.configuration = configuration
        self.logger = logger
        let metrics = ClientMetrics(factory: metricsFactory ?? MetricsSystem.factory)
        self.metrics = metrics
        let tokens = configuration.credentials.map { _ in AuthTokenSource() }
        self.tokens = tokens
        self.connectionList = Synchronization.Mutex(
            try configuration.endpoints.map { endpoint in
                try EndpointConnection(
                    endpoint: endpoint, configuration: configuration, tokens: tokens, failures: metrics.endpointFailures)
            })
        if let tokens, let credentials = configuration.credentials {
            tokens.setAuthenticate { [weak self] in
                guard let self else { throw StatehouseError(.unavailable, "the client is shut down") }
                return try await self.authenticate(credentials)
            }
        }
    }

    /// The connections to the endpoints, the configured ones first, then those
    /// ``refreshEndpoints()`` added.
    var connections: [EndpointConnection] { connectionList.withLock { $0 } }

    /// Adds a connection to `endpoint` unless there is one; returns it if it is new.
    func addConnection(to endpoint: Endpoint) throws -> EndpointConnection? {
        try connectionList.withLock { connections in
            guard !connections.contains(where: { $0.endpoint == endpoint }) else { return nil }
            let connection = try EndpointConnection(
                endpoint: endpoint, configuration: configuration, tokens: tokens, failures: metrics.endpointFailures)
            connections.append(connection)
            return connection
        }
    }

    /// Runs the connections and the client's background work until ``shutdown()`` is called
    /// (then in-flight calls finish), a graceful shutdown is triggered (in a `ServiceGroup`:
    /// the same as `shutdown()`), or the calling task is cancelled (then everything stops).
    public func run() async throws {
        startRefreshingEndpoints()
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                for connection in connections {
                    group.addTask { try await connection.grpc.runConnections() }
                }
                group.addTask { await self.background.run() }
            }
        } onGracefulShutdown: {
            self.shutdown()
        }
    }

    /// Stops the client: background work (watches, keep-alives) is cancelled, calls in flight
    /// finish, new calls fail with `unavailable`, and ``run()`` returns.
    public func shutdown() {
        guard !shutDown.exchange(true, ordering: .relaxed) else { return }
        background.close()
        for connection in connections { connection.grpc.beginGracefulShutdown() }
    }

    // MARK: - Calls

    /// Whether a failed call may be sent again.
    enum RetryPolicy: Sendable {
        /// Reads and other calls that change nothing, or change it the same way twice.
        case idempotent
        /// Writes: sent again only if the request never left this client.
        case unsentOnly
        /// Writes in a session the server deduplicates: sent again whenever the endpoint
        /// failed, even after the request left, since the server applies it at most once.
        case deduplicated
    }

    /// Calls `method` with `request`, moving to other endpoints and retrying under `policy`,
    /// all within the configured request timeout. With credentials, a call whose token a server
    /// refuses is sent once more after authenticating again, unless `reauthenticates` is false.
    func unary<Request: SwiftProtobuf.Message & Sendable, Response: SwiftProtobuf.Message & Sendable>(
        _ method: MethodDescriptor, _ request: Request, policy: RetryPolicy, timeout: Duration? = nil,
        metadata: Metadata = [:], endpoint fixed: Endpoint? = nil, trailers: TrailerRecorder? = nil,
        sent attempts: SendCounter? = nil, reauthenticates: Bool = true
    ) async throws -> Response {
        var reauthenticated = !reauthenticates
        let clock = ContinuousClock()
        let deadline = clock.now + (timeout ?? configuration.requestTimeout)
        let started = clock.now
        var attempt = 0
        var lastError: StatehouseError?
        defer { metrics.recordCall(method.method, duration: clock.now - started, failed: lastError != nil) }
        while true {
            if shutDown.load(ordering: .relaxed) {
                lastError = StatehouseError(.unavailable, "the client is shut down")
                throw lastError!
            }
            let remaining = deadline - clock.now
            guard remaining > .zero else {
                lastError = StatehouseError(
                    .deadlineExceeded,
                    "\(method) did not finish within \(timeout ?? configuration.requestTimeout)"
                        + (lastError.map { " (last error: \($0.message))" } ?? ""))
                throw lastError!
            }
            let connection = try fixed.map { try self.connection(for: $0) } ?? chooseConnection()
            let sent = SentFlag()
            do {
                var options = CallOptions.defaults
                options.timeout = remaining
                options.waitForReady = false
                defer { if sent.isSet { attempts?.increment() } }
                let response: Response = try await connection.grpc.unary(
                    request: ClientRequest(message: request, metadata: metadata),
                    descriptor: method,
                    serializer: RecordingSerializer<Request>(sent: sent),
                    deserializer: ProtobufDeserializer<Response>(),
                    options: options
                ) { response in
                    let message = try response.message
                    trailers?.record(response.trailingMetadata)
                    return message
                }
                connection.recordSuccess()
                pin(connection)
                lastError = nil
                return response
            } catch {
                let failure = StatehouseError.from(error)
                lastError = failure
                if failure.code == .cancelled || Task.isCancelled {
                    connection.recordInconclusive()
                    throw StatehouseError(.cancelled, "\(method) was cancelled")
                }
                // A refused token: the server did not act on the call, so it goes again once,
                // with a new token.
                if !reauthenticated, dropTokenIfRefused(failure) {
                    reauthenticated = true
                    logger.debug("authenticating again", metadata: ["method": "\(method)", "error": "\(failure)"])
                    continue
                }
                if failure.isEndpointFailure {
                    connection.recordFailure()
                    logger.debug(
                        "call failed on endpoint",
                        metadata: ["method": "\(method)", "endpoint": "\(connection.endpoint)", "error": "\(failure)"])
                }
                let retryable: Bool
                switch policy {
                case .idempotent:
                    retryable = failure.grpcCode == .unavailable || failure.code == .unavailable
                case .unsentOnly:
                    retryable = !sent.isSet && failure.isEndpointFailure
                case .deduplicated:
                    retryable = failure.grpcCode == .unavailable || failure.code == .unavailable || failure.code == .timeout
                }
                attempt += 1
                guard retryable, attempt < configuration.maxAttempts, fixed == nil || failure.code != .unavailable
                else { throw failure }
                let pause = nextDelay(attempt: attempt - 1)
                guard clock.now + pause < deadline else { throw failure }
                metrics.retries.increment()
                logger.debug("retrying", metadata: ["method": "\(method)", "attempt": "\(attempt)"])
                try await Task.sleep(for: pause)
            }
        }
    }

    /// The wait before retry `attempt`: exponential backoff with full jitter.
    func nextDelay(attempt: Int) -> Duration {
        let backoff = Backoff(base: configuration.retryBaseDelay, maximum: configuration.retryMaxDelay)
        return random.withLock { backoff.delay(attempt: attempt, using: &$0) }
    }

    /// The endpoint for the next call: the pinned one (the last that answered) if its breaker
    /// lets calls through, else the next whose breaker does, else the one whose breaker reopens
    /// soonest (every endpoint failed recently: try anyway).
    func chooseConnection() throws -> EndpointConnection {
        let connections = self.connections
        let count = connections.count
        let start = pinned.load(ordering: .relaxed)
        let now = ContinuousClock.now
        for offset in 0..<count {
            let index = (start + offset) % count
            if connections[index].admit(now: now) {
                if offset > 0 { pinned.store(index, ordering: .relaxed) }
                return connections[index]
            }
        }
        let next = (start + 1) % count
        pinned.store(next, ordering: .relaxed)
        return connections[next]
    }

    /// Marks a connection as the preferred one.
    func pin(_ connection: EndpointConnection) {
        let connections = self.connections
        if let index = connections.firstIndex(where: { $0 === connection }) {
            pinned.store(index, ordering: .relaxed)
        }
    }

    /// Moves the preference past `connection` (after a streaming call failed on it).
    func skip(_ connection: EndpointConnection) {
        let connections = self.connections
        if let index = connections.firstIndex(where: { $0 === connection }) {
            pinned.store((index + 1) % connections.count, ordering: .relaxed)
        }
    }

    func connection(for endpoint: Endpoint) throws -> EndpointConnection {
        guard let connection = connections.first(where: { $0.endpoint == endpoint }) else {
            throw StatehouseError(.invalidArgument, "\(endpoint) is not one of the client's endpoints")
        }
        return connection
    }

    /// Whether ``shutdown()`` has been called.
    var isShutDown: Bool { shutDown.load(ordering: .relaxed) }
}

/// Creates a client, runs it for the duration of `body`, and shuts it down when `body` returns
/// or throws. Nothing the client started outlives this call.
///
/// ```swift
/// try await withStatehouseClient(endpoints: ["127.0.0.1:2379"]) { client in
///     try await client.put("greeting", "hello")
/// }
/// ```
public func withStatehouseClient<Result: Sendable>(
    configuration: StatehouseClientConfiguration,
    logger: Logger = Logger(label: "statehouse.client"),
    metricsFactory: (any MetricsFactory)? = nil,
    _ body: (StatehouseClient) async throws -> Result
) async throws -> Result {
    let client = try StatehouseClient(configuration: configuration, logger: logger, metricsFactory: metricsFactory)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await client.run() }
        do {
            let result = try await body(client)
            await client.closeWriteSession()
            client.shutdown()
            try await group.waitForAll()
            return result
        } catch {
            client.shutdown()
            try? await group.waitForAll()
            throw error
        }
    }
}

/// ``withStatehouseClient(configuration:logger:metricsFactory:_:)`` for endpoints written as
/// etcdctl takes them (`http://127.0.0.1:2379`, `127.0.0.1:2379`).
public func withStatehouseClient<Result: Sendable>(
    endpoints: [String],
    logger: Logger = Logger(label: "statehouse.client"),
    _ body: (StatehouseClient) async throws -> Result
) async throws -> Result {
    try await withStatehouseClient(configuration: StatehouseClientConfiguration(endpoints: endpoints), logger: logger, body)
}

/// One endpoint's gRPC connection and circuit breaker.
final class EndpointConnection: Sendable {
    let endpoint: Endpoint
    let grpc: GRPCClient<HTTP2ClientTransport.Posix>
    private let breaker: Synchronization.Mutex<CircuitBreaker>
    private let failures: Counter

    init(
        endpoint: Endpoint, configuration: StatehouseClientConfiguration, tokens: AuthTokenSource?, failures: Counter
    ) throws {
        self.endpoint = endpoint
        self.failures = failures
        breaker = Synchronization.Mutex(
            CircuitBreaker(
                threshold: configuration.circuitBreakerThreshold, cooldown: configuration.circuitBreakerCooldown))
        let isIPv4 = endpoint.host.allSatisfy({ $0.isNumber || $0 == "." })
        let security: HTTP2ClientTransport.Posix.TransportSecurity
        if let tls = configuration.tls {
            security = .tls(tls.transportConfiguration)
        } else {
            security = endpoint.usesTLS ? .tls(.defaults()) : .plaintext
        }
        let speaksTLS = configuration.tls != nil || endpoint.usesTLS
        let transportConfig = HTTP2ClientTransport.Posix.Config.defaults { config in
            config.backoff = .init(initial: .milliseconds(100), max: .seconds(2), multiplier: 1.6, jitter: 0.2)
            config.connection.keepalive = .init(time: .seconds(10), timeout: .seconds(5), allowWithoutCalls: true)
            // The transport also sends the authority as the TLS server name, where an IP address
            // is not allowed (the handshake then fails before connecting): over TLS to an IP
            // address, the default authority is kept and the certificate is checked against the
            // address itself.
            if !(speaksTLS && isIPv4) { config.http2.authority = endpoint.description }
        }
        let target: any ResolvableTarget =
            isIPv4
            ? .ipv4(address: endpoint.host, port: endpoint.port)
            : .dns(host: endpoint.host, port: endpoint.port)
        let transport = try HTTP2ClientTransport.Posix(target: target, transportSecurity: security, config: transportConfig)
        grpc = GRPCClient(transport: transport, interceptors: tokens.map { [AuthTokenInterceptor(tokens: $0)] } ?? [])
    }

    func admit(now: ContinuousClock.Instant) -> Bool { breaker.withLock { $0.admit(now: now) } }
    func recordSuccess() { breaker.withLock { $0.recordSuccess() } }
    func recordFailure() {
        failures.increment()
        breaker.withLock { $0.recordFailure(now: .now) }
    }
    func recordInconclusive() { breaker.withLock { $0.recordInconclusive(now: .now) } }
}

/// Counts the attempts of a call whose request was handed to the transport.
final class SendCounter: Sendable {
    private let value = Atomic<Int>(0)
    var count: Int { value.load(ordering: .relaxed) }
    func increment() { value.add(1, ordering: .relaxed) }
}

/// Whether a request message was handed to the transport.
final class SentFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

/// Serializes with swift-protobuf and records that it ran: grpc-swift serializes a request only
/// once its stream is open and the message is about to be written, so a call whose serializer
/// never ran provably never reached a server (and a write may be sent again).
struct RecordingSerializer<Message: SwiftProtobuf.Message>: MessageSerializer {
    let sent: SentFlag

    func serialize<Bytes: GRPCContiguousBytes>(_ message: Message) throws -> Bytes {
        sent.set()
        return try ProtobufSerializer<Message>().serialize(message)
    }
}
