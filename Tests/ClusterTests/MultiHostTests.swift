import Foundation
import Glibc
import TestSupport
import Testing

extension LocalClusterTests {
    /// Three members on three hosts (Linux network namespaces joined by a bridge), started with
    /// the systemd deploy files' settings: what loopback cannot show.
    @Suite("Three hosts")
    struct MultiHostTests {
        /// A member on its own host: its namespace, address and process.
        final class Host: @unchecked Sendable {
            let name: String
            var number: Int
            var process: ChildProcess?
            init(name: String, number: Int) {
                self.name = name
                self.number = number
            }
        }

        /// The test's hosts, members and client, removed however the test ends.
        final class Deployment: @unchecked Sendable {
            let network: TestNetwork
            let root: String
            let token = "multi-host-\(UUID().uuidString.prefix(8))"
            var hosts: [Host] = []
            let statehouse: URL
            let statehousectl: URL
            private var runs = 0

            init(network: TestNetwork, root: String, statehouse: URL, statehousectl: URL) {
                self.network = network
                self.root = root
                self.statehouse = statehouse
                self.statehousectl = statehousectl
            }

            /// The member's environment: deploy/systemd/<name>.env with this network's addresses,
            /// a data directory of its own, and `clientNumber` for its client address.
            func environment(_ host: Host, listenPeerNumber: Int? = nil) throws -> [String: String] {
                let file = try DeployFileTests.text("deploy/systemd/\(host.name).env").replacing("10.0.0.", with: network.subnet + ".")
                var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("STATEHOUSE_") }
                environment.merge(DeployFileTests.environmentFile(file)) { $1 }
                environment["STATEHOUSE_DATA_DIR"] = root + "/" + host.name
                environment["STATEHOUSE_INITIAL_CLUSTER_TOKEN"] = token
                let address = network.address(host.number)
                environment["STATEHOUSE_LISTEN_PEER_URLS"] = "http://\(address):2380"
                environment["STATEHOUSE_LISTEN_CLIENT_URLS"] = "http://\(address):2379"
                environment["STATEHOUSE_ADVERTISE_CLIENT_URLS"] = "http://\(address):2379"
                return environment
            }

            func start(_ host: Host) throws {
                host.process = try ChildProcess(
                    executable: "/usr/sbin/ip", arguments: ["netns", "exec", network.namespace(host.name), statehouse.path],
                    environment: try environment(host), outputPath: root + "/\(host.name).log")
            }

            func endpoint(_ host: Host) -> String { "\(network.address(host.number)):2379" }

            /// Runs statehousectl on the client host against `hosts` (all by default).
            func ctl(_ arguments: [String], on chosen: [Host]? = nil) async throws -> EtcdctlResult {
                runs += 1
                let endpoints = (chosen ?? hosts).map(endpoint).joined(separator: ",")
                let process = try ChildProcess(
                    executable: "/usr/sbin/ip",
                    arguments: ["netns", "exec", network.namespace("client"), statehousectl.path, "--endpoints=\(endpoints)"]
                        + arguments,
                    outputPath: root + "/ctl-\(runs).out", errorPath: root + "/ctl-\(runs).err")
                let status = try await process.waitForExit(timeout: .seconds(30))
                return EtcdctlResult(
                    command: "statehousectl " + arguments.joined(separator: " "), status: status, output: process.output,
                    errorOutput: process.errorOutput)
            }

            /// The leader's member ID, once `chosen` all name the same one.
            func agreedLeader(among chosen: [Host], excluding excluded: String? = nil) async throws -> String {
                try await eventually("\(chosen.map(\.name)) to agree on a leader", timeout: .seconds(30), interval: .milliseconds(300)) {
                    let result = try await self.ctl(["endpoint", "status", "-w", "json", "--command-timeout=2s"], on: chosen)
                    guard result.status == .exited(0),
                        let rows = try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [[String: Any]],
                        rows.count == chosen.count
                    else { return nil }
                    let leaders = Set(rows.compactMap { $0["leader"] as? String })
                    guard leaders.count == 1, let leader = leaders.first, leader != "0", leader != excluded else { return nil }
                    return leader
                }
            }

            /// The host whose member has ID `id` (hex).
            func host(withID id: String) async throws -> Host {
                for host in hosts {
                    let result = try await ctl(["endpoint", "status", "-w", "json"], on: [host])
                    if let rows = try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [[String: Any]],
                        let header = rows.first?["header"] as? [String: Any], header["member_id"] as? String == id
                    {
                        return host
                    }
                }
                throw TimeoutError(description: "no host runs member \(id)")
            }

            /// Puts `count` keys under `prefix` through `chosen`; returns the keys acknowledged.
            func put(_ prefix: String, _ count: Int, on chosen: [Host]? = nil) async throws -> [String] {
                var acknowledged: [String] = []
                for index in 0..<count {
                    let key = "\(prefix)\(index)"
                    let result = try await ctl(["put", key, "v\(index)", "--command-timeout=5s"], on: chosen)
                    if result.status == .exited(0) { acknowledged.append(key) }
                }
                return acknowledged
            }

            /// The keys under `prefix` that `host` serves from its own state.
            func localKeys(_ prefix: String, on host: Host) async throws -> Set<String> {
                let result = try await ctl(["get", prefix, "--prefix", "--keys-only", "--consistency=s"], on: [host])
                return Set(result.output.split(separator: "\n").map(String.init))
            }

            func tearDown(failed: Bool) async {
                for host in hosts { await host.process?.killAndWait() }
                await network.remove()
                if failed {
                    print("==== the three-host test failed; its files are kept in \(root)")
                    for host in hosts { print("---- \(host.name)\n" + tail(of: root + "/\(host.name).log", lines: 30)) }
                } else {
                    try? FileManager.default.removeItem(atPath: root)
                }
            }
        }

        @Test("Members on three hosts: partitions heal, a member moves to a new address, nothing acknowledged is lost")
        func threeHosts() async throws {
            guard let statehouse = builtExecutable(named: "statehouse"), let statehousectl = builtExecutable(named: "statehousectl")
            else { try skipTest("statehouse and statehousectl must be built") }
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("statehouse-hosts-\(UUID().uuidString.prefix(8))").path
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            let network = try await TestNetwork.make(directory: root)
            let deployment = Deployment(network: network, root: root, statehouse: statehouse, statehousectl: statehousectl)
            let (_, failed) = try await watchingForIssues {
                do {
                    try await Self.run(deployment)
                } catch {
                    Issue.record(error)
                }
            }
            await deployment.tearDown(failed: failed)
        }

        static func run(_ deployment: Deployment) async throws {
            let network = deployment.network
            for number in 1...3 {
                let host = Host(name: "n\(number)", number: number)
                try await network.addHost(host.name, address: network.address(number))
                deployment.hosts.append(host)
            }
            try await network.addHost("client", address: network.address(100))
            for host in deployment.hosts { try deployment.start(host) }
            let hosts = deployment.hosts
            let firstLeader = try await deployment.agreedLeader(among: hosts)
            var acknowledged = try await deployment.put("k/a", 10)
            #expect(acknowledged.count == 10)

            // A symmetric partition of the leader: the other two elect a leader and keep writing.
            let isolated = try await deployment.host(withID: firstLeader)
            let majority = hosts.filter { $0 !== isolated }
            try await network.setLink(isolated.name, up: false)
            _ = try await deployment.agreedLeader(among: majority, excluding: firstLeader)
            let duringPartition = try await deployment.put("k/b", 10, on: majority)
            #expect(duringPartition.count == 10, "the majority refused writes")
            acknowledged += duringPartition
            try await network.setLink(isolated.name, up: true)
            _ = try await deployment.agreedLeader(among: hosts)
            _ = try await eventually(
                "\(isolated.name) to catch up after the partition", timeout: .seconds(30), interval: .milliseconds(300)
            ) {
                try await deployment.localKeys("k/", on: isolated).isSuperset(of: acknowledged) ? true : nil
            }

            // Move a follower to a new address: member update, then restart it there.
            let leaderHost = try await deployment.host(withID: try await deployment.agreedLeader(among: hosts))
            let mover = hosts.first { $0 !== leaderHost }!
            let oldNumber = mover.number
            let newNumber = oldNumber + 10
            let list = try await deployment.ctl(["member", "list", "-w", "json"])
            let members = try #require(
                (try? JSONSerialization.jsonObject(with: Data(list.output.utf8)) as? [String: Any])?["members"] as? [[String: Any]],
                "\(list)")
            let moverID = try #require(members.first { $0["name"] as? String == mover.name }?["id"] as? String, "\(members)")
            // Asked of the leader: the mover itself would answer only once it applied the update,
            // but the leader applies it first and from then on dials the mover's new address,
            // where nobody listens yet, so the mover may never hear that the update committed.
            let update = try await deployment.ctl(
                ["member", "update", moverID, "--peer-urls=http://\(network.address(newNumber)):2380"], on: [leaderHost])
            #expect(update.status == .exited(0), "\(update)")
            mover.process?.send(SIGTERM)
            _ = try await mover.process?.waitForExit(timeout: .seconds(15))
            try await network.moveAddress(mover.name, from: network.address(oldNumber), to: network.address(newNumber))
            mover.number = newNumber
            try deployment.start(mover)
            let afterMove = try await deployment.put("k/c", 10, on: hosts.filter { $0 !== mover })
            #expect(afterMove.count == 10)
            acknowledged += afterMove
            _ = try await eventually("\(mover.name) to catch up at its new address", timeout: .seconds(30), interval: .milliseconds(300)) {
                try await deployment.localKeys("k/", on: mover).isSuperset(of: acknowledged) ? true : nil
            }
            let listed = try await deployment.ctl(["member", "list"])
            #expect(listed.output.contains("http://\(network.address(newNumber)):2380"), "\(listed)")

            // Loss and delay on one link, where the kernel has netem.
            let degraded = hosts.first { $0 !== mover }!
            if await network.degrade(degraded.name, loss: 20, delayMilliseconds: 30) {
                let lossy = try await deployment.put("k/d", 10)
                acknowledged += lossy
                try await network.restore(degraded.name)
            } else {
                print("==== tc netem is not available in this kernel: the loss-and-delay step is skipped")
            }

            // Nothing acknowledged is lost, on any member.
            for host in hosts {
                _ = try await eventually("\(host.name) to hold every acknowledged key", timeout: .seconds(30), interval: .milliseconds(300))
                {
                    try await deployment.localKeys("k/", on: host).isSuperset(of: acknowledged) ? true : nil
                }
            }
        }
    }
}
