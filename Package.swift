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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
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

        // ==== etcd's v3 wire messages, generated from Protos/ by scripts/generate-protos.sh.
        .target(name: "EtcdWire", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]),
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
        .testTarget(name: "LeaseClockTests", dependencies: ["LeaseClock", "MVCC", "RaftCore"]),
        .testTarget(name: "NodeTests", dependencies: ["Node", "MVCC", "RaftCore", "Storage", "GRPCStatus"]),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "CrashRecoveryTests", dependencies: ["statehouse-crash-node", "TestSupport"]),
        .testTarget(name: "GRPCFramingTests", dependencies: ["GRPCFraming", "GRPCStatus"]),
        .testTarget(
            name: "EtcdWireTests",
            dependencies: ["EtcdWire", .product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "StorageRocksDB", "RaftCore"]),
        .testTarget(name: "RocksDBTests", dependencies: ["RocksDB", "rocksdb-crash-writer", "TestSupport"]),
        .testTarget(name: "LinearizabilityTests", dependencies: ["Linearizability", "RaftCore"]),
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
        .testTarget(name: "SimulationTests", dependencies: ["ClusterSimulation", "RaftCore", "Node", "MVCC", "TestSupport"]),
    ]
)

for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    target.swiftSettings = settings
}
