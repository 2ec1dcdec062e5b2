import EtcdWire
import Foundation
import Glibc
import TestSupport
import Testing

/// One `statehouse` process of a ``LocalCluster``, running or not.
final class LocalMember {
    /// The member's name (`--name`).
    let name: String
    /// The port it serves clients on, on 127.0.0.1.
    let clientPort: Int
    /// The port it serves the other members on, on 127.0.0.1.
    let peerPort: Int
    /// Its data directory, kept across restarts.
    let dataDirectory: String
    /// The file its standard output and error go to, appended to across restarts.
    let logPath: String
    /// Its `--initial-cluster`.
    var initialCluster: String
    /// Its `--initial-cluster-state`.
    var clusterState: String
    /// Environment variables its next launches get besides the tests' own (a testing hook, say).
    var environment: [String: String] = [:]
    /// The member ID it reported in a Status header (0 until one was seen).
    var id: UInt64 = 0
    /// The running process, if any.
    fileprivate(set) var process: ChildProcess?
    fileprivate var cachedClient: EtcdClient?
    /// `http`, or `https` for a cluster started with TLS on both ports.
    fileprivate(set) var scheme = "http"

    fileprivate init(name: String, clientPort: Int, peerPort: Int, root: String, initialCluster: String, clusterState: String) {
        self.name = name
        self.clientPort = clientPort
        self.peerPort = peerPort
        dataDirectory = root + "/" + name
        logPath = root + "/" + name + ".log"
        self.initialCluster = initialCluster
        self.clusterState = clusterState
    }

    /// `http://127.0.0.1:<client port>` (`https://` with TLS).
    var clientURL: String { "\(scheme)://127.0.0.1:\(clientPort)" }
    /// `http://127.0.0.1:<peer port>`.
    var peerURL: String { "\(scheme)://127.0.0.1:\(peerPort)" }
    /// Whether its process runs.
    var isRunning: Bool { process?.isRunning ?? false }
    /// The member's ID in hexadecimal, as etcdctl prints it.
    var hexID: String { String(id, radix: 16) }
}

/// A cluster of `statehouse` processes on 127.0.0.1 with free ports, data in a temporary
/// directory, short Raft timings, and each member's log in a file.
///
/// Members can be killed, stopped, restarted on the same data, and added. ``shutdown()`` kills
/// whatever still runs; ``withCluster(size:snapshotCount:arguments:_:)`` calls it.
final class LocalCluster {
    /// The `statehouse` executable.
    let executable: URL
    /// The directory holding the members' data directories and logs.
    let root: String
    /// `--initial-cluster-token`.
    let token: String
    /// `--heartbeat-interval`, in milliseconds.
    let heartbeatMilliseconds = 50
    /// `--election-timeout`, in milliseconds.
    let electionMilliseconds = 500
    /// `--snapshot-count`, if set.
    let snapshotCount: Int?
    /// Flags every member starts with besides those the cluster sets itself.
    let extraArguments: [String]
    /// Every member ever created, in order of creation.
    private(set) var members: [LocalMember] = []
    /// `http`, or `https` when the members serve TLS on both ports (``extraArguments`` name
    /// their certificates).
    let scheme: String
    /// curl's TLS flags for `/health` on `https` members (`--cacert`, `--cert`, `--key`).
    let curlTLSArguments: [String]
    /// Processes other than members that ``shutdown()`` kills (see ``adopt(_:)``).
    private var children: [ChildProcess] = []

    /// Where the executable is missing, the reason.
    struct MissingExecutable: Error, CustomStringConvertible {
        var description: String { "the statehouse executable was not built next to the test bundle" }
    }

    /// The environment variable naming another server to run instead of `statehouse`: set it to
    /// `/usr/bin/etcd` (etcd 3.4 takes the same flags) to check the tests themselves against etcd.
    static let serverVariable = "CLUSTER_TESTS_SERVER"

    /// The server the members run: ``serverVariable`` if set, else the `statehouse` built next
    /// to the test bundle.
    static var serverExecutable: URL? {
        if let path = ProcessInfo.processInfo.environment[serverVariable], !path.isEmpty { return URL(fileURLWithPath: path) }
        return builtExecutable(named: "statehouse")
    }

    /// Whether the members run etcd itself (see ``serverVariable``) rather than `statehouse`.
    var isReferenceServer: Bool { executable.lastPathComponent != "statehouse" }

    /// Prepares a cluster of `size` members named n1, n2, … (nothing runs until ``start()``).
    init(
        size: Int = 3, snapshotCount: Int? = nil, extraArguments: [String] = [], executable chosen: URL? = nil, scheme: String = "http",
        curlTLSArguments: [String] = []
    ) throws {
        guard let executable = chosen ?? Self.serverExecutable else { throw MissingExecutable() }
        self.scheme = scheme
        self.curlTLSArguments = curlTLSArguments
        self.executable = executable
        self.snapshotCount = snapshotCount
        self.extraArguments = extraArguments
        let unique = UUID().uuidString.prefix(8).lowercased()
        root = FileManager.default.temporaryDirectory.appendingPathComponent("statehouse-cluster-\(unique)").path
        token = "cluster-test-\(unique)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let ports = try freePorts(count: 2 * size)
        let initialCluster = (0..<size).map { "n\($0 + 1)=\(scheme)://127.0.0.1:\(ports[2 * $0 + 1])" }.joined(separator: ",")
        for index in 0..<size {
            let member = LocalMember(
                name: "n\(index + 1)", clientPort: ports[2 * index], peerPort: ports[2 * index + 1], root: root,
                initialCluster: initialCluster, clusterState: "new")
            member.scheme = scheme
            members.append(member)
        }
    }

    /// The members whose process runs.
    var running: [LocalMember] { members.filter(\.isRunning) }

    /// The client URLs of `members` (all by default), as etcdctl's `--endpoints` takes them.
    func endpoints(_ chosen: [LocalMember]? = nil) -> String {
        (chosen ?? members).map(\.clientURL).joined(separator: ",")
    }

    /// Starts every member that is not running and waits until all of them report healthy and
    /// agree on a leader.
    func start(timeout: Duration = .seconds(30)) async throws {
        for member in members where !member.isRunning { try launch(member) }
        try await waitUntilHealthy(members, timeout: timeout)
        // Over TLS the tests' own gRPC client cannot ask; a healthy member has a leader.
        guard scheme == "http" else { return }
        let leader = try await waitForLeader()
        // A member publishes its client URLs through the log once it knows a leader (etcd's
        // `publish`), a moment after it is healthy: tests that list the members expect them.
        try await eventually("the members to publish their client URLs", timeout: timeout) { () async throws -> Bool? in
            let list = try await self.client(leader).memberList().members
            let running = self.members.filter(\.isRunning).map(\.name)
            let published = Set(list.filter { !$0.clientUrls.isEmpty }.map(\.name))
            return running.allSatisfy(published.contains) ? true : nil
        }
    }

    /// Starts `member`'s process with its data directory, its `--initial-cluster` and
    /// `--initial-cluster-state`.
    func launch(_ member: LocalMember, adding extra: [String] = []) throws {
        precondition(!member.isRunning, "\(member.name) already runs")
        let arguments = self.arguments(for: member) + extra
        let banner = "==== \(Date()) starting \(member.name): statehouse \(arguments.joined(separator: " "))\n"
        try appendToLog(member, banner)
        // The members get the tests' environment without STATEHOUSE_ variables, which would configure them.
        let environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("STATEHOUSE_") && !$0.key.hasPrefix("ETCD_") }
            .merging(member.environment) { $1 }
        member.process = try ChildProcess(
            executable: executable.path, arguments: arguments, environment: environment, outputPath: member.logPath)
    }

    /// The flags `member` starts with (also what `statehouse-restore` needs to prepare its data).
    func arguments(for member: LocalMember) -> [String] {
        var arguments = [
            "--name", member.name,
            "--data-dir", member.dataDirectory,
            "--listen-client-urls", member.clientURL,
            "--advertise-client-urls", member.clientURL,
            "--listen-peer-urls", member.peerURL,
            "--initial-advertise-peer-urls", member.peerURL,
            "--initial-cluster", member.initialCluster,
            "--initial-cluster-state", member.clusterState,
            "--initial-cluster-token", token,
            "--heartbeat-interval", String(heartbeatMilliseconds),
            "--election-timeout", String(electionMilliseconds),
        ]
        if let snapshotCount { arguments += ["--snapshot-count", String(snapshotCount)] }
        return arguments + extraArguments
    }

    private func appendToLog(_ member: LocalMember, _ text: String) throws {
        if !FileManager.default.fileExists(atPath: member.logPath) {
            _ = FileManager.default.createFile(atPath: member.logPath, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: member.logPath))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }

    /// Creates (without starting) a member that will join the running cluster: fresh ports, and
    /// `--initial-cluster-state existing`; set its ``LocalMember/initialCluster`` before
    /// ``launch(_:)``.
    func makeJoiningMember(name: String) throws -> LocalMember {
        let ports = try freePorts(count: 2)
        let member = LocalMember(
            name: name, clientPort: ports[0], peerPort: ports[1], root: root, initialCluster: "", clusterState: "existing")
        members.append(member)
        return member
    }

    /// Sends `signal` to `member` and waits until its process exits; returns how it ended.
    @discardableResult
    func stop(_ member: LocalMember, signal: Int32 = SIGKILL, timeout: Duration = .seconds(15)) async throws -> ExitStatus {
        guard let process = member.process else { throw TimeoutError(description: "\(member.name) was never started") }
        await dropClient(of: member)
        process.send(signal)
        let status = try await process.waitForExit(timeout: timeout)
        try? appendToLog(member, "==== \(Date()) \(member.name) \(status) after signal \(signal)\n")
        return status
    }

    /// Restarts a stopped member on its data directory and waits until it reports healthy.
    func restart(_ member: LocalMember, timeout: Duration = .seconds(30)) async throws {
        if member.isRunning { try await stop(member) }
        try launch(member)
        try await waitUntilHealthy([member], timeout: timeout)
    }

    /// Has ``shutdown()`` kill `child`, a process other than a member (an etcdctl, statehousectl
    /// or statehouse-workflow run), if it still runs then; returns `child`.
    @discardableResult
    func adopt(_ child: ChildProcess) -> ChildProcess {
        children.append(child)
        return child
    }

    /// Kills every adopted process and every running member with SIGKILL, and closes the test's
    /// connections.
    func shutdown() async {
        for child in children { await child.killAndWait() }
        children = []
        for member in members {
            await dropClient(of: member)
            await member.process?.killAndWait()
        }
    }

    /// Deletes the data directories and logs.
    func removeFiles() {
        try? FileManager.default.removeItem(atPath: root)
    }

    /// The last lines of every member's log, for a failure report.
    func logTails(lines: Int = 40) -> String {
        members.map { member in
            "---- \(member.name) (\(member.logPath)), last \(lines) lines:\n" + tail(of: member.logPath, lines: lines)
        }.joined(separator: "\n")
    }

    // MARK: - Clients

    /// A client connected to `member` (one connection per member, reopened after a restart or a
    /// broken connection).
    func client(_ member: LocalMember) async throws -> EtcdClient {
        if let client = member.cachedClient, client.connection.isActive { return client }
        let client = try await EtcdClient.connect(port: member.clientPort)
        member.cachedClient = client
        return client
    }

    private func dropClient(of member: LocalMember) async {
        await member.cachedClient?.close()
        member.cachedClient = nil
    }

    // MARK: - Waiting

    /// Waits until every member of `chosen` answers `/health` with 200 and `{"health":"true"}`.
    ///
    /// - Throws: if one of them exits meanwhile (with its log tail) or `timeout` passes.
    func waitUntilHealthy(_ chosen: [LocalMember], timeout: Duration = .seconds(30)) async throws {
        for member in chosen {
            try await eventually("\(member.name) to report healthy on /health", timeout: timeout, interval: .milliseconds(100)) {
                () async throws -> Void? in
                guard let process = member.process, process.isRunning else { throw MemberExited(member) }
                let answer =
                    scheme == "https" ? try await curl(member.clientURL + "/health") : try await Self.health(port: member.clientPort)
                guard let (status, body) = answer else { return nil }
                if status == 200, body.contains(#""health":"true""#) { return () }
                throw TimeoutError(description: "/health answered \(status) \(body)")
            }
        }
    }

    /// A member's process ended when it should have been running.
    struct MemberExited: StopsWaiting, CustomStringConvertible {
        let description: String

        init(_ member: LocalMember) {
            let status = member.isRunning ? nil : member.process?.exitStatus
            description =
                "\(member.name) \(status.map(\.description) ?? "is not running"); the end of its log:\n"
                + tail(of: member.logPath, lines: 30)
        }
    }

    /// `GET /health` on `port`: the HTTP status and body, or nil if nothing answered within 2 seconds.
    static func health(port: Int) async throws -> (Int, String)? {
        guard let (status, body) = try? await HTTPGet.fetch(port: port, path: "/health", timeout: .seconds(2)) else { return nil }
        return (status, body)
    }

    /// `GET url` with curl and ``curlTLSArguments`` (and `extra` flags): the HTTP status and body,
    /// or nil if nothing answered within 2 seconds.
    func curl(_ url: String, extra: [String] = []) async throws -> (Int, String)? {
        let base = root + "/curl-" + UUID().uuidString.prefix(8)
        let process = try ChildProcess(
            executable: "/usr/bin/curl",
            arguments: ["-s", "--http1.1", "--max-time", "2", "-w", "\n%{http_code}"] + curlTLSArguments + extra + [url],
            outputPath: base + ".out", errorPath: base + ".err")
        guard try await process.waitForExit(timeout: .seconds(5)) == .exited(0) else { return nil }
        let output = process.output
        guard let newline = output.lastIndex(of: "\n"), let status = Int(output[output.index(after: newline)...]) else { return nil }
        return (status, String(output[..<newline]))
    }

    /// `GET path` on a member's client port: the HTTP status and body.
    static func httpGet(port: Int, path: String) async throws -> (Int, String) {
        let (status, body) = try await HTTPGet.fetch(port: port, path: path, timeout: .seconds(5))
        return (status, body)
    }

    /// Status of every running member (of `chosen`), keyed by name; members that do not answer
    /// are left out. Records each member's ID.
    func statuses(of chosen: [LocalMember]? = nil) async -> [String: Etcdserverpb_StatusResponse] {
        var result: [String: Etcdserverpb_StatusResponse] = [:]
        for member in chosen ?? running where member.isRunning {
            guard let client = try? await client(member), let status = try? await client.status(timeout: .seconds(2)) else { continue }
            member.id = status.header.memberID
            result[member.name] = status
        }
        return result
    }

    /// Waits until every running member of `chosen` (all running by default) answers Status
    /// naming the same leader, one of them and not `excluded`, and returns that leader.
    @discardableResult
    func waitForLeader(
        among chosen: [LocalMember]? = nil, excluding excluded: UInt64? = nil, timeout: Duration = .seconds(20)
    )
        async throws -> LocalMember
    {
        try await eventually("the members to agree on a leader", timeout: timeout) {
            let candidates = (chosen ?? self.running).filter(\.isRunning)
            let statuses = await self.statuses(of: candidates)
            guard statuses.count == candidates.count else { return nil }
            let leaders = Set(statuses.values.map(\.leader))
            // Members may briefly disagree while one of them has not heard from a new leader yet.
            guard leaders.count == 1, let leader = leaders.first, leader != 0, leader != excluded else { return nil }
            return candidates.first { $0.id == leader }
        }
    }

    /// Every member's Raft term, by name.
    func terms() async throws -> [String: UInt64] {
        var terms: [String: UInt64] = [:]
        for member in members { terms[member.name] = try await client(member).status().raftTerm }
        return terms
    }

    /// `etcd_server_leader_changes_seen_total` summed over the members.
    func leaderChangesSeen() async throws -> Double {
        var total = 0.0
        for member in members {
            let (_, text) = try await Self.httpGet(port: member.clientPort, path: "/metrics")
            total += try #require(metricValue("etcd_server_leader_changes_seen_total", in: text))
        }
        return total
    }

    /// The members of `chosen` (all running by default) other than `member`.
    func others(than member: LocalMember, among chosen: [LocalMember]? = nil) -> [LocalMember] {
        (chosen ?? running).filter { $0 !== member }
    }
}

/// `count` distinct TCP ports on 127.0.0.1 that are free now, below Linux's ephemeral range
/// (32768 and up) so that outgoing connections do not take them before the members bind them.
func freePorts(count: Int) throws -> [Int] {
    var sockets: [Int32] = []
    defer { for socket in sockets { close(socket) } }
    var ports: [Int] = []
    var attempts = 0
    while ports.count < count {
        attempts += 1
        guard attempts < 10_000 else { throw TimeoutError(description: "found no free ports") }
        let port = Int.random(in: 20_000..<32_000)
        if ports.contains(port) { continue }
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { continue }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        sockets.append(descriptor)
        if bound == 0 { ports.append(port) }
    }
    return ports
}
