import Foundation
import StatehouseClient
import Testing

extension LocalClusterTests {
    /// The Swift client library against a real three-member cluster: the same cases run against
    /// Statehouse and against etcd 3.4, so a difference is a bug in one of ours.
    @Suite("Client library")
    struct ClientLibraryTests {
        @Test("KV: put, get by key, prefix, limit, sort, revision; delete; compact", arguments: ServerKind.available)
        func keyValue(server: ServerKind) async throws {
            try await withClusterClient(server) { _, client in
                let first = try await client.put("app/a", "1")
                try await client.put("app/b", "2")
                try await client.put("app/c", "3")
                let overwritten = try await client.put("app/a", "10", prevKV: true)
                #expect(overwritten.previous?.valueString == "1")
                #expect(overwritten.header.revision == first.header.revision + 3)

                let a = try #require(try await client.get("app/a"))
                #expect(a.valueString == "10")
                #expect(a.version == 2)
                #expect(a.createRevision == first.header.revision)
                #expect(try await client.get("app/missing") == nil)

                let all = try await client.get(.prefix("app/"))
                #expect(all.kvs.map(\.keyString) == ["app/a", "app/b", "app/c"])
                #expect(all.count == 3)

                let limited = try await client.get(.prefix("app/"), options: GetOptions(limit: 2, sort: SortOrder(.key, ascending: false)))
                #expect(limited.kvs.map(\.keyString) == ["app/c", "app/b"])
                #expect(limited.more)

                let old = try await client.get(.key("app/a"), options: GetOptions(revision: first.header.revision))
                #expect(old.kvs.first?.valueString == "1")

                let keysOnly = try await client.get(.prefix("app/"), options: GetOptions(serializable: true, keysOnly: true))
                #expect(keysOnly.kvs.allSatisfy { $0.value.isEmpty })

                let deleted = try await client.delete(.prefix("app/"), prevKV: true)
                #expect(deleted.deleted == 3)
                #expect(Set(deleted.previous.map(\.valueString)) == ["10", "2", "3"])
                #expect(try await client.get(.prefix("app/")).count == 0)

                try await client.compact(revision: deleted.header.revision, physical: true)
                let compacted = await #expect(throws: StatehouseError.self) {
                    try await client.get(.key("app/a"), options: GetOptions(revision: first.header.revision))
                }
                #expect(compacted?.code == .compacted)
                #expect(compacted?.message == "etcdserver: mvcc: required revision has been compacted")

                let future = await #expect(throws: StatehouseError.self) {
                    try await client.get(.key("app/a"), options: GetOptions(revision: deleted.header.revision + 1000))
                }
                #expect(future?.code == .futureRevision)
            }
        }

        @Test("Txn builder: compare version, value and mod revision; then / else; nested", arguments: ServerKind.available)
        func transactions(server: ServerKind) async throws {
            try await withClusterClient(server) { _, client in
                let created = try await client.txn()
                    .when(.version("config") == 0)
                    .then(.put("config", "v1"))
                    .else(.get("config"))
                    .commit()
                #expect(created.succeeded)

                let second = try await client.txn()
                    .when(.version("config") == 0)
                    .then(.put("config", "v2"))
                    .else(.get("config"))
                    .commit()
                #expect(!second.succeeded)
                let seen = try #require(second.results.first?.get?.kvs.first)
                #expect(seen.valueString == "v1")

                // Optimistic concurrency: only the writer that read the latest mod revision wins.
                let update = try await client.txn()
                    .when(.modRevision("config") == seen.modRevision, .value("config") == "v1")
                    .then(.put("config", "v2"), .get("config"))
                    .commit()
                #expect(update.succeeded)
                #expect(update.results.last?.get?.kvs.first?.valueString == "v2")
                let stale = try await client.txn().when(.modRevision("config") == seen.modRevision).then(.put("config", "v3")).commit()
                #expect(!stale.succeeded)

                let nested = try await client.txn()
                    .when(.value("config") == "v2")
                    .then(.txn(Txn().when(.version("other") > 0).then(.delete("other")).else(.put("other", "x"))))
                    .commit()
                guard case .txn(let inner)? = nested.results.first else {
                    Issue.record("no nested result in \(nested.results)")
                    return
                }
                #expect(!inner.succeeded)
                #expect(try await client.get("other")?.valueString == "x")

                let tooMany = await #expect(throws: StatehouseError.self) {
                    try await client.txn().then((0..<129).map { Operation.put("many/\($0)", "v") }).commit()
                }
                #expect(tooMany?.code == .tooManyOps)
                let duplicate = await #expect(throws: StatehouseError.self) {
                    try await client.txn().then(.put("dup", "1"), .put("dup", "2")).commit()
                }
                #expect(duplicate?.code == .duplicateKey)
            }
        }

        @Test("Watch: history replay, live events, prev kv, delete; compacted start is a typed error", arguments: ServerKind.available)
        func watch(server: ServerKind) async throws {
            try await withClusterClient(server) { _, client in
                let start = try await client.put("jobs/1", "queued").header.revision
                try await client.put("jobs/1", "running")
                try await client.delete(.key("jobs/1"))
                let history = try await collect(
                    3, from: client.watch(prefix: "jobs/", options: WatchOptions(startRevision: start, prevKV: true)))
                #expect(history.map(\.kind) == [.put, .put, .delete])
                #expect(history.map(\.revision) == [start, start + 1, start + 2])
                #expect(history[1].previous?.valueString == "queued")

                let live = client.watch(prefix: "jobs/")
                async let events = collect(2, from: live)
                // Give the watch time to be created before writing (events before it are not seen).
                try await Task.sleep(for: .milliseconds(500))
                try await client.put("jobs/2", "a")
                try await client.put("other", "ignored")
                try await client.put("jobs/3", "b")
                let seen = try await events
                #expect(seen.map(\.kv.keyString) == ["jobs/2", "jobs/3"])

                let latest = try await client.put("jobs/4", "c").header.revision
                try await client.compact(revision: latest, physical: true)
                let error = await #expect(throws: StatehouseError.self) {
                    _ = try await collect(1, from: client.watch(prefix: "jobs/", options: WatchOptions(startRevision: start)))
                }
                #expect(error?.code == .compacted)
                #expect(error?.compactRevision == latest)
            }
        }

        @Test("Leases: grant, attach, time to live, list, keep-alive, revoke deletes keys; unknown lease", arguments: ServerKind.available)
        func leases(server: ServerKind) async throws {
            try await withClusterClient(server) { _, client in
                let lease = try await client.grantLease(ttl: 30)
                #expect(lease.ttl == 30)
                try await client.put("session/key", "v", lease: lease.id)
                let ttl = try await client.leaseTimeToLive(lease.id, keys: true)
                #expect(ttl.grantedTTL == 30)
                #expect(ttl.ttl > 0 && ttl.ttl <= 30)
                #expect(ttl.keys.map { String(decoding: $0, as: UTF8.self) } == ["session/key"])
                #expect(try await client.leases().contains(lease.id))
                #expect(try await client.renewLease(lease.id) == 30)

                // A short lease kept alive in the background outlives its TTL.
                let short = try await client.grantLease(ttl: 2)
                try await client.put("kept", "alive", lease: short.id)
                let keepAlive = client.keepAlive(short.id, ttl: short.ttl)
                try await Task.sleep(for: .seconds(4))
                #expect(keepAlive.lost == nil)
                #expect(try await client.get("kept")?.valueString == "alive")
                keepAlive.cancel()
                #expect(keepAlive.lost == .cancelled)

                try await client.revokeLease(lease.id)
                #expect(try await client.get("session/key") == nil)
                #expect(try await client.leaseTimeToLive(lease.id).ttl == -1)
                #expect(try await client.renewLease(lease.id) == 0)

                let unknown = await #expect(throws: StatehouseError.self) {
                    try await client.put("k", "v", lease: LeaseID(0x1234_5678))
                }
                #expect(unknown?.code == .leaseNotFound)
                #expect(unknown?.message == "etcdserver: requested lease not found")
            }
        }

        @Test("Session loss is reported when its lease is revoked from outside", arguments: ServerKind.available)
        func sessionLoss(server: ServerKind) async throws {
            try await withClusterClient(server) { _, client in
                let session = try await client.makeSession(ttl: 3)
                #expect(session.isAlive)
                let mutex = DistributedMutex(session: session, name: "locks/loss")
                let token = try await mutex.lock()
                try await mutex.guardedPut("guarded", "1")

                // Someone else (an operator, another client) revokes the session's lease.
                try await client.revokeLease(session.lease)
                let loss = try await within(.seconds(10), "the session noticing its loss") { await session.waitUntilLost() }
                #expect(loss == .expiredOrRevoked)
                #expect(!session.isAlive)

                // The lock key went with the lease, so a guarded write under the old token fails.
                let refused = await #expect(throws: StatehouseError.self) { try await mutex.guardedPut("guarded", "2") }
                #expect(refused?.code == .notHeld)
                #expect(try await client.get("guarded")?.valueString == "1")
                #expect(try await client.get(token.keyString) == nil)
            }
        }

        @Test("DistributedMutex: one holder at a time, handover in queue order, increasing fencing tokens", arguments: ServerKind.available)
        func mutex(server: ServerKind) async throws {
            try await withClusterClient(server) { _, client in
                let first = try await client.makeSession(ttl: 10)
                let second = try await client.makeSession(ttl: 10)
                let a = DistributedMutex(session: first, name: "locks/job")
                let b = DistributedMutex(session: second, name: "locks/job")
                let tokenA = try await a.lock()

                let acquiredB = Signal()
                try await withThrowingTaskGroup(of: LockToken.self) { group in
                    group.addTask {
                        let token = try await b.lock()
                        acquiredB.fire()
                        return token
                    }
                    try await Task.sleep(for: .seconds(1))
                    #expect(!acquiredB.fired, "the second session took the lock while the first held it")
                    // The holder's guarded writes succeed; the waiter has no token to write with.
                    try await a.guardedPut("jobs/owner", "a")
                    let notHeld = await #expect(throws: StatehouseError.self) { try await b.guardedPut("jobs/owner", "b") }
                    #expect(notHeld?.code == .notHeld)

                    try await a.unlock()
                    let tokenB = try #require(try await group.next())
                    #expect(tokenB.revision > tokenA.revision)
                    // A's token no longer holds.
                    let stale = await #expect(throws: StatehouseError.self) { try await a.guardedPut("jobs/owner", "a2") }
                    #expect(stale?.code == .notHeld)
                    try await b.guardedPut("jobs/owner", "b")
                }
                #expect(try await client.get("jobs/owner")?.valueString == "b")

                let result = try await b.withLock { token in token.revision }
                #expect(result > tokenA.revision)
                try await first.close()
                try await second.close()
                #expect(try await client.get(.prefix("locks/job/")).count == 0)
            }
        }

        @Test("Election: campaign, leader, proclaim, observe, resign and handover", arguments: ServerKind.available)
        func election(server: ServerKind) async throws {
            try await withClusterClient(server) { _, client in
                let s1 = try await client.makeSession(ttl: 10)
                let s2 = try await client.makeSession(ttl: 10)
                let e1 = Election(session: s1, name: "elections/scheduler")
                let e2 = Election(session: s2, name: "elections/scheduler")
                let noLeader = await #expect(throws: StatehouseError.self) { try await e1.leader() }
                #expect(noLeader?.code == .noElectionLeader)

                try await e1.campaign("node-1")
                #expect(try await e1.leader().valueString == "node-1")

                var observed = client.observeElection("elections/scheduler").makeAsyncIterator()
                #expect(try await observed.next()?.valueString == "node-1")

                try await e1.proclaim("node-1b")
                #expect(try await observed.next()?.valueString == "node-1b")

                try await withThrowingTaskGroup(of: LeaderKey.self) { group in
                    group.addTask { try await e2.campaign("node-2") }
                    try await Task.sleep(for: .milliseconds(500))
                    #expect(try await e2.leader().valueString == "node-1b")
                    let refused = await #expect(throws: StatehouseError.self) { try await e2.proclaim("usurper") }
                    #expect(refused?.code == .notHeld)
                    try await e1.resign()
                    let leader = try #require(try await group.next())
                    #expect(leader.revision > 0)
                }
                #expect(try await observed.next()?.valueString == "node-2")
                #expect(try await e2.leader().valueString == "node-2")
                try await s1.close()
                try await s2.close()
            }
        }

        @Test("Cluster and maintenance: members, status, alarms, hash, snapshot with progress", arguments: ServerKind.available)
        func clusterAndMaintenance(server: ServerKind) async throws {
            try await withClusterClient(server) { cluster, client in
                let members = try await client.members()
                #expect(members.count == 3)
                #expect(Set(members.map(\.name)) == ["n1", "n2", "n3"])
                #expect(members.allSatisfy { !$0.isLearner && $0.clientURLs.count == 1 })

                try await client.put("snap", "shot")
                var leaders: Set<UInt64> = []
                for endpoint in client.configuration.endpoints {
                    let status = try await client.status(of: endpoint)
                    #expect(status.version.hasPrefix("3.4"))
                    #expect(status.dbSize > 0)
                    leaders.insert(status.leader)
                    #expect(await client.isHealthy(endpoint))
                }
                #expect(leaders.count == 1 && !leaders.contains(0))
                #expect(try await client.alarms().isEmpty)

                let revision = try await client.get(.key("snap")).header.revision
                var hashes: Set<UInt32> = []
                for endpoint in client.configuration.endpoints {
                    hashes.insert(try await client.hashKV(endpoint, revision: revision).hash)
                }
                #expect(hashes.count == 1)

                let path = cluster.root + "/backup.db"
                let progress = ProgressLog()
                let size = try await client.snapshot(to: path) { received, remaining in progress.record(received, remaining) }
                #expect(size > 0)
                let attributes = try FileManager.default.attributesOfItem(atPath: path)
                #expect((attributes[.size] as? Int64) == size || (attributes[.size] as? Int).map(Int64.init) == size)
                #expect(progress.last?.received == size)
                #expect(!FileManager.default.fileExists(atPath: path + ".part"))
            }
        }

        @Test("Errors: an oversized request, an empty key and an unreachable cluster", arguments: ServerKind.available)
        func errors(server: ServerKind) async throws {
            try await withClusterClient(server) { _, client in
                let large = await #expect(throws: StatehouseError.self) {
                    try await client.put("big", [UInt8](repeating: 7, count: 2 << 20))
                }
                #expect(large?.code == .requestTooLarge)
                let empty = await #expect(throws: StatehouseError.self) { try await client.put("", "v") }
                #expect(empty?.code == .emptyKey)
                #expect(empty?.message == "etcdserver: key is not provided")
            }
            // No server at all: calls fail with `unavailable` or at their deadline, quickly.
            var configuration = try StatehouseClientConfiguration(endpoints: ["127.0.0.1:1", "127.0.0.1:2"])
            configuration.requestTimeout = .seconds(2)
            try await withStatehouseClient(configuration: configuration) { client in
                let started = ContinuousClock.now
                let error = await #expect(throws: StatehouseError.self) { try await client.get("k") }
                #expect(error.map { [.unavailable, .deadlineExceeded].contains($0.code) } == true)
                #expect(ContinuousClock.now - started < .seconds(4))
            }
        }
    }
}

/// A one-shot flag for tests.
final class Signal: Sendable {
    private let state = NSLockedValue(false)
    var fired: Bool { state.value }
    func fire() { state.set(true) }
}

/// The progress callbacks of a snapshot.
final class ProgressLog: Sendable {
    private let state = NSLockedValue<[(received: Int64, remaining: Int64)]>([])
    var last: (received: Int64, remaining: Int64)? { state.value.last }
    func record(_ received: Int64, _ remaining: Int64) { state.mutate { $0.append((received, remaining)) } }
}

/// A value behind an NSLock (Sendable for the tests' small shared state).
final class NSLockedValue<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value

    init(_ value: Value) {
        stored = value
    }

    var value: Value { lock.withLock { stored } }
    func set(_ value: Value) { lock.withLock { stored = value } }
    func mutate(_ body: (inout Value) -> Void) { lock.withLock { body(&stored) } }
}
