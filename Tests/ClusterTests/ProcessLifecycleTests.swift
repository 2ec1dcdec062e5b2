import EtcdWire
import Foundation
import Glibc
import TestSupport
import Testing

extension LocalClusterTests {
    /// The `statehouse` process itself: graceful shutdown on SIGTERM, and refusing bad flags.
    @Suite("The statehouse process")
    struct ProcessLifecycleTests {
        /// SIGTERM stops a follower and then the leader with exit status 0 within a few seconds;
        /// both restart on their data and still hold what was written.
        @Test("SIGTERM shuts down gracefully with status 0")
        func sigtermShutsDownGracefullyWithStatusZero() async throws {
            try await withCluster { cluster in
                let leader = try await cluster.waitForLeader()
                let follower = cluster.others(than: leader)[0]
                try await putMany(try await cluster.client(leader), prefix: "graceful/", 0..<50)

                for member in [follower, leader] {
                    let start = ContinuousClock.now
                    let status = try await cluster.stop(member, signal: SIGTERM, timeout: .seconds(10))
                    let elapsed = ContinuousClock.now - start
                    if cluster.isReferenceServer {
                        // etcd 3.4 re-raises SIGTERM once it has shut down.
                        #expect([.exited(0), .signaled(SIGTERM)].contains(status), "\(member.name) after SIGTERM: \(status)")
                    } else {
                        #expect(status == .exited(0), "\(member.name) after SIGTERM")
                    }
                    #expect(elapsed < .seconds(5), "\(member.name) took \(elapsed) to stop after SIGTERM")
                    print("\(member.name) stopped \(elapsed) after SIGTERM: \(status)")
                }
                let survivor = cluster.members.first { $0 !== leader && $0 !== follower }!
                for member in [follower, leader] {
                    try cluster.launch(member)
                }
                try await cluster.waitUntilHealthy(cluster.members)
                for member in cluster.members {
                    let response = try await cluster.client(member).get("graceful/", prefix: true)
                    #expect(response.kvs.count == 50, "\(member.name) after the restart (\(survivor.name) kept running)")
                }
            }
        }

        /// SIGTERM on the leader hands leadership to a follower before the process exits: the
        /// survivors agree on a new leader while the old one still runs (without the hand-off
        /// they would keep following it until its heartbeats stop, then wait an election
        /// timeout), and the old leader's log names its successor.
        @Test("SIGTERM on the leader hands leadership over before it exits")
        func sigtermOnTheLeaderHandsLeadershipOver() async throws {
            try await withCluster { cluster in
                let leader = try await cluster.waitForLeader()
                let survivors = cluster.others(than: leader)
                try await putMany(try await cluster.client(leader), prefix: "handoff/", 0..<20)
                guard let process = leader.process else { return }
                process.send(SIGTERM)
                var successor: UInt64?
                while process.isRunning, successor == nil {
                    let leaders = Set(await cluster.statuses(of: survivors).values.map(\.leader))
                    if leaders.count == 1, let only = leaders.first, only != 0, only != leader.id { successor = only }
                }
                let status = try await process.waitForExit(timeout: .seconds(10))
                if cluster.isReferenceServer {
                    // etcd 3.4 re-raises SIGTERM once it has shut down.
                    #expect([.exited(0), .signaled(SIGTERM)].contains(status), "the old leader after SIGTERM: \(status)")
                } else {
                    #expect(status == .exited(0), "the old leader after SIGTERM")
                    let log = ChildProcess.read(leader.logPath)
                    let line = log.split(separator: "\n").first { $0.contains("handed leadership over before stopping") }
                    #expect(line != nil, "\(leader.name)'s log names no successor")
                    // The old leader returns from the hand-off once it hears from its successor and
                    // may exit before a poll of the survivors sees them agree; its log names the
                    // successor it heard from.
                    if successor == nil, let line, let field = line.split(separator: " ").first(where: { $0.hasPrefix("leader=") }) {
                        successor = UInt64(field.dropFirst("leader=".count), radix: 16)
                    }
                }
                let handedTo = try #require(successor, "the survivors still followed \(leader.name) when it exited")
                #expect(survivors.contains { $0.id == handedTo })
                let after = try await cluster.waitForLeader(among: survivors, excluding: leader.id)
                #expect(after.id == handedTo, "leadership moved again after the hand-off")
                let response = try await cluster.client(after).get("handoff/", prefix: true)
                #expect(response.kvs.count == 20)
            }
        }

        /// A bad value for a flag stops `statehouse` before it starts, with exit status 2 and one
        /// line on standard error that names the flag.
        @Test("A bad flag exits with status 2 and one line naming the flag")
        func badFlagExitsWithStatusTwoAndOneLineNamingTheFlag() async throws {
            guard let executable = builtExecutable(named: "statehouse") else {
                try skipTest("the statehouse executable was not built; build it with `swift build --product statehouse`")
            }
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("statehouse-flags-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }

            var cases: [(arguments: [String], flag: String)] = [
                (["--heartbeat-interval", "abc"], "--heartbeat-interval"),
                (["--heartbeat-interval=abc"], "--heartbeat-interval"),
                (["--heartbeat-interval", "100", "--election-timeout", "200"], "--election-timeout"),
                (["--initial-cluster-state", "maybe"], "--initial-cluster-state"),
                (["--snapshot-count", "-1"], "--snapshot-count"),
                (["--no-such-flag", "1"], "--no-such-flag"),
            ]
            // --validate-config checks the same way, and exits 0 for a valid one; neither creates anything.
            let validated = try ChildProcess(
                executable: executable.path, arguments: ["--validate-config", "--name", "n1", "--data-dir", directory + "/data"],
                outputPath: directory + "/validated.out", errorPath: directory + "/validated.err")
            #expect(try await validated.waitForExit(timeout: .seconds(10)) == .exited(0), "\(validated.errorOutput)")
            #expect(validated.output.hasPrefix("configuration is valid\n"), "\(validated.output)")
            cases += cases.map { (["--validate-config"] + $0.arguments, $0.flag) }
            for (index, testCase) in cases.enumerated() {
                let process = try ChildProcess(
                    executable: executable.path, arguments: testCase.arguments + ["--data-dir", directory + "/data"],
                    outputPath: directory + "/\(index).out", errorPath: directory + "/\(index).err")
                let status = try await process.waitForExit(timeout: .seconds(10))
                let command = "statehouse \(testCase.arguments.joined(separator: " "))"
                #expect(status == .exited(2), "\(command)")
                let lines = process.errorOutput.split(separator: "\n", omittingEmptySubsequences: false)
                #expect(lines.count == 2, "\(command) must print exactly one line on stderr, printed: \(process.errorOutput)")
                #expect(lines.last == "", "\(command): the line must end with a newline")
                #expect(lines.first?.contains(testCase.flag) ?? false, "\(command): \(process.errorOutput) does not name \(testCase.flag)")
                #expect(process.output == "", "\(command) printed on stdout")
                #expect(!FileManager.default.fileExists(atPath: directory + "/data"), "\(command) created the data directory")
            }
        }
    }
}
