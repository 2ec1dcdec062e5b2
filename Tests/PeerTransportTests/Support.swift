import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PeerTransport

/// Frames a transport received, by sender, in arrival order.
final class Inbox: Sendable {
    private let frames = NIOLockedValueBox<[UInt64: [[UInt8]]]>([:])

    func append(_ frame: [UInt8], from sender: UInt64) {
        frames.withLockedValue { $0[sender, default: []].append(frame) }
    }

    func frames(from sender: UInt64) -> [[UInt8]] {
        frames.withLockedValue { $0[sender] ?? [] }
    }

    func count(from sender: UInt64) -> Int {
        frames.withLockedValue { $0[sender]?.count ?? 0 }
    }

    var total: Int {
        frames.withLockedValue { $0.values.reduce(0) { $0 + $1.count } }
    }
}

/// A log handler that keeps every message, to check what was logged.
struct CapturingLogHandler: LogHandler {
    let records: NIOLockedValueBox<[(level: Logger.Level, message: String)]>
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        records.withLockedValue { $0.append((event.level, event.message.description)) }
    }
}

/// One member under test: its transport, what it received, and its port.
struct Member {
    var id: UInt64
    var transport: PeerTransport
    var inbox: Inbox
    var port: Int
    var logs: NIOLockedValueBox<[(level: Logger.Level, message: String)]>

    var logMessages: [String] { logs.withLockedValue { $0.map(\.message) } }
}

/// A frame `size` bytes long whose first 8 bytes are `sequence`, big-endian, and the rest a pattern.
func makeFrame(sequence: Int, size: Int = 100) -> [UInt8] {
    precondition(size >= 8)
    var frame = [UInt8](repeating: 0, count: size)
    for index in 0..<8 { frame[index] = UInt8(truncatingIfNeeded: UInt64(sequence) >> UInt64(56 - 8 * index)) }
    for index in 8..<size { frame[index] = UInt8(truncatingIfNeeded: index &* 31 &+ sequence) }
    return frame
}

/// The sequence number `makeFrame(sequence:size:)` put in `frame`.
func sequence(of frame: [UInt8]) -> Int {
    Int(frame.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
func eventually(timeout: Duration = .seconds(2), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

/// A port that was free a moment ago (bound to port 0, then closed).
func freePort(group: any EventLoopGroup) async throws -> Int {
    let channel = try await ServerBootstrap(group: group)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress!.port!
    try await channel.close()
    return port
}

/// What a transport test runs with: an event loop group and the members to shut down afterwards
/// (see ``withTransports(_:)``).
final class TransportHarness {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    private var members: [PeerTransport] = []

    /// Creates member `id` of `cluster`, listening on a free port of 127.0.0.1 unless `listen` is false.
    func makeMember(
        id: UInt64, cluster: UInt64 = 7, listen: Bool = true, configure: (inout PeerTransport.Configuration) -> Void = { _ in }
    ) async throws -> Member {
        var configuration = PeerTransport.Configuration(localID: id, clusterID: cluster)
        configuration.reconnectDelay = (.milliseconds(20), .milliseconds(200))
        configure(&configuration)
        let inbox = Inbox()
        let logs = NIOLockedValueBox<[(level: Logger.Level, message: String)]>([])
        let logger = Logger(label: "peer-\(id)") { _ in CapturingLogHandler(records: logs) }
        let transport = PeerTransport(configuration: configuration, group: group, logger: logger) { sender, frame in
            inbox.append(frame, from: sender)
        }
        members.append(transport)
        let port = listen ? try await transport.listen(host: "127.0.0.1", port: 0) : 0
        return Member(id: id, transport: transport, inbox: inbox, port: port, logs: logs)
    }

    /// Tells each member where every other member listens.
    func connectAll(_ members: [Member]) {
        for member in members {
            for peer in members where peer.id != member.id {
                member.transport.setPeer(peer.id, host: "127.0.0.1", port: peer.port)
            }
        }
    }

    /// Opens a raw TCP connection to `port`, for speaking something other than the peer protocol.
    func rawConnection(to port: Int) async throws -> any Channel {
        try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get()
    }

    /// Shuts down every member made, then the event loop group.
    fileprivate func shutdown() async throws {
        for member in members { await member.shutdown() }
        members = []
        try await group.shutdownGracefully()
    }
}

/// Runs `body` with a fresh ``TransportHarness``, and shuts the harness's members and event loop
/// group down afterwards, also when `body` throws.
func withTransports(_ body: (TransportHarness) async throws -> Void) async throws {
    let harness = TransportHarness()
    do {
        try await body(harness)
    } catch {
        try await harness.shutdown()
        throw error
    }
    try await harness.shutdown()
}
