import GRPCServer
import GRPCStatus
import NIOConcurrencyHelpers
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import Testing

/// Starts a server, runs `body` against it, and shuts the server down whatever happens.
func withServer(
    configure: (inout GRPCServerConfiguration) -> Void = { _ in },
    http: HTTPRouter? = nil,
    _ body: (RunningServer) async throws -> Void
) async throws {
    let server = try await RunningServer.start(configure: configure, http: http)
    do {
        try await body(server)
    } catch {
        await server.server.shutdown()
        throw error
    }
    await server.server.shutdown()
}

/// Calls through the server, one test at a time: several tests check how long a call or a
/// shutdown takes, which a crowd of servers started at once on two cores would distort.
@Suite("gRPC server", .serialized)
struct GRPCServerTests {
    // MARK: - Calls

    @Test("Unary echoes the request and ends with OK")
    func unaryEchoesTheRequestAndEndsWithOK() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let response = try await connection.unary(path: TestPath.unary, message: Array("hello".utf8))
            #expect(response.httpStatus == "200")
            #expect(response.headers.first(name: "content-type") == "application/grpc")
            #expect(response.messages == [Array("hello".utf8)])
            #expect(response.leftoverBytes == 0)
            #expect(response.trailers != nil, "a call that sent a message ends with separate trailers")
            #expect(response.grpcStatus == 0)
            #expect(response.trailers?.first(name: ":status") == nil, "trailers carry no pseudo-header")
            #expect(server.probe.cancelledCount == 0)
            await connection.close()
        }
    }

    @Test("The observer hears of each routed call's start and end, in order, and of no unknown method")
    func observerSeesRoutedCallsOnly() async throws {
        final class Recorder: CallObserver, @unchecked Sendable {
            let events = NIOLockedValueBox<[String]>([])
            func callStarted(service: String, method: String) { events.withLockedValue { $0.append("start \(method)") } }
            func callFinished(service: String, method: String, status: StatusCode) {
                events.withLockedValue { $0.append("end \(method) \(status)") }
            }
        }
        let recorder = Recorder()
        try await withServer(configure: { $0.observer = recorder }) { server in
            let connection = try await server.connect()
            _ = try await connection.unary(path: TestPath.unary, message: [1])
            _ = try await connection.unary(path: "/test.Echo/NoSuchMethod", message: [1])
            _ = try await connection.unary(path: "/no.Such/Service", message: [1])
            _ = try await connection.unary(path: TestPath.refuse, message: [1])
            await connection.close()
        }
        #expect(recorder.events.withLockedValue { $0 } == ["start Unary", "end Unary ok", "start Refuse", "end Refuse unavailable"])
    }

    @Test("Unary echoes an empty message")
    func unaryEchoesAnEmptyMessage() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let response = try await connection.unary(path: TestPath.unary, message: [])
            #expect(response.messages == [[]])
            #expect(response.grpcStatus == 0)
            await connection.close()
        }
    }

    @Test("A content type with a subtype is accepted")
    func contentTypeWithASubtypeIsAccepted() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            try await stream.sendHeaders(path: TestPath.unary, contentType: "application/grpc+proto")
            try await stream.sendMessage([1, 2, 3], endStream: true)
            let response = try await stream.response()
            #expect(response.messages == [[1, 2, 3]])
            #expect(response.grpcStatus == 0)
            await connection.close()
        }
    }

    @Test("A message split across many DATA frames is reassembled")
    func messageSplitAcrossManyDataFramesIsReassembled() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            try await stream.sendHeaders(path: TestPath.unary)
            let message = (0..<3_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let framed = grpcFrame(message)
            // Chunks of 1 to 13 bytes: the 5-byte prefix itself is split too.
            var chunks: [[UInt8]] = []
            var offset = 0
            var size = 1
            while offset < framed.count {
                let end = min(offset + size, framed.count)
                chunks.append(Array(framed[offset..<end]))
                offset = end
                size = size % 13 + 1
            }
            #expect(chunks.count > 400)
            for chunk in chunks.dropLast() {
                stream.channel.write(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer(bytes: chunk)))), promise: nil)
            }
            try await stream.sendData(chunks.last!, endStream: true)
            let response = try await stream.response()
            #expect(response.messages.count == 1)
            #expect(response.messages.first == message)
            #expect(response.grpcStatus == 0)
            #expect(server.probe.state.withLockedValue { $0.received } == [message])
            await connection.close()
        }
    }

    @Test("Several messages in one DATA frame reach a streaming handler")
    func severalMessagesInOneDataFrameReachAStreamingHandler() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            try await stream.sendHeaders(path: TestPath.bidi)
            let messages: [[UInt8]] = [[1], [], [2, 2], Array(repeating: 3, count: 300)]
            // All four messages and the first 3 bytes of a fifth in one frame; the rest in the next.
            let fifth: [UInt8] = [5, 5, 5, 5, 5, 5, 5]
            let fifthFramed = grpcFrame(fifth)
            try await stream.sendData(messages.flatMap { grpcFrame($0) } + fifthFramed.prefix(3))
            for expected in messages {
                let echoed = try await stream.nextMessage()
                #expect(echoed == expected)
            }
            try await stream.sendData(Array(fifthFramed.dropFirst(3)), endStream: true)
            let response = try await stream.response()
            #expect(response.messages == [fifth])
            #expect(response.grpcStatus == 0)
            #expect(server.probe.state.withLockedValue { $0.received } == messages + [fifth])
            await connection.close()
        }
    }

    @Test("Server streaming sends every message, then OK")
    func serverStreamingSendsEveryMessageThenOK() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let response = try await connection.unary(path: TestPath.serverStreaming, message: [50])
            #expect(response.messages.count == 50)
            for (index, message) in response.messages.enumerated() {
                #expect(message == [UInt8](repeating: UInt8(index), count: index))
            }
            #expect(response.leftoverBytes == 0)
            #expect(response.grpcStatus == 0)
            await connection.close()
        }
    }

    @Test("Bidi answers each message and ends with OK on half-close")
    func bidiAnswersEachMessageAndEndsWithOKOnHalfClose() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            try await stream.sendHeaders(path: TestPath.bidi)
            try await stream.sendMessage([0])
            guard case .headers(let headers, endStream: false) = try await stream.next() else {
                Issue.record("expected response headers first")
                return
            }
            #expect(headers.first(name: ":status") == "200")
            let firstEcho = try await stream.nextMessage()
            #expect(firstEcho == [0])
            for round in 0..<5 {
                let message = Array("ping \(round)".utf8)
                try await stream.sendMessage(message)
                let echoed = try await stream.nextMessage()
                #expect(echoed == message, "round \(round) is answered before the next request")
            }
            try await stream.sendEnd()
            let response = try await stream.response()
            #expect(response.messages == [])
            #expect(response.grpcStatus == 0)
            #expect(server.probe.cancelledCount == 0)
            await connection.close()
        }
    }

    @Test("Many concurrent streams on one connection")
    func manyConcurrentStreamsOnOneConnection() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let count = 200
            let results = try await withThrowingTaskGroup(of: (Int, TestResponse).self) { group in
                for index in 0..<count {
                    group.addTask {
                        let message = Array("call \(index)".utf8)
                        return (index, try await connection.unary(path: TestPath.unary, message: message))
                    }
                }
                var results: [Int: TestResponse] = [:]
                for try await (index, response) in group { results[index] = response }
                return results
            }
            #expect(results.count == count)
            for (index, response) in results {
                #expect(response.messages == [Array("call \(index)".utf8)])
                #expect(response.grpcStatus == 0)
            }
            await connection.close()
        }
    }

    @Test("Several connections")
    func severalConnections() async throws {
        try await withServer { server in
            let connections = try await withThrowingTaskGroup(of: TestConnection.self) { group in
                for _ in 0..<8 { group.addTask { try await server.connect() } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (number, connection) in connections.enumerated() {
                    group.addTask {
                        for call in 0..<20 {
                            let message = Array("\(number)/\(call)".utf8)
                            let response = try await connection.unary(path: TestPath.unary, message: message)
                            #expect(response.messages == [message])
                            #expect(response.grpcStatus == 0)
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(server.probe.state.withLockedValue { $0.received.count } == 160)
            for connection in connections { await connection.close() }
        }
    }

    // MARK: - Refused calls

    @Test("An unknown method is a trailers-only UNIMPLEMENTED")
    func unknownMethodIsATrailersOnlyUnimplemented() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            for path in ["/test.Echo/Nope", "/other.Service/Unary", "/malformed", "/a/b/c"] {
                let response = try await connection.unary(path: path, message: [1])
                #expect(response.isTrailersOnly, "\(path)")
                #expect(response.httpStatus == "200", "\(path)")
                #expect(response.headers.first(name: "content-type") == "application/grpc", "\(path)")
                #expect(response.grpcStatus == StatusCode.unimplemented.rawValue, "\(path)")
                #expect(response.messages == [], "\(path)")
            }
            // The connection still serves calls.
            let response = try await connection.unary(path: TestPath.unary, message: [9])
            #expect(response.messages == [[9]])
            await connection.close()
        }
    }

    @Test("A non-identity encoding is UNIMPLEMENTED")
    func nonIdentityEncodingIsUnimplemented() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            try await stream.sendHeaders(path: TestPath.unary, metadata: [("grpc-encoding", "gzip")])
            try await stream.sendMessage([1], endStream: true)
            let response = try await stream.response()
            #expect(response.isTrailersOnly)
            #expect(response.grpcStatus == StatusCode.unimplemented.rawValue)
            #expect(server.probe.state.withLockedValue { $0.received } == [], "no handler saw the message")

            let identity = try await connection.unary(path: TestPath.unary, message: [2], metadata: [("grpc-encoding", "identity")])
            #expect(identity.grpcStatus == 0)
            #expect(identity.messages == [[2]])
            await connection.close()
        }
    }

    @Test("A compressed message is refused as UNIMPLEMENTED")
    func compressedMessageIsRefusedAsUnimplemented() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            try await stream.sendHeaders(path: TestPath.bidi)
            try await stream.sendData(grpcFrame([1, 2, 3], compressed: true), endStream: true)
            let response = try await stream.response()
            #expect(response.grpcStatus == StatusCode.unimplemented.rawValue)
            #expect(response.messages == [])
            #expect(server.probe.state.withLockedValue { $0.received } == [])
            try await server.probe.cancelled.wait("a refused message to end the handler's call")
            #expect(server.probe.cancelledCount == 1)
            await connection.close()
        }
    }

    @Test("An invalid message flag is INTERNAL")
    func invalidMessageFlagIsInternal() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            try await stream.sendHeaders(path: TestPath.bidi)
            try await stream.sendData([2, 0, 0, 0, 1, 9], endStream: true)
            let response = try await stream.response()
            #expect(response.grpcStatus == StatusCode.internal.rawValue)
            await connection.close()
        }
    }

    @Test("A message above the limit is RESOURCE_EXHAUSTED")
    func messageAboveTheLimitIsResourceExhausted() async throws {
        try await withServer(configure: { $0.maxReceiveMessageBytes = 1_024 }) { server in
            let connection = try await server.connect()
            // At the limit: accepted.
            let atLimit = [UInt8](repeating: 1, count: 1_024)
            let accepted = try await connection.unary(path: TestPath.unary, message: atLimit)
            #expect(accepted.grpcStatus == 0)
            #expect(accepted.messages == [atLimit])

            // One byte more: refused as soon as the prefix announces it, before the body arrives.
            let stream = try await connection.makeStream()
            try await stream.sendHeaders(path: TestPath.unary)
            try await stream.sendData([0, 0, 0, 0x04, 0x01])
            let response = try await stream.response()
            #expect(response.isTrailersOnly)
            #expect(response.grpcStatus == StatusCode.resourceExhausted.rawValue)
            #expect(response.grpcMessage != nil)
            await connection.close()
        }
    }

    @Test("A stream ending inside a message is INTERNAL")
    func streamEndingInsideAMessageIsInternal() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            try await stream.sendHeaders(path: TestPath.unary)
            try await stream.sendData([0, 0, 0, 0, 10, 1, 2], endStream: true)
            let response = try await stream.response()
            #expect(response.grpcStatus == StatusCode.internal.rawValue)
            await connection.close()
        }
    }

    @Test("A non-gRPC content type is HTTP 415")
    func nonGRPCContentTypeIsHTTP415() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            try await stream.sendHeaders(path: TestPath.unary, contentType: "application/json", endStream: true)
            let response = try await stream.response()
            #expect(response.httpStatus == "415")
            #expect(response.isTrailersOnly)
            #expect(response.headers.first(name: "grpc-status") == nil)
            #expect(server.probe.state.withLockedValue { $0.calls.count } == 0, "the router was not asked")
            await connection.close()
        }
    }

    // MARK: - Deadlines, metadata, status messages

    @Test("A deadline ends a hanging call with DEADLINE_EXCEEDED and cancels it once")
    func deadlineEndsAHangingCallWithDeadlineExceededAndCancelsItOnce() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            let started = NIODeadline.now()
            try await stream.sendHeaders(path: TestPath.hang, metadata: [("grpc-timeout", "50m")])
            try await stream.sendMessage([1])
            let response = try await stream.response(within: .seconds(1))
            let elapsed = NIODeadline.now() - started
            #expect(response.grpcStatus == StatusCode.deadlineExceeded.rawValue)
            #expect(response.isTrailersOnly)
            #expect(elapsed >= .milliseconds(45))
            #expect(elapsed < .milliseconds(900))
            try await server.probe.cancelled.wait("cancelled()")

            // The client goes away too (RST_STREAM); the handler must not hear about it again.
            try? await stream.reset()
            let after = try await connection.unary(path: TestPath.unary, message: [1])
            #expect(after.grpcStatus == 0)
            #expect(server.probe.cancelledCount == 1)
            let deadline = server.probe.state.withLockedValue { $0.calls.first?.deadline }
            #expect(deadline != nil)
            await connection.close()
        }
    }

    @Test("Huge and malformed timeouts do not break the call")
    func hugeAndMalformedTimeoutsDoNotBreakTheCall() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            for timeout in ["99999999H", "1S", "bogus", "123456789S"] {
                let response = try await connection.unary(path: TestPath.unary, message: [7], metadata: [("grpc-timeout", timeout)])
                #expect(response.grpcStatus == 0, "\(timeout)")
                #expect(response.messages == [[7]], "\(timeout)")
            }
            let deadlines = server.probe.state.withLockedValue { $0.calls.map { $0.deadline != nil } }
            #expect(deadlines == [true, true, false, false])
            await connection.close()
        }
    }

    @Test("Metadata passes through both ways")
    func metadataPassesThroughBothWays() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let response = try await connection.unary(
                path: TestPath.metadata, message: [], metadata: [("hasleader", "true"), ("x-request-id", "abc 123")])
            #expect(response.grpcStatus == 0)
            let lines = String(decoding: response.messages.first ?? [], as: UTF8.self).split(separator: "\n").map(String.init)
            #expect(lines.contains("hasleader: true"), "\(lines)")
            #expect(lines.contains("x-request-id: abc 123"), "\(lines)")
            #expect(!lines.contains { $0.hasPrefix(":") }, "no pseudo-headers in metadata: \(lines)")
            #expect(response.trailers?.first(name: "hasleader") == "true")
            let call = try #require(server.probe.state.withLockedValue { $0.calls.first })
            #expect(call.service == "test.Echo")
            #expect(call.method == "Metadata")
            #expect(call.deadline == nil)
            await connection.close()
        }
    }

    @Test("The status message is percent-encoded")
    func statusMessageIsPercentEncoded() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let message = "100% sure: café ✓\n"
            let response = try await connection.unary(path: TestPath.fail, message: Array(message.utf8))
            #expect(response.grpcStatus == StatusCode.failedPrecondition.rawValue)
            #expect(response.grpcMessage == "100%25 sure: caf%C3%A9 %E2%9C%93%0A")
            #expect(response.isTrailersOnly)
            await connection.close()
        }
    }

    // MARK: - Cancellation

    @Test("A client reset cancels the handler, and later writes are no-ops")
    func clientResetCancelsTheHandlerAndLaterWritesAreNoOps() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            try await stream.sendHeaders(path: TestPath.hang)
            try await stream.sendMessage([1])
            try await server.probe.started.wait("the handler")
            try await stream.reset()
            try await server.probe.cancelled.wait("cancelled()")
            let call = try #require(server.probe.lastCall)
            #expect(call.isFinished)
            call.send([1, 2, 3])
            call.finish(.ok)
            try await call.eventLoop.submit {
                call.send([4])
                call.finish(.internal, message: "too late")
            }.get()
            // The connection is unharmed and the handler was told once.
            let response = try await connection.unary(path: TestPath.unary, message: [5])
            #expect(response.messages == [[5]])
            #expect(server.probe.cancelledCount == 1)
            await connection.close()
        }
    }

    @Test("Closing the connection cancels open calls")
    func closingTheConnectionCancelsOpenCalls() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            try await stream.sendHeaders(path: TestPath.hang)
            try await stream.sendMessage([1])
            try await server.probe.started.wait("the handler")
            await connection.close()
            try await server.probe.cancelled.wait("cancelled()")
            #expect(server.probe.cancelledCount == 1)
        }
    }

    @Test("Finished calls are freed even if their writability handler holds them")
    func finishedCallsAreFreedEvenIfTheirWritabilityHandlerHoldsThem() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            try await stream.sendUnary(path: TestPath.cycle, message: [1])
            let response = try await stream.response()
            #expect(response.messages == [[1]])
            #expect(response.grpcStatus == 0)
            try await stream.waitClosed()
            // The server tears the stream down on its loop; hop there until it has (no sleeping).
            var freed = false
            for _ in 0..<100 where !freed {
                _ = try await connection.unary(path: TestPath.unary, message: [])
                freed = server.probe.state.withLockedValue { $0.weakCalls.allSatisfy { $0.call == nil } }
            }
            #expect(server.probe.state.withLockedValue { $0.weakCalls.count } == 1)
            #expect(freed, "the ServerCall of a finished call is still alive")
            await connection.close()
        }
    }

    // MARK: - Back-pressure

    @Test("A slow reader makes the call unwritable until it reads")
    func slowReaderMakesTheCallUnwritableUntilItReads() async throws {
        try await withServer { server in
            let connection = try await server.connect(initialWindowSize: 1_024)
            let stream = try await connection.makeStream(autoRead: false)
            try await stream.sendHeaders(path: TestPath.flood, endStream: true)
            try await server.probe.blocked.wait("the call to become unwritable")
            let (sent, writability) = server.probe.state.withLockedValue { ($0.sentBeforeBlocked ?? 0, $0.writability) }
            #expect(sent > 0)
            #expect(sent < FloodHandler.limit, "the window of 1 KiB stops the stream long before the limit")
            #expect(writability == [false])
            let blockedCall = try #require(server.probe.lastCall)
            #expect(!blockedCall.isWritable)

            // The client reads: it grants window, the server drains and the call is writable again.
            try await stream.channel.setOption(.autoRead, value: true).get()
            stream.channel.read()  // turning autoRead on does not itself read
            try await server.probe.writableAgain.wait("the call to become writable")
            let response = try await stream.response()
            #expect(response.grpcStatus == 0)
            #expect(response.messages.count == sent)
            #expect(server.probe.state.withLockedValue { $0.writability } == [false, true])
            await connection.close()
        }
    }
}
