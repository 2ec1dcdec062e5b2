import Foundation
import Logging
import ServiceLifecycle
import StatehouseClient
import Testing

extension LocalClusterTests {
    /// What Swift service authors expect from the client, against a real three-member cluster:
    /// `Codable` values, the compare-and-swap update loop, namespaces, running as a
    /// swift-service-lifecycle service, and endpoints learned from the member list.
    @Suite("Client for services")
    struct ClientServiceTests {
        struct Settings: Codable, Equatable {
            var replicas: Int
            var zone: String
        }

        @Test("Codable get and put, in transactions too")
        func codableValues() async throws {
            try await withClusterClient(.statehouse) { _, client in
                #expect(try await client.get("config/settings", as: Settings.self) == nil)
                try await client.put("config/settings", encoding: Settings(replicas: 3, zone: "b"))
                #expect(try await client.get("config/settings", as: Settings.self) == Settings(replicas: 3, zone: "b"))
                #expect(try await client.get("config/settings")?.valueString == #"{"replicas":3,"zone":"b"}"#)
                try await client.txn().then(try .put("config/other", encoding: Settings(replicas: 5, zone: "c"))).commit()
                #expect(try await client.get("config/other")?.decode(Settings.self).replicas == 5)
                try await client.put("config/broken", "not json")
                await #expect(throws: DecodingError.self) { try await client.get("config/broken", as: Settings.self) }
            }
        }

        @Test("update: a compare-and-swap loop loses no increment under contention")
        func updateUnderContention() async throws {
            try await withClusterClient(.statehouse) { _, client in
                let writers = 8
                let increments = 10
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<writers {
                        group.addTask {
                            for _ in 0..<increments {
                                try await client.update("stats/counter", as: Int.self) { ($0 ?? 0) + 1 }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                #expect(try await client.get("stats/counter", as: Int.self) == writers * increments)
                let counter = try #require(try await client.get("stats/counter"))
                #expect(counter.version == Int64(writers * increments), "every update is one write")

                struct Refused: Error {}
                await #expect(throws: Refused.self) {
                    try await client.update("stats/counter", as: Int.self) { _ in throw Refused() }
                }
                #expect(try await client.get("stats/counter", as: Int.self) == writers * increments)
            }
        }

        @Test("Namespaces: relative keys in, relative keys out, no access outside")
        func namespaces() async throws {
            try await withClusterClient(.statehouse) { _, client in
                let acme = client.namespace("tenants/acme/")
                let other = client.namespace("tenants/other/")
                try await acme.put("orders/1", "paid")
                try await acme.put("orders/2", "open")
                try await other.put("orders/1", "theirs")
                try await client.put("tenants/acme", "outside (the prefix without its slash)")

                #expect(try await client.get("tenants/acme/orders/1")?.valueString == "paid")
                #expect(try await acme.get("orders/1")?.keyString == "orders/1")
                #expect(try await acme.get(.prefix("orders/")).kvs.map(\.keyString) == ["orders/1", "orders/2"])
                #expect(try await acme.get(.all).kvs.map(\.keyString) == ["orders/1", "orders/2"])
                #expect(try await acme.get(.from("orders/2")).kvs.map(\.keyString) == ["orders/2"])

                let txn = try await acme.commit(
                    Txn().when(.value("orders/2") == "open").then(.put("orders/2", "paid", prevKV: true), .get(.prefix("orders/"))))
                #expect(txn.succeeded)
                #expect(txn.results.last?.get?.kvs.map(\.keyString) == ["orders/1", "orders/2"])
                #expect(try await other.get("orders/2") == nil)

                try await acme.put("settings", encoding: Settings(replicas: 1, zone: "a"))
                #expect(
                    try await acme.update("settings", as: Settings.self) { old in
                        var new = old ?? Settings(replicas: 0, zone: "?")
                        new.replicas += 1
                        return new
                    }.replicas == 2)

                let nested = acme.namespace("orders/")
                #expect(try await nested.get("1")?.valueString == "paid")

                let start = try await client.get(.key("tenants/")).header.revision + 1
                // From `start`, not from whenever the watch is registered: the puts below may
                // land before it is.
                let all = client.watch(.prefix("tenants/"), options: WatchOptions(startRevision: start))
                async let watched = collect(2, from: all, timeout: .seconds(10))
                let events = acme.watch(.prefix("orders/"), options: WatchOptions(startRevision: start))
                var iterator = events.makeAsyncIterator()
                try await other.put("orders/9", "x")
                try await acme.put("orders/3", "new")
                let first = try await iterator.next()
                #expect(first?.kv.keyString == "orders/3", "the namespace's watch sees its own keys only, relative")
                _ = try await watched

                let deleted = try await acme.delete(.all)
                #expect(deleted.deleted == 4)
                #expect(try await client.get("tenants/acme")?.valueString == "outside (the prefix without its slash)")
                #expect(try await other.get(.all).count == 2)
            }
        }

        @Test("Service: runs in a ServiceGroup and shuts down gracefully")
        func serviceLifecycle() async throws {
            try await withClusterClient(.statehouse) { cluster, _ in
                let configuration = try StatehouseClientConfiguration(endpoints: cluster.members.map(\.clientURL))
                let client = try StatehouseClient(configuration: configuration)
                let group = ServiceGroup(
                    configuration: ServiceGroupConfiguration(services: [client], logger: Logger(label: "service-test")))
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    tasks.addTask { try await group.run() }
                    try await client.put("service/state", "running")
                    let watch = client.watch(key: "service/state")
                    tasks.addTask {
                        // An open watch ends when the client shuts down.
                        for try await _ in watch {}
                    }
                    try await Task.sleep(for: .milliseconds(200))
                    await group.triggerGracefulShutdown()
                    try await within(.seconds(10), "the service group to stop") {
                        while true {
                            do {
                                try await client.put("service/state", "late")
                            } catch let error as StatehouseError where error.code == .unavailable {
                                return
                            }
                            try await Task.sleep(for: .milliseconds(50))
                        }
                    }
                    try await tasks.waitForAll()
                }
                let refused = await #expect(throws: StatehouseError.self) { try await client.get("service/state") }
                #expect(refused?.code == .unavailable)
            }
        }

        @Test("Endpoints: a member added to the cluster is learned from the member list")
        func endpointRefresh() async throws {
            try await withClusterClient(.statehouse, configure: { $0.endpointRefreshInterval = .milliseconds(300) }) {
                cluster, client in
                #expect(client.endpoints.count == 3)
                let joining = try cluster.makeJoiningMember(name: "n4")
                let added = try await eventually("MemberAdd to be accepted", timeout: .seconds(20), interval: .milliseconds(500)) {
                    try? await client.addMember(peerURLs: [joining.peerURL], isLearner: true)
                }
                joining.initialCluster = added.members.map { member in
                    let name = member.id == added.member?.id ? joining.name : member.name
                    return member.peerURLs.map { "\(name)=\($0)" }.joined(separator: ",")
                }.joined(separator: ",")
                try cluster.launch(joining)
                let learned = Endpoint(host: "127.0.0.1", port: joining.clientPort)
                try await eventually("the client to learn n4's endpoint", timeout: .seconds(30), interval: .milliseconds(300)) {
                    client.endpoints.contains(learned) ? () : nil
                }
                #expect(client.endpoints.count == 4)
                let status = try await client.status(of: learned)
                #expect(status.isLearner)
                #expect(try await client.refreshEndpoints().isEmpty, "a second refresh adds nothing")
            }
        }
    }
}
