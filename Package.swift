// swift-tools-version:6.1
import PackageDescription

// Statehouse: a Raft-replicated store that speaks etcd's v3 API.
//
// The targets below are grouped by concern, from the deterministic core outwards:
// products, the core (no I/O), storage, the server, the client, tools (simulator, fixtures,
// benchmarks, examples) and tests. README.md's layout table names the same folders.

// MARK: - Dependencies

let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")
let swiftProtobuf: Target.Dependency = .product(name: "SwiftProtobuf", package: "swift-protobuf")
let nioCore: Target.Dependency = .product(name: "NIOCore", package: "swift-nio")
let nioPosix: Target.Dependency = .product(name: "NIOPosix", package: "swift-nio")
let nioHTTP1: Target.Dependency = .product(name: "NIOHTTP1", package: "swift-nio")
let nioEmbedded: Target.Dependency = .product(name: "NIOEmbedded", package: "swift-nio")
let nioConcurrencyHelpers: Target.Dependency = .product(name: "NIOConcurrencyHelpers", package: "swift-nio")
let nioHTTP2: Target.Dependency = .product(name: "NIOHTTP2", package: "swift-nio-http2")
let nioHPACK: Target.Dependency = .product(name: "NIOHPACK", package: "swift-nio-http2")
let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let coreMetrics: Target.Dependency = .product(name: "CoreMetrics", package: "swift-metrics")
let metrics: Target.Dependency = .product(name: "Metrics", package: "swift-metrics")
let prometheus: Target.Dependency = .product(name: "Prometheus", package: "swift-prometheus")
let serviceLifecycle: Target.Dependency = .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let unixSignals: Target.Dependency = .product(name: "UnixSignals", package: "swift-service-lifecycle")
let crypto: Target.Dependency = .product(name: "Crypto", package: "swift-crypto")
let cryptoExtras: Target.Dependency = .product(name: "_CryptoExtras", package: "swift-crypto")
let x509: Target.Dependency = .product(name: "X509", package: "swift-certificates")
let asn1: Target.Dependency = .product(name: "SwiftASN1", package: "swift-asn1")
let asyncAlgorithms: Target.Dependency = .product(name: "AsyncAlgorithms", package: "swift-async-algorithms")
let grpcCore: Target.Dependency = .product(name: "GRPCCore", package: "grpc-swift-2")
let grpcHTTP2Transport: Target.Dependency = .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport")
let grpcProtobuf: Target.Dependency = .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf")
let yams: Target.Dependency = .product(name: "Yams", package: "Yams")
let nioSSL: Target.Dependency = .product(name: "NIOSSL", package: "swift-nio-ssl")

let package = Package(
    name: "Statehouse",
    platforms: [.macOS(.v15)],

    // MARK: - Products

    products: [
        .executable(name: "statehouse", targets: ["statehouse"]),
        .executable(name: "statehouse-restore", targets: ["statehouse-restore"]),
        .executable(name: "statehousectl", targets: ["statehousectl"]),
        .library(name: "StatehouseClient", targets: ["StatehouseClient"]),
        .library(name: "StatehouseWorkflow", targets: ["StatehouseWorkflow"]),
        .library(name: "RaftCore", targets: ["RaftCore"]),
        .library(name: "StateMachine", targets: ["StateMachine"]),
        .library(name: "RocksDB", targets: ["RocksDB"]),
        .executable(name: "simulate", targets: ["simulate"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.36.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.29.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        // PKCS#8 Ed25519 keys for EdDSA JWT tokens (already in the graph through grpc-swift-nio-transport).
        .package(url: "https://github.com/apple/swift-certificates", from: "1.10.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-async-algorithms", from: "1.0.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.0"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        // `make docs`: DocC documentation of StatehouseClient and StatehouseWorkflow.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // MARK: - Core: deterministic, standard library only, no I/O, clocks or threads

        // Byte reader and writer, CRCs, the seeded generator, key order, network addresses.
        .target(name: "Primitives", dependencies: ["CCRC32C"]),
        // The processor's CRC-32C instruction (SSE4.2), which Primitives' CRC32 uses when present.
        .target(name: "CCRC32C"),
        // Raft: elections, replication, snapshots, membership, ReadIndex, leader transfer.
        .target(name: "RaftCore", dependencies: ["Primitives"]),
        // The replicated state: etcd's MVCC key space, leases, cluster members and alarms.
        .target(name: "StateMachine", dependencies: ["Primitives"]),
        // The leader's lease expiry clock.
        .target(name: "LeaseClock", dependencies: ["StateMachine"]),
        // One member: Raft, the state machine and request bookkeeping, and how it is stored.
        .target(
            name: "ReplicatedMember",
            dependencies: ["Primitives", "RaftCore", "StateMachine", "LeaseClock", "Storage"]
        ),
        // The backup file `Maintenance.Snapshot` streams and `statehouse-restore` reads (SHA-256
        // sealed). Apart from the member so that the simulator builds without swift-crypto.
        .target(name: "BackupFormat", dependencies: ["Primitives", "ReplicatedMember", crypto]),

        // MARK: - Storage

        // Storage engines (in memory with crash semantics, or RocksDB) and the Raft log store.
        .target(name: "Storage", dependencies: ["Primitives", "RaftCore"]),
        .target(name: "StorageRocksDB", dependencies: ["Storage", "RocksDB"]),
        // RocksDB (Debian's librocksdb-dev) through its C API.
        .systemLibrary(name: "CRocksDB", pkgConfig: "rocksdb", providers: [.apt(["librocksdb-dev"])]),
        .target(name: "RocksDB", dependencies: ["CRocksDB"]),

        // MARK: - Server

        // gRPC status codes.
        .target(name: "GRPCStatus"),
        // gRPC's framing rules: message reassembly, limits, `grpc-timeout`, status messages.
        .target(name: "GRPCFraming", dependencies: ["GRPCStatus"]),
        // TLS for the client and peer listeners: certificate files re-read when they change,
        // etcd's cipher-suite names, the verified peer's common name.
        .target(name: "TransportSecurity", dependencies: [nioCore, nioSSL, nioConcurrencyHelpers, logging]),
        // The server's own gRPC layer on swift-nio-http2 (HTTP/1.1 on the same port).
        .target(
            name: "GRPCServer",
            dependencies: [
                "GRPCFraming", "GRPCStatus", "TransportSecurity", nioCore, nioPosix, nioHTTP1, nioHTTP2, nioHPACK,
                nioConcurrencyHelpers, nioSSL,
            ]
        ),
        // Length-prefixed frames between members over TCP (or TLS).
        .target(
            name: "PeerTransport",
            dependencies: ["Primitives", "TransportSecurity", nioCore, nioPosix, nioConcurrencyHelpers, nioSSL, logging]),
        // The `statehouse` options: flags, environment and config file.
        .target(name: "ServerConfiguration", dependencies: ["Primitives", "ReplicatedMember", "TransportSecurity"]),
        // etcd's v3 wire messages, generated from Protos/ by scripts/generate-protos.sh.
        .target(name: "EtcdWire", dependencies: [swiftProtobuf]),
        // etcd wire messages <-> state-machine types, and errors <-> gRPC statuses.
        .target(name: "EtcdMapping", dependencies: ["EtcdWire", "StateMachine", "ReplicatedMember", "GRPCStatus", swiftProtobuf]),
        // etcd's grpc-gateway JSON API: its paths and JSON mapping over the gRPC server's gateway.
        .target(name: "EtcdGateway", dependencies: ["EtcdWire", "GRPCServer", swiftProtobuf]),
        // etcd's Lock and Election services' logic over an abstract backend.
        .target(name: "Recipes", dependencies: ["Primitives", "StateMachine"]),
        // The member loop over RocksDB, the peer transport, and etcd's services.
        .target(
            name: "StatehouseServer",
            dependencies: [
                "Primitives", "ReplicatedMember", "BackupFormat", "StateMachine", "RaftCore", "Storage", "StorageRocksDB", "RocksDB",
                "EtcdWire", "EtcdMapping", "EtcdGateway", "GRPCServer", "GRPCStatus", "PeerTransport", "ServerConfiguration",
                "Recipes", "TransportSecurity", nioCore, nioPosix, nioConcurrencyHelpers, logging, coreMetrics, prometheus, crypto,
                cryptoExtras, x509, asn1,
                swiftProtobuf,
            ]
        ),
        .executableTarget(
            name: "statehouse",
            dependencies: ["StatehouseServer", "ServerConfiguration", logging, serviceLifecycle, unixSignals]
        ),
        .executableTarget(
            name: "statehouse-restore",
            dependencies: [
                "StatehouseServer", "ServerConfiguration", "ReplicatedMember", "BackupFormat", "StateMachine", "Storage", "StorageRocksDB",
            ]
        ),

        // MARK: - Client

        // The Swift client library on grpc-swift-2.
        .target(
            name: "StatehouseClient",
            dependencies: [
                "Primitives", "EtcdWire", grpcCore, grpcHTTP2Transport, grpcProtobuf, asyncAlgorithms, swiftProtobuf, logging,
                metrics, crypto, serviceLifecycle,
            ]
        ),
        // Durable work queues, fenced workflow runs, an elected scheduler and event logs, on the client.
        .target(name: "StatehouseWorkflow", dependencies: ["StatehouseClient", logging, serviceLifecycle]),
        // The etcdctl-style command-line client.
        .executableTarget(name: "statehousectl", dependencies: ["StatehouseClient", argumentParser, logging]),

        // MARK: - Tools: the simulator, test fixtures, benchmarks and examples

        .target(
            name: "ClusterSimulation",
            dependencies: ["Primitives", "RaftCore", "ReplicatedMember", "StateMachine", "Storage", "Linearizability"],
            path: "Simulation/Sources/ClusterSimulation",
            // The simulation is one class whose properties every event touches: in release builds
            // the run-time exclusivity checks cost 14% of a sweep. Debug builds (`swift test`,
            // the replay's debug run) keep them, and the compile-time checks stay on.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),
        .target(name: "Linearizability", path: "Simulation/Sources/Linearizability"),
        .executableTarget(
            name: "simulate",
            dependencies: ["ClusterSimulation", "ReplicatedMember", "RaftCore", argumentParser],
            path: "Simulation/Sources/simulate"
        ),
        // Checks a client history recorded against real processes (`make chaos`).
        .executableTarget(
            name: "check-history", dependencies: ["Linearizability", argumentParser], path: "Simulation/Sources/check-history"),
        // A single member on RocksDB that the crash-recovery tests kill mid-write.
        .executableTarget(
            name: "crash-member",
            dependencies: ["Primitives", "ReplicatedMember", "StateMachine", "Storage", "StorageRocksDB", "RaftCore"],
            path: "Tests/Fixtures/crash-member"
        ),
        // Every decoder of stored or received bytes under arbitrary input (`make fuzz`; a replay
        // tool in normal builds).
        .executableTarget(
            name: "decoder-fuzzer",
            dependencies: [
                "Primitives", "RaftCore", "StateMachine", "ReplicatedMember", "GRPCFraming", "EtcdWire", "EtcdMapping",
                "PeerTransport", "StatehouseServer", swiftProtobuf,
            ],
            path: "Tests/Fuzz/decoder-fuzzer"
        ),
        // Writes synced RocksDB batches until killed, for RocksDB's crash tests.
        .executableTarget(name: "rocksdb-crash-writer", dependencies: ["RocksDB"], path: "Tests/Fixtures/rocksdb-crash-writer"),
        // `make bench`: the state machine applying puts to RocksDB.
        .executableTarget(
            name: "statehouse-bench-apply",
            dependencies: ["ReplicatedMember", "StateMachine", "Storage", "StorageRocksDB", "RaftCore"],
            path: "Benchmarks/statehouse-bench-apply"
        ),
        // A command-line workflow platform over StatehouseWorkflow (docs/workflows.md).
        .executableTarget(
            name: "statehouse-workflow",
            dependencies: ["StatehouseWorkflow", "StatehouseClient", argumentParser, logging],
            path: "Examples/statehouse-workflow"
        ),

        // MARK: - Tests

        .target(name: "TestSupport", path: "Tests/TestSupport"),
        // gRPC framing and request headers for the tests' own HTTP/2 clients.
        .target(name: "GRPCTestSupport", dependencies: [nioHPACK], path: "Tests/GRPCTestSupport"),
        .testTarget(name: "PrimitivesTests", dependencies: ["Primitives"]),
        .testTarget(name: "RaftCoreTests", dependencies: ["RaftCore", "Primitives"]),
        .testTarget(name: "StateMachineTests", dependencies: ["StateMachine", "RaftCore", "Primitives"]),
        .testTarget(name: "LeaseClockTests", dependencies: ["LeaseClock", "StateMachine", "RaftCore", "Primitives", "TestSupport"]),
        .testTarget(
            name: "ReplicatedMemberTests",
            dependencies: ["ReplicatedMember", "BackupFormat", "StateMachine", "RaftCore", "Storage", "StorageRocksDB", "Primitives"]),
        // The stored and sent bytes, pinned against the first format's output.
        .testTarget(
            name: "StoredFormatTests",
            dependencies: ["ReplicatedMember", "StateMachine", "RaftCore", "Storage", "decoder-fuzzer", "TestSupport"]),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "StorageRocksDB", "RaftCore", "Primitives", "TestSupport"]),
        .testTarget(name: "RocksDBTests", dependencies: ["RocksDB", "rocksdb-crash-writer", "TestSupport"]),
        .testTarget(name: "CrashRecoveryTests", dependencies: ["crash-member", "TestSupport"]),
        .testTarget(name: "GRPCFramingTests", dependencies: ["GRPCFraming", "GRPCStatus"]),
        .testTarget(
            name: "GRPCServerTests",
            dependencies: [
                "GRPCServer", "GRPCStatus", "GRPCTestSupport", nioCore, nioPosix, nioHTTP1, nioConcurrencyHelpers, nioHTTP2,
                nioHPACK, nioEmbedded,
            ]
        ),
        .testTarget(
            name: "PeerTransportTests",
            dependencies: ["PeerTransport", nioCore, nioPosix, nioConcurrencyHelpers, nioEmbedded, logging]
        ),
        .testTarget(
            name: "ServerConfigurationTests", dependencies: ["ServerConfiguration", "ReplicatedMember", "TestSupport", "TransportSecurity"]),
        .testTarget(name: "EtcdWireTests", dependencies: ["EtcdWire", swiftProtobuf]),
        .testTarget(name: "EtcdGatewayTests", dependencies: ["EtcdGateway", "EtcdWire", "GRPCServer", swiftProtobuf]),
        .testTarget(
            name: "EtcdMappingTests",
            dependencies: ["EtcdMapping", "EtcdWire", "StateMachine", "ReplicatedMember", "GRPCStatus", swiftProtobuf]
        ),
        .testTarget(name: "RecipesTests", dependencies: ["Recipes", "StateMachine", "Primitives"]),
        .testTarget(
            name: "StatehouseClientTests",
            dependencies: ["StatehouseClient", "Primitives", grpcCore, logging, serviceLifecycle, unixSignals]
        ),
        .testTarget(name: "StatehouseWorkflowTests", dependencies: ["StatehouseWorkflow", "StatehouseClient"]),
        .testTarget(name: "LinearizabilityTests", dependencies: ["Linearizability", "RaftCore", "Primitives", "TestSupport"]),
        .testTarget(
            name: "SimulationTests",
            dependencies: ["ClusterSimulation", "RaftCore", "ReplicatedMember", "StateMachine", "Storage", "Primitives", "TestSupport"]
        ),
        .testTarget(
            name: "ClusterTests",
            dependencies: [
                "statehouse", "statehousectl", "statehouse-restore", "statehouse-workflow", "TestSupport", "GRPCTestSupport",
                "EtcdWire", "GRPCStatus", "RaftCore",
                "StatehouseClient", "StatehouseWorkflow", "Primitives", logging, serviceLifecycle, nioCore, nioPosix, nioHTTP1, nioHTTP2,
                nioHPACK, crypto,
                swiftProtobuf, yams,
            ],
            // The gateway tests' Python and Node clients, run from their source location.
            exclude: ["Clients"]
        ),
    ]
)

for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    target.swiftSettings = settings
}
