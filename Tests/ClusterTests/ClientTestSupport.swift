import Foundation
import Logging
import StatehouseClient
import Testing

/// The servers the client library's suite runs against: Statehouse, and etcd 3.4 when it is
/// installed (Debian's etcd-server; `.ci/run` installs it), so that any difference between the
/// two shows up as a failing case.
enum ServerKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case statehouse
    case etcd

    /// Where etcd is looked for.
    static let etcdPath = "/usr/bin/etcd"

    var testDescription: String { rawValue }

    /// The server's executable, or nil if it is not there.
    var executable: URL? {
        switch self {
        case .statehouse: LocalCluster.serverExecutable.flatMap { $0.lastPathComponent == "statehouse" ? $0 : nil }
        case .etcd: FileManager.default.isExecutableFile(atPath: Self.etcdPath) ? URL(fileURLWithPath: Self.etcdPath) : nil
        }
    }

    /// The servers present on this machine; says so when etcd is missing.
    static var available: [ServerKind] {
        let present = allCases.filter { $0.executable != nil }
        if !present.contains(.etcd) {
            print("note: \(etcdPath) is missing, so the client suite runs against Statehouse only (apt-get install etcd-server)")
        }
        return present
    }
}

/// A three-member cluster of `server` and a client of all its members, for the duration of
/// `body`. The members are killed afterwards; their files are kept (and their logs printed)
/// if `body` throws or an expectation fails while it runs.
func withClusterClient<Result: Sendable>(
    _ server: ServerKind, size: Int = 3,
    configure: (inout StatehouseClientConfiguration) -> Void = { _ in },
    _ body: (LocalCluster, StatehouseClient) async throws -> Result
) async throws -> Result {
    let executable = try #require(server.executable, "\(server) is not installed")
    let cluster = try LocalCluster(size: size, executable: executable)
    do {
        let (result, issueRecorded) = try await watchingForIssues {
            try await cluster.start()
            var configuration = try StatehouseClientConfiguration(endpoints: cluster.members.map(\.clientURL))
            configure(&configuration)
            var logger = Logger(label: "client-tests")
            logger.logLevel = .info
            return try await withStatehouseClient(configuration: configuration, logger: logger) { client in
                try await body(cluster, client)
            }
        }
        await cluster.shutdown()
        if issueRecorded {
            print("==== \(server) cluster: an expectation failed; files kept in \(cluster.root)")
            print(cluster.logTails(lines: 20))
        } else {
            cluster.removeFiles()
        }
        return result
    } catch {
        await cluster.shutdown()
        print("==== \(server) cluster failed (\(error)); files kept in \(cluster.root)")
        print(cluster.logTails(lines: 20))
        throw error
    }
}

/// Collects the first `count` events of `events`, failing after `timeout`.
func collect(
    _ count: Int, from events: WatchSequence, timeout: Duration = .seconds(20)
) async throws -> [WatchEvent] {
    try await withThrowingTaskGroup(of: [WatchEvent].self) { group in
        group.addTask {
            var collected: [WatchEvent] = []
            for try await event in events {
                collected.append(event)
                if collected.count == count { break }
            }
            return collected
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw TimeoutError(description: "fewer than \(count) watch events within \(timeout)")
        }
        let result = try await group.next() ?? []
        group.cancelAll()
        return result
    }
}

/// Runs `body`, failing if it takes longer than `timeout`.
func within<Result: Sendable>(
    _ timeout: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        guard let first = try await group.next(), let result = first else {
            group.cancelAll()
            throw TimeoutError(description: "\(what) did not finish within \(timeout)")
        }
        group.cancelAll()
        return result
    }
}
