import EtcdWire
import Foundation
import Glibc
import TestSupport
import XCTest

/// The `statehouse` process itself: graceful shutdown on SIGTERM, and refusing bad flags.
final class ProcessLifecycleTests: ClusterTestCase {
    /// SIGTERM stops a follower and then the leader with exit status 0 within a few seconds;
    /// both restart on their data and still hold what was written.
    func testSIGTERMShutsDownGracefullyWithStatusZero() async throws {
        let cluster = try await startCluster()
        let leader = try await cluster.waitForLeader()
        let follower = cluster.others(than: leader)[0]
        try await putMany(try await cluster.client(leader), prefix: "graceful/", 0..<50)

        for member in [follower, leader] {
            let start = ContinuousClock.now
            let status = try await cluster.stop(member, signal: SIGTERM, timeout: .seconds(10))
            let elapsed = ContinuousClock.now - start
            if cluster.isReferenceServer {
                // etcd 3.4 re-raises SIGTERM once it has shut down.
                XCTAssertTrue([.exited(0), .signaled(SIGTERM)].contains(status), "\(member.name) after SIGTERM: \(status)")
            } else {
                XCTAssertEqual(status, .exited(0), "\(member.name) after SIGTERM")
            }
            XCTAssertLessThan(elapsed, .seconds(5), "\(member.name) took \(elapsed) to stop after SIGTERM")
            print("\(member.name) stopped \(elapsed) after SIGTERM: \(status)")
        }
        let survivor = cluster.members.first { $0 !== leader && $0 !== follower }!
        for member in [follower, leader] {
            try cluster.launch(member)
        }
        try await cluster.waitUntilHealthy(cluster.members)
        for member in cluster.members {
            let response = try await cluster.client(member).get("graceful/", prefix: true)
            XCTAssertEqual(response.kvs.count, 50, "\(member.name) after the restart (\(survivor.name) kept running)")
        }
    }

    /// A bad value for a flag stops `statehouse` before it starts, with exit status 2 and one
    /// line on standard error that names the flag.
    func testBadFlagExitsWithStatusTwoAndOneLineNamingTheFlag() async throws {
        guard let executable = builtExecutable(named: "statehouse") else {
            throw XCTSkip("the statehouse executable was not built; build it with `swift build --product statehouse`")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("statehouse-flags-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let cases: [(arguments: [String], flag: String)] = [
            (["--heartbeat-interval", "abc"], "--heartbeat-interval"),
            (["--heartbeat-interval=abc"], "--heartbeat-interval"),
            (["--heartbeat-interval", "100", "--election-timeout", "200"], "--election-timeout"),
            (["--initial-cluster-state", "maybe"], "--initial-cluster-state"),
            (["--snapshot-count", "-1"], "--snapshot-count"),
            (["--no-such-flag", "1"], "--no-such-flag"),
        ]
        for (index, testCase) in cases.enumerated() {
            let process = try ChildProcess(
                executable: executable.path, arguments: testCase.arguments + ["--data-dir", directory + "/data"],
                outputPath: directory + "/\(index).out", errorPath: directory + "/\(index).err")
            let status = try await process.waitForExit(timeout: .seconds(10))
            let command = "statehouse \(testCase.arguments.joined(separator: " "))"
            XCTAssertEqual(status, .exited(2), command)
            let lines = process.errorOutput.split(separator: "\n", omittingEmptySubsequences: false)
            XCTAssertEqual(lines.count, 2, "\(command) must print exactly one line on stderr, printed: \(process.errorOutput)")
            XCTAssertEqual(lines.last, "", "\(command): the line must end with a newline")
            XCTAssertTrue(
                lines.first?.contains(testCase.flag) ?? false, "\(command): \(process.errorOutput) does not name \(testCase.flag)")
            XCTAssertEqual(process.output, "", "\(command) printed on stdout")
            XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/data"), "\(command) created the data directory")
        }
    }
}
