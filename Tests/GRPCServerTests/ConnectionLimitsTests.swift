import GRPCServer
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP2
import NIOPosix
import Testing

/// Each connection limit, with small values: the client over it gets etcd's answer (or its
/// connection closed) and the other clients carry on.
@Suite("Connection limits", .serialized)
struct ConnectionLimitsTests {
    @Test("--max-concurrent-streams: a stream over the limit waits until another closes")
    func concurrentStreamsOverTheLimitWait() async throws {
        try await withServer(configure: { $0.maxConcurrentStreams = 1 }) { server in
            let connection = try await server.connect()
            let hanging = try await connection.makeStream()
            try await hanging.sendHeaders(path: TestPath.hang)
            try await hanging.sendMessage(Array("wait".utf8))
            let second = Task { try await connection.unary(path: TestPath.unary, message: Array("second".utf8)) }
            try await Task.sleep(for: .milliseconds(300))
            #expect(server.probe.state.withLockedValue { $0.received.count } == 1, "the second call must not start yet")
            try await hanging.reset()
            let response = try await second.value
            #expect(response.grpcStatus == 0)
            #expect(response.messages == [Array("second".utf8)])
            await connection.close()
        }
    }

    @Test("--grpc-keepalive-min-time: pinging too often gets GOAWAY ENHANCE_YOUR_CALM; others carry on")
    func pingingTooOftenGetsEnhanceYourCalm() async throws {
        try await withServer(configure: { $0.keepaliveMinTime = .seconds(10) }) { server in
            let bystander = try await server.connect()
            let connection = try await server.connect()
            for index in 0..<4 {
                try await connection.channel.writeAndFlush(
                    HTTP2Frame(streamID: .rootStream, payload: .ping(HTTP2PingData(withInteger: UInt64(index)), ack: false)))
            }
            _ = try await connection.goAway()
            let goAways = try await connection.goAways()
            #expect(goAways.first?.code == .enhanceYourCalm)
            try await connection.channel.closeFuture.get(within: .seconds(2), "the connection to close")
            let response = try await bystander.unary(path: TestPath.unary, message: [1, 2, 3])
            #expect(response.grpcStatus == 0)
            await bystander.close()
        }
    }

    @Test("--grpc-keepalive-min-time: pings spaced by more than the minimum are answered")
    func pingsSpacedEnoughAreFine() async throws {
        try await withServer(configure: { $0.keepaliveMinTime = .milliseconds(20) }) { server in
            let connection = try await server.connect()
            // Each PING is sent 250 ms after the previous one was answered, so that the server
            // sees them spaced even if it stalls (a stalled server reads pings sent 250 ms apart
            // at the same moment).
            for index in 0..<5 {
                try await connection.ping(UInt64(index))
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(try await connection.goAways().isEmpty)
            let response = try await connection.unary(path: TestPath.unary, message: [1])
            #expect(response.grpcStatus == 0)
            await connection.close()
        }
    }

    @Test("--grpc-keepalive-interval and -timeout: a client that does not answer pings is closed")
    func silentClientIsClosedAfterKeepaliveTimeout() async throws {
        try await withServer(configure: {
            $0.keepaliveInterval = .milliseconds(200)
            $0.keepaliveTimeout = .milliseconds(200)
            $0.idleTimeout = nil
        }) { server in
            // A raw client: the preface and an empty SETTINGS frame, then silence (no PING ack).
            let raw = try await ClientBootstrap(group: server.group).connect(host: "127.0.0.1", port: server.port).get()
            var hello = raw.allocator.buffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            hello.writeBytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
            try await raw.writeAndFlush(hello)
            // A client whose HTTP/2 stack answers pings stays connected.
            let answering = try await server.connect()
            try await raw.closeFuture.get(within: .seconds(3), "the silent connection to close")
            let response = try await answering.unary(path: TestPath.unary, message: [7])
            #expect(response.grpcStatus == 0)
            #expect(answering.channel.isActive)
            await answering.close()
        }
    }

    @Test("Idle timeout: a connection without calls gets GOAWAY and is closed; one with a call is not")
    func idleConnectionsAreClosed() async throws {
        try await withServer(configure: { $0.idleTimeout = .milliseconds(300) }) { server in
            let idle = try await server.connect()
            let busy = try await server.connect()
            let hanging = try await busy.makeStream()
            try await hanging.sendHeaders(path: TestPath.hang)
            // A connection that never says which protocol it speaks is closed too.
            let mute = try await ClientBootstrap(group: server.group).connect(host: "127.0.0.1", port: server.port).get()
            _ = try await idle.goAway(within: .seconds(3))
            try await idle.channel.closeFuture.get(within: .seconds(3), "the idle connection to close")
            try await mute.closeFuture.get(within: .seconds(3), "the mute connection to close")
            #expect(busy.channel.isActive)
            try await hanging.reset()
            await busy.close()
        }
    }

    @Test("Connection cap: a connection over it is closed at once; the others carry on")
    func connectionsOverTheCapAreClosed() async throws {
        try await withServer(configure: { $0.maxConnections = 2 }) { server in
            let first = try await server.connect()
            let second = try await server.connect()
            await #expect(throws: (any Error).self) { _ = try await server.connect() }
            for connection in [first, second] {
                #expect(try await connection.unary(path: TestPath.unary, message: [1]).grpcStatus == 0)
            }
            await first.close()
            // The slot is free again once the server has seen the close.
            var replacement: TestConnection?
            for _ in 0..<50 where replacement == nil {
                replacement = try? await server.connect()
                if replacement == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            let third = try #require(replacement)
            #expect(try await third.unary(path: TestPath.unary, message: [2]).grpcStatus == 0)
            await second.close()
            await third.close()
        }
    }

    @Test("Per-connection buffer: a stream that would pass it ends with RESOURCE_EXHAUSTED; the others carry on")
    func partialMessagesOverTheConnectionBudgetAreRefused() async throws {
        try await withServer(configure: { $0.maxConnectionBufferedBytes = 100_000 }) { server in
            let connection = try await server.connect()
            let message = [UInt8](repeating: 7, count: 80_000)
            let framed = grpcFrame(message)
            let first = try await connection.makeStream()
            try await first.sendHeaders(path: TestPath.unary)
            try await first.sendData(Array(framed.prefix(60_000)))
            let second = try await connection.makeStream()
            try await second.sendHeaders(path: TestPath.unary)
            try await second.sendData(Array(grpcFrame([UInt8](repeating: 1, count: 90_000)).prefix(60_000)))
            let refused = try await second.response()
            #expect(refused.grpcStatus == 8)
            // The first stream's message still fits: it completes.
            try await first.sendData(Array(framed.dropFirst(60_000)), endStream: true)
            let answered = try await first.response()
            #expect(answered.grpcStatus == 0)
            #expect(answered.messages == [message])
            await connection.close()
        }
    }
}
