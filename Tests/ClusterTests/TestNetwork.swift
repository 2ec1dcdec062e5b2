import Foundation
import TestSupport
import Testing

/// Hosts of a test network made of Linux network namespaces: a switch (a bridge in a namespace of
/// its own) and one namespace per host, joined to the switch by a veth pair and given addresses
/// in a subnet that exists only inside these namespaces. The test makes them and ``remove()``
/// deletes them; no traffic leaves them.
final class TestNetwork: @unchecked Sendable {
    /// The prefix of every namespace and interface name, unique to this network.
    let prefix: String
    /// The first three octets of the hosts' addresses.
    let subnet: String
    /// A directory for command output.
    let directory: String
    private(set) var hosts: [String] = []
    private var switchNamespace: String { prefix + "-sw" }

    /// Makes the switch; skips the running test where namespaces cannot be made (not root, no
    /// `ip`, or a sandbox that forbids them).
    static func make(directory: String) async throws -> TestNetwork {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") else {
            try skipTest("network namespaces need root and iproute2's ip (/usr/sbin/ip)")
        }
        let suffix = String(UInt32.random(in: 0x1000...0xFFFF), radix: 16)
        let network = TestNetwork(
            prefix: "sh" + suffix, subnet: "10.\(Int.random(in: 200...250)).\(Int.random(in: 1...250))", directory: directory)
        do {
            try await network.ip(["netns", "add", network.switchNamespace])
        } catch {
            try skipTest("cannot make a network namespace here: \(error)")
        }
        try await network.ip(["-n", network.switchNamespace, "link", "add", "br0", "type", "bridge"])
        try await network.ip(["-n", network.switchNamespace, "link", "set", "br0", "up"])
        return network
    }

    private init(prefix: String, subnet: String, directory: String) {
        self.prefix = prefix
        self.subnet = subnet
        self.directory = directory
    }

    /// The namespace of host `name`.
    func namespace(_ name: String) -> String { "\(prefix)-\(name)" }

    /// The address of host number `number` (`subnet.number`).
    func address(_ number: Int) -> String { "\(subnet).\(number)" }

    private var commands = 0

    /// Runs `ip arguments` and fails with its output unless it succeeds.
    func ip(_ arguments: [String]) async throws {
        commands += 1
        let output = directory + "/ip-\(commands).out"
        let process = try ChildProcess(executable: "/usr/sbin/ip", arguments: arguments, outputPath: output)
        let status = try await process.waitForExit(timeout: .seconds(10))
        guard status == .exited(0) else {
            throw TimeoutError(description: "ip \(arguments.joined(separator: " ")): \(status): \(process.output)")
        }
    }

    /// Adds host `name` with `address` on a veth to the switch.
    func addHost(_ name: String, address: String) async throws {
        let namespace = namespace(name)
        let hostSide = "\(prefix)h\(hosts.count)"
        let switchSide = "\(prefix)s\(hosts.count)"
        try await ip(["netns", "add", namespace])
        hosts.append(name)
        try await ip(["link", "add", hostSide, "type", "veth", "peer", "name", switchSide])
        try await ip(["link", "set", hostSide, "netns", namespace])
        try await ip(["-n", namespace, "link", "set", hostSide, "name", "eth0"])
        try await ip(["link", "set", switchSide, "netns", switchNamespace])
        try await ip(["-n", switchNamespace, "link", "set", switchSide, "master", "br0", "up"])
        try await ip(["-n", namespace, "addr", "add", address + "/24", "dev", "eth0"])
        try await ip(["-n", namespace, "link", "set", "eth0", "up"])
        try await ip(["-n", namespace, "link", "set", "lo", "up"])
    }

    /// Takes host `name`'s link to the switch down (a symmetric partition) or up again.
    func setLink(_ name: String, up: Bool) async throws {
        let index = try #require(hosts.firstIndex(of: name))
        try await ip(["-n", switchNamespace, "link", "set", "\(prefix)s\(index)", up ? "up" : "down"])
    }

    /// Gives host `name` the address `new` in place of `old`.
    func moveAddress(_ name: String, from old: String, to new: String) async throws {
        // Deleting a primary address also deletes the secondaries of its subnet: remove the old first.
        try await ip(["-n", namespace(name), "addr", "del", old + "/24", "dev", "eth0"])
        try await ip(["-n", namespace(name), "addr", "add", new + "/24", "dev", "eth0"])
    }

    /// Adds loss and delay to host `name`'s link with `tc … netem`; false where the kernel has no
    /// netem.
    func degrade(_ name: String, loss: Int, delayMilliseconds: Int) async -> Bool {
        let process = try? ChildProcess(
            executable: "/usr/sbin/ip",
            arguments: [
                "netns", "exec", namespace(name), "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "loss", "\(loss)%", "delay",
                "\(delayMilliseconds)ms",
            ], outputPath: directory + "/tc.out")
        return (try? await process?.waitForExit(timeout: .seconds(10))) == .exited(0)
    }

    /// Removes the degradation `degrade` added.
    func restore(_ name: String) async throws {
        try await ip(["netns", "exec", namespace(name), "tc", "qdisc", "del", "dev", "eth0", "root"])
    }

    /// Deletes every namespace (their interfaces go with them).
    func remove() async {
        for host in hosts { try? await ip(["netns", "del", namespace(host)]) }
        try? await ip(["netns", "del", switchNamespace])
    }
}
