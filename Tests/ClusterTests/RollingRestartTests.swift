import EtcdWire
import Foundation
import Glibc
import Synchronization
import Testing

extension LocalClusterTests {
    /// Stopping members one at a time with SIGTERM under a steady write load fails no write:
    /// a stopping member finishes its calls before it closes connections, writes wait for a
    /// new leader instead of failing, and writes whose leader changed are proposed again.
    @Suite("Rolling restart")
    struct RollingRestartTests {
        /// What the writers did: acknowledged puts (key → value) and failed ones.
        final class WriteLog: Sendable {
            private let state = Mutex<(acknowledged: [String: String], failed: [String])>(([:], []))
            private let stopping = Atomic<Bool>(false)

            var isStopping: Bool { stopping.load(ordering: .relaxed) }
            func stop() { stopping.store(true, ordering: .relaxed) }
            func acknowledge(_ key: String, _ value: String) { state.withLock { $0.acknowledged[key] = value } }
            func fail(_ description: String) { state.withLock { $0.failed.append(description) } }
            var acknowledged: [String: String] { state.withLock { $0.acknowledged } }
            var failed: [String] { state.withLock { $0.failed } }
        }

        /// Whether a call failed before the server could have seen it (no connection, a
        /// connection already told to go away, or a refused stream): a real client (grpc-go)
        /// retries those on another connection by itself. Every other failure counts.
        static func neverReachedTheServer(_ error: any Error) -> Bool {
            guard let error = error as? GRPCCallError else { return true }
            return error.message.lowercased().contains("refused")
        }

        /// One writer: puts `rolling/<writer>/<n>` through member `start`, moving to the next
        /// member when a call cannot reach its member, until the log says stop.
        static func write(_ writer: Int, ports: [Int], log: WriteLog) async {
            var member = writer % ports.count
            var client: EtcdClient?
            var sequence = 0
            while !log.isStopping {
                let key = "rolling/\(writer)/\(sequence)"
                let value = "\(writer)-\(sequence)"
                do {
                    if let open = client, !open.connection.isActive || open.connection.isDraining {
                        // Gone or going away: new calls go to another member, as grpc-go does.
                        await open.close()
                        client = nil
                        member = (member + 1) % ports.count
                    }
                    if client == nil { client = try await EtcdClient.connect(port: ports[member]) }
                    try await client!.put(key, value, timeout: .seconds(10))
                    log.acknowledge(key, value)
                    sequence += 1
                } catch  where neverReachedTheServer(error) {
                    await client?.close()
                    client = nil
                    member = (member + 1) % ports.count
                    try? await Task.sleep(for: .milliseconds(20))
                } catch {
                    log.fail("\(key) through port \(ports[member]): \(error)")
                    sequence += 1
                }
            }
            await client?.close()
        }

        /// Twenty-four writers keep writing while each member in turn is stopped with SIGTERM
        /// and restarted; no write fails, and every acknowledged one is stored on every member.
        @Test("A rolling restart under load fails no write and loses none")
        func rollingRestartFailsNoWrite() async throws {
            try await withCluster { cluster in
                if cluster.isReferenceServer {
                    try skipTest("etcd 3.4 fails writes in this drill (\"transport is closing\")")
                }
                let log = WriteLog()
                let ports = cluster.members.map(\.clientPort)
                let writers = Task {
                    await withTaskGroup(of: Void.self) { group in
                        for writer in 0..<24 { group.addTask { await Self.write(writer, ports: ports, log: log) } }
                    }
                }
                try await eventually("the first writes", timeout: .seconds(10)) { log.acknowledged.count >= 50 ? () : nil }
                for member in cluster.members {
                    let status = try await cluster.stop(member, signal: SIGTERM, timeout: .seconds(15))
                    #expect(status == .exited(0), "\(member.name) after SIGTERM")
                    try cluster.launch(member)
                    try await cluster.waitUntilHealthy([member])
                    let before = log.acknowledged.count
                    try await eventually("writes after restarting \(member.name)", timeout: .seconds(10)) {
                        log.acknowledged.count >= before + 50 ? () : nil
                    }
                }
                log.stop()
                await writers.value
                let acknowledged = log.acknowledged
                print("rolling restart: \(acknowledged.count) writes acknowledged, \(log.failed.count) failed")
                #expect(log.failed.isEmpty, "\(log.failed.count) writes failed: \(log.failed.prefix(10))")
                for member in cluster.members {
                    let client = try await cluster.client(member)
                    let stored = try await eventually("\(member.name) to hold every acknowledged write", timeout: .seconds(10)) {
                        let stored = keyValues(try await client.get("rolling/", prefix: true, serializable: true))
                        return acknowledged.allSatisfy { stored[$0.key] == $0.value } ? stored : nil
                    }
                    #expect(acknowledged.allSatisfy { stored[$0.key] == $0.value })
                }
            }
        }
    }
}
