// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Statehouse",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "RaftCore", targets: ["RaftCore"]),
        .executable(name: "simulate", targets: ["simulate"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
    ],
    targets: [
        // ==== The deterministic core: standard library only.
        .target(name: "RaftCore"),

        // ==== The deterministic simulator (top-level Simulation/).
        .target(
            name: "RaftSimulation",
            dependencies: ["RaftCore"],
            path: "Simulation/Sources/RaftSimulation"
        ),
        .executableTarget(
            name: "simulate",
            dependencies: [
                "RaftSimulation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Simulation/Sources/simulate"
        ),

        // ==== Tests.
        .testTarget(name: "RaftCoreTests", dependencies: ["RaftCore"]),
        .testTarget(name: "SimulationTests", dependencies: ["RaftSimulation", "RaftCore"]),
    ]
)

for target in package.targets {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    target.swiftSettings = settings
}
