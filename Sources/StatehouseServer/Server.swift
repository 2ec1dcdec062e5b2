import EtcdGateway
import EtcdWire
import Foundation
import GRPCServer
import GRPCStatus
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PeerTransport
import RaftCore
import ReplicatedMember
import ServerConfiguration
import StateMachine
import StorageRocksDB
import Synchronization
import TransportSecurity

/// A Statehouse member process: storage, the member loop, the peer transport, and the client
/// API (etcd's v3 gRPC services plus HTTP health, version and metrics) on every client URL.
public final class StatehouseServer: Sendable {
    /// This build's version.
    public static let version = "0.1.0"
    /// The etcd API version served (reported by Status and `/version`).
    public static let apiVersion = MaintenanceService.apiVersion

    /// The configuration it was started with.
    public let configuration: ServerConfiguration
    let logger: Logger
    let metrics = ServerMetrics()
    let memberGroup: MultiThreadedEventLoopGroup
    let ioGroup: MultiThreadedEventLoopGroup
    let host: MemberHost
    let transport: PeerTransport
    let clientServers: [GRPCServer]
    /// Listeners serving only the HTTP endpoints (`--listen-metrics-urls`).
    let metricsServers: [GRPCServer]

    /// Opens (or creates) the member's data and prepares every listener; ``start()`` binds them.
    public init(configuration: ServerConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        let memberDirectory = configuration.dataDir + "/member"
        try FileManager.default.createDirectory(atPath: memberDirectory, withIntermediateDirectories: true)
        let engine = try RocksDBEngine(path: memberDirectory + "/db")

        var memberConfiguration = MemberConfiguration(id: configuration.localID)
        memberConfiguration.tickMilliseconds = configuration.heartbeatMilliseconds
        memberConfiguration.raft.heartbeatTicks = 1
        memberConfiguration.raft.electionTicks = Int(max(configuration.electionMilliseconds / configuration.heartbeatMilliseconds, 2))
        memberConfiguration.raft.randomSeed = UInt64.random(in: 1...UInt64.max)
        memberConfiguration.snapshotCount = configuration.snapshotCount
        memberConfiguration.encodesSnapshotData = false  // MemberHost builds it off the loop
        memberConfiguration.maxValuesReadInPlace = MemberHost.maxValuesReadOnLoop
        memberConfiguration.quotaBytes = configuration.quotaBackendBytes
        memberConfiguration.requestTimeoutMilliseconds = MemberConfiguration.etcdRequestTimeout(
            electionMilliseconds: configuration.electionMilliseconds)
        memberConfiguration.store.maxRequestBytes = configuration.maxRequestBytes
        memberConfiguration.store.maxTxnOperations = configuration.limits.maxTxnOps
        memberConfiguration.autoCompaction = configuration.autoCompaction
        memberConfiguration.incarnation = UInt64.random(in: 1...UInt64.max)
        memberConfiguration.initialMembers = Set(configuration.initialCluster.map(\.id))
        memberConfiguration.publishedName = configuration.name
        memberConfiguration.publishedClientURLs = configuration.advertiseClientURLs

        let storage = try MemberStorage(engine: engine, store: memberConfiguration.storeConfiguration)
        if configuration.forceNewCluster && storage.isEmpty {
            throw ForceNewClusterWithoutData(dataDir: configuration.dataDir)
        }
        if storage.isEmpty {
            switch configuration.clusterState {
            case .new:
                try storage.bootstrap(
                    members: configuration.initialCluster.map { ClusterMember(id: $0.id, name: $0.name, peerURLs: $0.peerURLs) })
                logger.info("bootstrapped a new cluster", metadata: ["members": "\(configuration.initialCluster.count)"])
            case .existing:
                logger.info("joining an existing cluster; waiting for its leader to send the log")
            }
        }
        if configuration.forceNewCluster {
            let removed = try storage.forceNewCluster(keeping: configuration.localID)
            logger.warning(
                "--force-new-cluster: this member is now the only one of its cluster",
                metadata: ["removed": "\(removed.map { String($0, radix: 16) })"])
        }
        let member = Member(configuration: memberConfiguration, recovered: try storage.recover())

        memberGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // Client and peer connections live on the member loop; only the `/metrics` listeners
        // use these threads.
        ioGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let host = MemberHost(
            loop: memberGroup.next(), engine: engine, storage: storage, member: member, clusterID: configuration.clusterID,
            logger: logger, metrics: metrics,
            authenticator: Authenticator(
                tokenTTL: .seconds(configuration.authTokenTTLSeconds), passwordRounds: configuration.authPasswordRounds,
                jwt: try configuration.authJWT.map { options in
                    try JWTTokens(
                        method: JWTTokens.Method(rawValue: options.signMethod) ?? .es256, privateKeyPath: options.privateKeyPath,
                        publicKeyPaths: options.publicKeyPaths, ttl: .seconds(options.ttlSeconds))
                }))
        let syncDelayFile = ProcessInfo.processInfo.environment[MemberHost.syncDelayTestingVariable]
        host.syncDelayFileForTesting = syncDelayFile.flatMap { $0.isEmpty ? nil : $0 }  // slow-disk tests only
        let readDelayFile = ProcessInfo.processInfo.environment[MemberHost.readDelayTestingVariable]
        host.readDelayFileForTesting = readDelayFile.flatMap { $0.isEmpty ? nil : $0 }  // slow-read tests only
        self.host = host
        var peerConfiguration = PeerTransport.Configuration(localID: configuration.localID, clusterID: configuration.clusterID)
        peerConfiguration.serverTLS = try configuration.peerTLS.map { try TLSContextSource(settings: $0, role: .server, logger: logger) }
        peerConfiguration.clientTLS = try TLSContextSource(settings: configuration.peerClientTLS, role: .client, logger: logger)
        peerConfiguration.allowedCommonName = configuration.peerAllowedCommonName
        peerConfiguration.connectsEagerly = true  // every peer's round trip is measured
        if let versions = try PeerTransport.protocolVersions(testingEnvironment: ProcessInfo.processInfo.environment) {
            peerConfiguration.protocolVersions = versions  // upgrade tests only: a member standing for another build
        }
        peerConfiguration.admitsSender = { host.admitsPeer($0) }
        peerConfiguration.peerDisconnected = { host.peerConnectionLost($0) }
        let clientTLS = try configuration.clientTLS.map { try TLSContextSource(settings: $0, role: .server, logger: logger) }
        peerConfiguration.maxFrameBytes = PeerTransport.Configuration.maxFrameBytes(
            largestPayload: memberConfiguration.largestMessagePayload)
        transport = PeerTransport(
            configuration: peerConfiguration,
            group: memberGroup, logger: logger
        ) { peer, frame in
            host.receive(from: peer, frame: frame)
        }
        let transport = self.transport
        metrics.peerStatistics.withLock { $0 = { transport.statistics } }
        let services = Services(host: host, token: configuration.token, metrics: metrics)
        let ioGroup = self.ioGroup
        let memberGroup = self.memberGroup
        let maxReceive = configuration.maxRequestBytes + 512 * 1024
        let metrics = self.metrics
        clientServers = configuration.listenClient.map { endpoint in
            var serverConfiguration = GRPCServerConfiguration(host: endpoint.host, port: endpoint.port)
            serverConfiguration.maxReceiveMessageBytes = maxReceive
            serverConfiguration.observer = metrics
            serverConfiguration.apply(configuration.limits)
            // JSON carries bytes as base64 (4/3 of their size) plus field names: room for a
            // message as large as gRPC accepts.
            serverConfiguration.gateway = EtcdGateway.gateway(maxRequestBytes: 2 * maxReceive)
            if endpoint.isTLS { serverConfiguration.tls = clientTLS }
            return GRPCServer(
                configuration: serverConfiguration, group: memberGroup, router: services.route, http: services.http)
        }
        metricsServers = configuration.listenMetrics.map { endpoint in
            var serverConfiguration = GRPCServerConfiguration(host: endpoint.host, port: endpoint.port)
            if endpoint.isTLS { serverConfiguration.tls = clientTLS }
            return GRPCServer(configuration: serverConfiguration, group: ioGroup, router: { _ in nil }, http: services.http)
        }
    }

    /// The ports the client listeners are bound to (after ``start()``).
    public private(set) var clientPorts: [Int] {
        get { portsBox.withLockedValue { $0 } }
        set { portsBox.withLockedValue { $0 = newValue } }
    }
    private let portsBox = NIOLockedValueBox<[Int]>([])

    /// Binds the peer and client listeners and starts the member.
    public func start() async throws {
        for endpoint in configuration.listenPeer {
            let port = try await transport.listen(host: endpoint.host, port: endpoint.port, usesTLS: endpoint.isTLS)
            logger.info("listening for peers", metadata: ["address": "\(endpoint.host):\(port)"])
        }
        var initialPeers: [NodeID: String] = [:]
        for member in configuration.initialCluster { initialPeers[member.id] = member.peerURLs.first }
        host.start(transport: transport, initialPeers: initialPeers)
        var ports: [Int] = []
        for server in clientServers {
            let port = try await server.start()
            ports.append(port)
        }
        clientPorts = ports
        for (endpoint, port) in zip(configuration.listenClient, ports) {
            logger.info("serving clients", metadata: ["address": "\(endpoint.host):\(port)"])
        }
        for (endpoint, server) in zip(configuration.listenMetrics, metricsServers) {
            let port = try await server.start()
            logger.info("serving metrics", metadata: ["address": "\(endpoint.host):\(port)"])
        }
    }

    /// Stops gracefully: a leader first hands leadership to its most caught-up follower (so the
    /// cluster does not wait an election timeout for a new one), then the member stops accepting
    /// calls and lets in-flight ones finish, stops (syncing storage), and closes the peer
    /// transport and the event loops.
    public func stop() async {
        if let successor = try? await host.handOffLeadership().get() {
            logger.info("handed leadership over before stopping", metadata: ["leader": "\(String(successor, radix: 16))"])
        }
        for server in clientServers + metricsServers { await server.shutdown() }
        try? await host.stop().get()
        await transport.shutdown()
        try? await memberGroup.shutdownGracefully()
        try? await ioGroup.shutdownGracefully()
        logger.info("stopped")
    }
}

/// `--force-new-cluster` on a data directory that holds no cluster: starting would make an empty
/// one-member cluster under the real cluster's IDs, so the server refuses.
struct ForceNewClusterWithoutData: Error, CustomStringConvertible {
    var dataDir: String
    var description: String {
        "--force-new-cluster needs the data of a member of the cluster, but \(dataDir) holds none; start without the flag"
    }
}
