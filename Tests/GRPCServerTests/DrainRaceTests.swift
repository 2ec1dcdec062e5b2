import GRPCServer
import NIOCore
import NIOHPACK
import NIOPosix
import Synchronization
import Testing

/// A call the client sent before it read the server's shutdown GOAWAY is served, not refused
/// and not turned into a connection error. The client here writes HTTP/2 frames as raw bytes,
/// so it can open a stream after the GOAWAY arrived, as a real client does when the two cross.
@Suite("Graceful drain races")
struct DrainRaceTests {
    @Test("a stream opened as the GOAWAY crosses it is answered, and the connection then closes")
    func streamCrossingTheGoAwayIsServed() async throws {
        let running = try await RunningServer.start(configure: { $0.gracefulShutdownTimeout = .seconds(10) })
        let client = try await RawHTTP2Client.connect(to: running.port, group: running.group)
        try await client.send(RawHTTP2Client.preface + RawHTTP2Client.frame(type: 0x4, flags: 0, stream: 0, payload: []))
        // A first call, answered before the shutdown.
        try await client.send(client.unaryCall(stream: 1, path: TestPath.unary, message: [7]))
        _ = try await client.waitFor("the first call's trailers") { $0.contains { $0.isEndOfStream(1) } ? true : nil }

        let shutdown = Task { await running.server.shutdown() }
        let goAway = try await client.waitFor("the drain's GOAWAY") { $0.first { $0.type == 0x7 } }
        #expect(goAway.goAwayError == 0)
        // This call crossed the GOAWAY on the wire: the client sent it before reading it.
        try await client.send(client.unaryCall(stream: 3, path: TestPath.unary, message: [9]))
        let frames = try await client.waitFor("the crossing call's trailers") { frames in
            frames.contains { $0.isEndOfStream(3) } ? frames : nil
        }
        #expect(!frames.contains { $0.type == 0x3 && $0.stream == 3 }, "the crossing call was reset")
        #expect(frames.filter { $0.type == 0x7 }.allSatisfy { $0.goAwayError == 0 }, "a GOAWAY with an error: \(frames)")
        let data = frames.filter { $0.type == 0x0 && $0.stream == 3 }.flatMap(\.payload)
        #expect(data == [0, 0, 0, 0, 1, 9], "the crossing call's answer")

        // Acknowledging the drain's PING tells the server no more streams come: it closes.
        let ping = try #require(frames.first { $0.type == 0x6 && $0.flags & 0x1 == 0 })
        try await client.send(RawHTTP2Client.frame(type: 0x6, flags: 0x1, stream: 0, payload: ping.payload))
        try await client.channel.closeFuture.get(within: .seconds(5), "the server to close the drained connection")
        await shutdown.value
    }
}

/// An HTTP/2 client that writes frames as given and collects the server's frames.
final class RawHTTP2Client: Sendable {
    /// One frame from the server.
    struct Frame: CustomStringConvertible, Sendable {
        var type: UInt8
        var flags: UInt8
        var stream: UInt32
        var payload: [UInt8]

        func isEndOfStream(_ id: UInt32) -> Bool { type == 0x1 && stream == id && flags & 0x1 != 0 }
        var goAwayError: UInt32? {
            guard type == 0x7, payload.count >= 8 else { return nil }
            return payload[4..<8].reduce(0) { $0 << 8 | UInt32($1) }
        }
        var description: String { "type \(type) flags \(flags) stream \(stream) \(payload.count) bytes" }
    }

    /// Splits the bytes the server sent into frames.
    final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        private let state = Mutex<(bytes: [UInt8], frames: [Frame])>(([], []))

        var frames: [Frame] { state.withLock { $0.frames } }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let incoming = Self.unwrapInboundIn(data).readableBytesView
            state.withLock { state in
                state.bytes += incoming
                while state.bytes.count >= 9 {
                    let length = Int(state.bytes[0]) << 16 | Int(state.bytes[1]) << 8 | Int(state.bytes[2])
                    guard state.bytes.count >= 9 + length else { break }
                    let stream = state.bytes[5..<9].reduce(UInt32(0)) { $0 << 8 | UInt32($1) } & 0x7fff_ffff
                    state.frames.append(
                        Frame(type: state.bytes[3], flags: state.bytes[4], stream: stream, payload: Array(state.bytes[9..<(9 + length)])))
                    state.bytes.removeFirst(9 + length)
                }
            }
        }
    }

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    let channel: any Channel
    let collector: Collector
    private let encoder = Mutex(HPACKEncoder(allocator: ByteBufferAllocator()))

    private init(channel: any Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
    }

    static func connect(to port: Int, group: any EventLoopGroup) async throws -> RawHTTP2Client {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { $0.pipeline.addHandler(collector) }
            .connect(host: "127.0.0.1", port: port).get()
        return RawHTTP2Client(channel: channel, collector: collector)
    }

    static func frame(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8]) -> [UInt8] {
        let length = payload.count
        return [UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff), type, flags]
            + [UInt8(stream >> 24 & 0x7f), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)] + payload
    }

    /// HEADERS and DATA (ending the stream) of a unary call carrying `message`.
    func unaryCall(stream: UInt32, path: String, message: [UInt8]) throws -> [UInt8] {
        let headers: HPACKHeaders = [
            ":method": "POST", ":scheme": "http", ":path": path, ":authority": "localhost",
            "content-type": "application/grpc", "te": "trailers",
        ]
        let block = try encoder.withLock { encoder in
            var buffer = ByteBufferAllocator().buffer(capacity: 256)
            try encoder.encode(headers: headers, to: &buffer)
            return Array(buffer.readableBytesView)
        }
        let length = UInt32(message.count)
        let body: [UInt8] = [0, UInt8(length >> 24), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff)] + message
        return Self.frame(type: 0x1, flags: 0x4, stream: stream, payload: block)
            + Self.frame(type: 0x0, flags: 0x1, stream: stream, payload: body)
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes)).get()
    }

    /// Polls the collected frames until `found` returns a value (within 5 s).
    func waitFor<T>(_ what: String, _ found: ([Frame]) -> T?) async throws -> T {
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            if let value = found(collector.frames) { return value }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw RawClientTimeout(what: what, frames: collector.frames)
    }
}

struct RawClientTimeout: Error, CustomStringConvertible {
    var what: String
    var frames: [RawHTTP2Client.Frame]
    var description: String { "timed out waiting for \(what); frames: \(frames)" }
}
