import Foundation
import NIOCore
import NIOPosix
import StatehouseClient
import Synchronization
import Testing

extension LocalClusterTests {
    /// Exactly-once writes across processes: a client whose connection is cut after the server
    /// applied its put, before the answer arrived, retries it, and the put applies once.
    @Suite("Exactly-once writes")
    struct ExactlyOnceTests {
        @Test("a put whose answer is lost after it was applied is retried and applied once")
        func lostAnswerAppliesOnce() async throws {
            try await withCluster { cluster in
                try await withCuttingProxy(to: cluster.members[0].clientPort) { proxy in
                    var configuration = try StatehouseClientConfiguration(endpoints: ["127.0.0.1:\(proxy.port)"])
                    configuration.requestTimeout = .seconds(20)
                    let observerConfiguration = try StatehouseClientConfiguration(endpoints: cluster.members.dropFirst().map(\.clientURL))
                    try await withStatehouseClient(configuration: observerConfiguration) { observer in
                        try await withStatehouseClient(configuration: configuration) { client in
                            // The first write opens the session (the lease grant tells that the cluster
                            // deduplicates), so that the held answer below is that of a write only.
                            try await client.put("warm-up", "1")
                            let before = try await observer.get(.key("once")).header.revision

                            proxy.holdAnswers()
                            async let answer = client.put("once", "v")
                            // The put is applied (seen on another member) while its answer is held.
                            let applied = try await within(.seconds(15), "the put to apply") {
                                while true {
                                    if let kv = try await observer.get("once") { return kv }
                                    try await Task.sleep(for: .milliseconds(20))
                                }
                            }
                            // The observer's member may apply it before the proxied member answers.
                            try await within(.seconds(10), "the answer to reach the proxy") {
                                while proxy.heldBytes == 0 { try await Task.sleep(for: .milliseconds(10)) }
                            }
                            proxy.cutHeldConnections()
                            let result = try await answer

                            let after = try await observer.get(.key("once"))
                            #expect(after.kvs.first?.version == 1, "the put applied more than once: \(after.kvs)")
                            #expect(applied.modRevision == before + 1)
                            #expect(result.header.revision == applied.modRevision, "the retry got another answer")
                            #expect(after.header.revision == applied.modRevision, "something else was applied")
                            #expect(proxy.cuts == 1)
                        }
                        // The same cut without a session: the client cannot tell whether the put
                        // was applied, so it does not send it again and reports the failure.
                        configuration.exactlyOnceWrites = false
                        try await withStatehouseClient(configuration: configuration) { client in
                            try await client.put("warm-up", "2")
                            proxy.holdAnswers()
                            async let answer = client.put("unsure", "v")
                            _ = try await within(.seconds(15), "the put to apply") {
                                while true {
                                    if let kv = try await observer.get("unsure") { return kv }
                                    try await Task.sleep(for: .milliseconds(20))
                                }
                            }
                            proxy.cutHeldConnections()
                            let outcome: Result<PutResult, any Error>
                            do { outcome = .success(try await answer) } catch { outcome = .failure(error) }
                            #expect(throws: StatehouseError.self) { try outcome.get() }
                        }
                    }
                }
            }
        }

        @Test("writes without session headers (etcdctl, the client with exactly-once writes off) apply every time")
        func sessionlessWritesUnchanged() async throws {
            try await withCluster { cluster in
                var configuration = try StatehouseClientConfiguration(endpoints: cluster.members.map(\.clientURL))
                configuration.exactlyOnceWrites = false
                try await withStatehouseClient(configuration: configuration) { client in
                    try await client.put("plain", "a")
                    try await client.put("plain", "a")
                    #expect(try await client.get("plain")?.version == 2)
                    #expect(try await client.leases().isEmpty, "no session lease without exactly-once writes")
                }
                guard FileManager.default.isExecutableFile(atPath: Etcdctl.path) else { return }
                let etcdctl = Etcdctl(cluster: cluster)
                for _ in 0..<2 {
                    let put = try await etcdctl.run(["put", "etcdctl-key", "v"])
                    #expect(put.status == .exited(0) && put.output == "OK\n", "\(put)")
                }
                let get = try await etcdctl.run(["get", "etcdctl-key", "-w", "json"])
                let kvs = try jsonObject(get.output)["kvs"] as? [[String: Any]]
                #expect(jsonInt64(kvs?.first?["version"]) == 2, "\(get)")
            }
        }
    }
}

/// A TCP proxy to a member's client port that can hold the member's answers and then cut the
/// connections they were meant for, so that a request reaches the server but its answer never
/// reaches the client.
final class CuttingProxy: Sendable {
    private struct State {
        var holding = false
        var heldBytes = 0
        var cuts = 0
        var clientChannels: [ObjectIdentifier: any Channel] = [:]
    }

    private let state = Mutex(State())
    /// The port the proxy listens on (127.0.0.1).
    let port: Int

    init(port: Int) {
        self.port = port
    }

    /// From now on, bytes from the member are held instead of relayed.
    func holdAnswers() { state.withLock { $0.holding = true } }

    /// How many bytes from the member were held.
    var heldBytes: Int { state.withLock { $0.heldBytes } }

    /// How many times held connections were cut.
    var cuts: Int { state.withLock { $0.cuts } }

    /// Closes every client connection (dropping the held bytes) and relays normally again.
    func cutHeldConnections() {
        let channels = state.withLock { state in
            state.holding = false
            state.cuts += 1
            defer { state.clientChannels = [:] }
            return Array(state.clientChannels.values)
        }
        for channel in channels { channel.close(promise: nil) }
    }

    /// Whether bytes from the member must be held; counts them if so.
    fileprivate func holds(_ count: Int) -> Bool {
        state.withLock { state in
            guard state.holding else { return false }
            state.heldBytes += count
            return true
        }
    }

    fileprivate func register(_ channel: any Channel) {
        state.withLock { $0.clientChannels[ObjectIdentifier(channel)] = channel }
    }
}

/// Relays the bytes one side of a proxied connection reads to the other side.
private final class RelayHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let peer: any Channel
    /// Set on the member's side: its bytes are answers, which the proxy may hold.
    let proxy: CuttingProxy?

    init(peer: any Channel, holdingFor proxy: CuttingProxy?) {
        self.peer = peer
        self.proxy = proxy
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        if let proxy, proxy.holds(bytes.readableBytes) { return }
        peer.writeAndFlush(bytes, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        peer.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Runs `body` with a ``CuttingProxy`` to `port` on 127.0.0.1, and stops it afterwards.
func withCuttingProxy<Result>(to port: Int, _ body: (CuttingProxy) async throws -> Result) async throws -> Result {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let proxyBox = Mutex<CuttingProxy?>(nil)
    let listener = try await ServerBootstrap(group: group)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.autoRead, value: false)
        .childChannelInitializer { client in
            ClientBootstrap(group: client.eventLoop).connect(host: "127.0.0.1", port: port).flatMapThrowing { member in
                let proxy = proxyBox.withLock { $0 }
                proxy?.register(client)
                try client.pipeline.syncOperations.addHandler(RelayHandler(peer: member, holdingFor: nil))
                try member.pipeline.syncOperations.addHandler(RelayHandler(peer: client, holdingFor: proxy))
                client.setOption(.autoRead, value: true).whenFailure { _ in client.close(promise: nil) }
            }
        }
        .bind(host: "127.0.0.1", port: 0).get()
    let proxy = CuttingProxy(port: listener.localAddress?.port ?? 0)
    proxyBox.withLock { $0 = proxy }
    do {
        let result = try await body(proxy)
        try? await listener.close()
        try? await group.shutdownGracefully()
        return result
    } catch {
        try? await listener.close()
        try? await group.shutdownGracefully()
        throw error
    }
}
