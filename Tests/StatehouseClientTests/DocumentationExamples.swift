// The examples of docs/client.md, compiled with the tests. A test checks that every Swift
// block of that page appears here verbatim; they are not run (they need a cluster: the
// cluster tests exercise the same calls).

import Foundation
import Logging
import ServiceLifecycle
import StatehouseClient
import Testing
import UnixSignals

func documentationExample0() async throws {
    try await withStatehouseClient(endpoints: ["127.0.0.1:2379", "127.0.0.1:22379", "127.0.0.1:32379"]) { client in
        try await client.put("greeting", "hello")
        let value = try await client.get("greeting")
        print(value?.valueString ?? "missing")
    }
}

func documentationExample1() async throws {
    let configuration = try StatehouseClientConfiguration(endpoints: ["127.0.0.1:2379", "127.0.0.1:22379"])
    let client = try StatehouseClient(configuration: configuration, logger: Logger(label: "orders.statehouse"))
    try await withThrowingDiscardingTaskGroup { group in
        group.addTask { try await client.run() }
        try await client.put("orders/next-id", "1")
        client.shutdown()
    }
}

func documentationExample2(client: StatehouseClient) async throws {
    try await client.put("config/mode", "blue")
    let mode = try await client.get("config/mode")
    let all = try await client.get(.prefix("config/"), options: GetOptions(limit: 100, sort: SortOrder(.key)))
    for kv in all.kvs { print(kv.keyString, kv.valueString, kv.modRevision) }
    let earlier = try await client.get(.key("config/mode"), options: GetOptions(revision: all.header.revision - 1))
    try await client.delete(.prefix("config/"))
    try await client.compact(revision: all.header.revision)
    _ = (mode, earlier)
}

func documentationExample3(client: StatehouseClient) async throws {
    let current = try await client.get("inventory/widget")
    let result = try await client.txn()
        .when(.modRevision("inventory/widget") == (current?.modRevision ?? 0))
        .then(.put("inventory/widget", "41"), .get("inventory/widget"))
        .else(.get("inventory/widget"))
        .commit()
    if !result.succeeded {
        print("someone else wrote first; now", result.results.first?.get?.kvs.first?.valueString ?? "deleted")
    }
}

func documentationExample4(client: StatehouseClient) async throws {
    do {
        for try await event in client.watch(prefix: "jobs/", options: WatchOptions(startRevision: 1, prevKV: true)) {
            switch event.kind {
            case .put: print("job", event.kv.keyString, "is now", event.kv.valueString, "at", event.revision)
            case .delete: print("job", event.kv.keyString, "removed")
            }
            if event.kv.keyString == "jobs/stop" { break }
        }
    } catch let error as StatehouseError where error.code == .compacted {
        print("history before", error.compactRevision ?? 0, "is gone: reread the state, then watch from there")
    }
}

func documentationExample5(client: StatehouseClient) async throws {
    let lease = try await client.grantLease(ttl: 10)
    try await client.put("presence/worker-7", "up", lease: lease.id)
    let keepAlive = client.keepAlive(lease.id, ttl: lease.ttl)
    let remaining = try await client.leaseTimeToLive(lease.id, keys: true)
    print(remaining.ttl, remaining.keys.count, try await client.leases().count)
    keepAlive.cancel()
    try await client.revokeLease(lease.id)
}

func documentationExample6(client: StatehouseClient) async throws {
    try await client.withSession(ttl: 10) { session in
        let mutex = DistributedMutex(session: session, name: "locks/billing")
        try await mutex.withLock { token in
            print("holding", token.keyString, "with fencing token", token.revision)
            try await mutex.guardedPut("billing/last-run", "\(token.revision)")
        }
    }
}

func documentationExample7(client: StatehouseClient) async throws {
    let session = try await client.makeSession(ttl: 5)
    let mutex = DistributedMutex(session: session, name: "locks/report")
    try await mutex.lock()
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            try await mutex.guardedPut("reports/status", "running")
        }
        group.addTask {
            if let loss = await session.waitUntilLost() { print("lock lost:", loss) }
        }
        try await group.next()
        group.cancelAll()
    }
    try await mutex.unlock()
    try await session.close()
}

func documentationExample8(client: StatehouseClient) async throws {
    let candidacy = try await client.makeSession(ttl: 10)
    let election = Election(session: candidacy, name: "elections/scheduler")
    let leadership = try await election.campaign("scheduler-a")
    print("leading since revision", leadership.revision)
    try await election.proclaim("scheduler-a, generation 2")
    for try await leader in election.observe() {
        print("leader is", leader.valueString)
        break
    }
    try await election.resign()
    try await candidacy.close()
}

func documentationExample9(client: StatehouseClient) async throws {
    for member in try await client.members() {
        print(member.idString, member.name, member.peerURLs, member.isLearner ? "learner" : "voter")
    }
    for endpoint in client.configuration.endpoints {
        let status = try await client.status(of: endpoint)
        print(endpoint, status.version, status.dbSize, status.leader == status.header.memberID ? "leader" : "follower")
    }
    try await client.snapshot(to: "/tmp/statehouse.backup") { received, remaining in
        print("snapshot:", received, "bytes received,", remaining, "to go")
    }
}

func documentationExample10(
    configuration: StatehouseClientConfiguration, logger: Logger, ordersService: some Service
)
    async throws
{
    let client = try StatehouseClient(configuration: configuration, logger: logger)
    let group = ServiceGroup(services: [client, ordersService], gracefulShutdownSignals: [.sigterm], logger: logger)
    try await group.run()
}

func documentationExample11(client: StatehouseClient) async throws {
    struct Quota: Codable { var used: Int; var limit: Int }
    try await client.put("quotas/acme", encoding: Quota(used: 0, limit: 100))
    let quota = try await client.get("quotas/acme", as: Quota.self)
    let updated = try await client.update("quotas/acme", as: Quota.self) { old in
        var new = old ?? Quota(used: 0, limit: 100)
        new.used += 1
        return new
    }
    try await client.txn().then(try .put("quotas/other", encoding: Quota(used: 0, limit: 10))).commit()
    _ = (quota, updated)
}

func documentationExample12(client: StatehouseClient) async throws {
    let acme = client.namespace("tenants/acme/")
    try await acme.put("orders/1042", "paid")  // tenants/acme/orders/1042
    let orders = try await acme.get(.prefix("orders/"))  // keys "orders/1042", …
    try await acme.commit(Txn().when(.version("orders/1043") == 0).then(.put("orders/1043", "open")))
    _ = orders
}

func documentationExample13() async throws {
    var configuration = try StatehouseClientConfiguration(endpoints: ["127.0.0.1:2379"])
    configuration.credentials = StatehouseCredentials(user: "alice", password: "alice-secret")
    try await withStatehouseClient(configuration: configuration) { client in
        try await client.put("app/greeting", "hello")
        print(try await client.get("app/greeting")?.valueString ?? "missing")
    }
}

func documentationExample14(client: StatehouseClient) async throws {
    try await client.addUser("root", password: "root-secret")
    try await client.addRole("root")
    try await client.grantRole("root", toUser: "root")
    try await client.addRole("app")
    try await client.grantPermission(.prefix(.readWrite, "app/"), toRole: "app")
    try await client.addUser("alice", password: "alice-secret")
    try await client.grantRole("app", toUser: "alice")
    try await client.enableAuth()
}

@Test("Every Swift example in docs/client.md is compiled here")
func documentationExamplesAreCompiled() throws {
    let here = URL(fileURLWithPath: #filePath)
    let root = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let page = try String(contentsOf: root.appendingPathComponent("docs/client.md"), encoding: .utf8)
    let source = try String(contentsOf: here, encoding: .utf8)
    let normalizedSource = normalize(source)
    let blocks = page.components(separatedBy: "```swift\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
    #expect(blocks.count >= 10)
    for block in blocks {
        #expect(normalizedSource.contains(normalize(block)), "not compiled here:\n\(block)")
    }
}

/// The text with each line's leading and trailing spaces removed.
private func normalize(_ text: String) -> String {
    text.split(separator: "\n", omittingEmptySubsequences: false)
        .map { $0.trimmingCharacters(in: .whitespaces) }
        .joined(separator: "\n")
}
