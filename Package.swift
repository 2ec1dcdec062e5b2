// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Statehouse",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "RaftCore", targets: ["RaftCore"]),
        .library(name: "MVCC", targets: ["MVCC"]),
        .library(name: "RocksDB", targets: ["RocksDB"]),
        .executable(name: "simulate", targets: ["simulate"]),
        .executable(name: "statehouse", targets: ["statehouse"]),
        .library(name: "StatehouseClient", targets: ["StatehouseClient"]),
        .executable(name: "statehousectl", targets: ["statehousectl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.36.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/apple/swift-async-algorithms", from: "1.0.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.0"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.0"),
    ],
    targets: [
        // ==== The deterministic core: standard library only.
        .target(name: "RaftCore"),
        .target(name: "GRPCStatus"),
        .target(name: "MVCC", dependencies: ["GRPCStatus"]),
        .target(name: "LeaseClock", dependencies: ["MVCC"]),
        .target(name: "Storage", dependencies: ["RaftCore"]),
        .target(name: "Node", dependencies: ["RaftCore", "MVCC", "LeaseClock", "Storage", "GRPCStatus"]),

        // ==== RocksDB (Debian's librocksdb-dev) through its C API.
        .systemLibrary(
            name: "CRocksDB",
            pkgConfig: "rocksdb",
            providers: [.apt(["librocksdb-dev"])]
        ),
        .target(name: "RocksDB", dependencies: ["CRocksDB"]),
        .executableTarget(name: "rocksdb-crash-writer", dependencies: ["RocksDB"]),
        .target(name: "StorageRocksDB", dependencies: ["Storage", "RocksDB"]),

        // ==== gRPC's framing rules, for the server's own HTTP/2 gRPC layer (standard library only).
        .target(name: "GRPCFraming", dependencies: ["GRPCStatus"]),

        // ==== The server's configuration: flags, environment and config file (standard library only).
        .target(name: "ServerConfiguration"),

        // ==== etcd's v3 wire messages, generated from Protos/ by scripts/generate-protos.sh.
        .target(name: "EtcdWire", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]),

        // ==== etcd wire messages <-> state-machine types, for the server's gRPC services.
        .target(
            name: "EtcdMapping",
            dependencies: [
                "EtcdWire", "MVCC", "Node", "GRPCStatus",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),

        // ==== etcd's Lock and Election services (v3lockpb, v3electionpb) over an abstract backend.
        .target(name: "Recipes", dependencies: ["MVCC", "GRPCStatus"]),

        .executableTarget(
            name: "statehouse-crash-node",
            dependencies: ["Node", "MVCC", "Storage", "StorageRocksDB", "RaftCore"]
        ),
        .executableTarget(
            name: "statehouse-bench-apply",
            dependencies: ["Node", "MVCC", "Storage", "StorageRocksDB", "RaftCore"]
        ),

        // ==== The transport Raft members use to talk to each other: length-prefixed frames over TCP.
        .target(
            name: "PeerTransport",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // ==== Our own gRPC server layer on swift-nio-http2 (HTTP/1.1 on the same port for health).
        .target(
            name: "GRPCServer",
            dependencies: [
                "GRPCFraming", "GRPCStatus",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // ==== A no-op gRPC server, to measure GRPCServer alone (h2load).
        .executableTarget(
            name: "grpc-noop-server",
            dependencies: [
                "GRPCServer", "GRPCStatus",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // ==== The server: the shell that runs a member over RocksDB, the peer transport and the
        // client API (etcd's v3 gRPC services on our own HTTP/2 gRPC layer).
        .target(
            name: "StatehouseServer",
            dependencies: [
                "Node", "MVCC", "RaftCore", "Storage", "StorageRocksDB", "EtcdWire", "EtcdMapping", "GRPCServer", "GRPCStatus",
                "PeerTransport", "ServerConfiguration", "Recipes", "RocksDB",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .executableTarget(
            name: "statehouse",
            dependencies: [
                "StatehouseServer", "ServerConfiguration",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),

        .executableTarget(
            name: "statehouse-restore",
            dependencies: ["StatehouseServer", "ServerConfiguration", "Node", "MVCC", "Storage", "StorageRocksDB"]
        ),

        // ==== The Swift client library (grpc-swift-2), for services and statehousectl.
        .target(
            name: "StatehouseClient",
            dependencies: [
                "EtcdWire",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),

        // ==== statehousectl: the etcdctl-style command-line client on StatehouseClient.
        .executableTarget(
            name: "statehousectl",
            dependencies: [
                "StatehouseClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // ==== The workflow recipe: executors sharing runs through Mutex, fencing and Election.
        .executableTarget(
            name: "statehouse-workflow",
            dependencies: [
                "StatehouseClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // ==== The deterministic simulator (top-level Simulation/).
        .target(
            name: "ClusterSimulation",
            dependencies: ["RaftCore", "Node", "MVCC", "Storage", "Linearizability"],
            path: "Simulation/Sources/ClusterSimulation"
        ),
        .target(name: "Linearizability", path: "Simulation/Sources/Linearizability"),
        .executableTarget(
            name: "simulate",
            dependencies: [
                "ClusterSimulation", "Node", "RaftCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Simulation/Sources/simulate"
        ),

        // ==== Tests.
        .testTarget(name: "RaftCoreTests", dependencies: ["RaftCore"]),
        .testTarget(name: "MVCCTests", dependencies: ["MVCC", "RaftCore", "GRPCStatus"]),
        .testTarget(name: "LeaseClockTests", dependencies: ["LeaseClock", "MVCC", "RaftCore", "TestSupport"]),
        .testTarget(name: "NodeTests", dependencies: ["Node", "MVCC", "RaftCore", "Storage", "GRPCStatus"]),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "CrashRecoveryTests", dependencies: ["statehouse-crash-node", "TestSupport"]),
        .testTarget(name: "GRPCFramingTests", dependencies: ["GRPCFraming", "GRPCStatus"]),
        .testTarget(name: "ServerConfigurationTests", dependencies: ["ServerConfiguration"]),
        .testTarget(
            name: "EtcdWireTests",
            dependencies: ["EtcdWire", .product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        .testTarget(
            name: "EtcdMappingTests",
            dependencies: [
                "EtcdMapping", "EtcdWire", "MVCC", "Node", "GRPCStatus",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .testTarget(name: "RecipesTests", dependencies: ["Recipes", "MVCC", "GRPCStatus"]),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "StorageRocksDB", "RaftCore", "TestSupport"]),
        .testTarget(name: "RocksDBTests", dependencies: ["RocksDB", "rocksdb-crash-writer", "TestSupport"]),
        .testTarget(name: "LinearizabilityTests", dependencies: ["Linearizability", "RaftCore", "TestSupport"]),
        .testTarget(
            name: "PeerTransportTests",
            dependencies: [
                "PeerTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "GRPCServerTests",
            dependencies: [
                "GRPCServer", "GRPCStatus",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ]
        ),
        .testTarget(
            name: "StatehouseClientTests",
            dependencies: [
                "StatehouseClient",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "SimulationTests", dependencies: ["ClusterSimulation", "RaftCore", "Node", "MVCC", "TestSupport"]),
        .testTarget(
            name: "ClusterTests",
            dependencies: [
                "statehouse", "statehousectl", "statehouse-workflow", "TestSupport", "EtcdWire", "GRPCStatus",
                "StatehouseClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
    ]
)

for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    target.swiftSettings = settings
}
