import GRPCServer
import GRPCStatus
import NIOConcurrencyHelpers
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import XCTest

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

final class GRPCServerTests: XCTestCase {
    // MARK: - Calls

    func testUnaryEchoesTheRequestAndEndsWithOK() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let response = try await connection.unary(path: TestPath.unary, message: Array("hello".utf8))
            XCTAssertEqual(response.httpStatus, "200")
            XCTAssertEqual(response.headers.first(name: "content-type"), "application/grpc")
            XCTAssertEqual(response.messages, [Array("hello".utf8)])
            XCTAssertEqual(response.leftoverBytes, 0)
            XCTAssertNotNil(response.trailers, "a call that sent a message ends with separate trailers")
            XCTAssertEqual(response.grpcStatus, 0)
            XCTAssertNil(response.trailers?.first(name: ":status"), "trailers carry no pseudo-header")
            XCTAssertEqual(server.probe.cancelledCount, 0)
            await connection.close()
        }
    }

    func testUnaryEchoesAnEmptyMessage() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let response = try await connection.unary(path: TestPath.unary, message: [])
            XCTAssertEqual(response.messages, [[]])
            XCTAssertEqual(response.grpcStatus, 0)
            await connection.close()
        }
    }

    func testContentTypeWithASubtypeIsAccepted() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            try await stream.sendHeaders(path: TestPath.unary, contentType: "application/grpc+proto")
            try await stream.sendMessage([1, 2, 3], endStream: true)
            let response = try await stream.response()
            XCTAssertEqual(response.messages, [[1, 2, 3]])
            XCTAssertEqual(response.grpcStatus, 0)
            await connection.close()
        }
    }

    func testMessageSplitAcrossManyDataFramesIsReassembled() async throws {
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
            XCTAssertGreaterThan(chunks.count, 400)
            for chunk in chunks.dropLast() {
                stream.channel.write(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer(bytes: chunk)))), promise: nil)
            }
            try await stream.sendData(chunks.last!, endStream: true)
            let response = try await stream.response()
            XCTAssertEqual(response.messages.count, 1)
            XCTAssertEqual(response.messages.first, message)
            XCTAssertEqual(response.grpcStatus, 0)
            XCTAssertEqual(server.probe.state.withLockedValue { $0.received }, [message])
            await connection.close()
        }
    }

    func testSeveralMessagesInOneDataFrameReachAStreamingHandler() async throws {
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
                XCTAssertEqual(echoed, expected)
            }
            try await stream.sendData(Array(fifthFramed.dropFirst(3)), endStream: true)
            let response = try await stream.response()
            XCTAssertEqual(response.messages, [fifth])
            XCTAssertEqual(response.grpcStatus, 0)
            XCTAssertEqual(server.probe.state.withLockedValue { $0.received }, messages + [fifth])
            await connection.close()
        }
    }

    func testServerStreamingSendsEveryMessageThenOK() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let response = try await connection.unary(path: TestPath.serverStreaming, message: [50])
            XCTAssertEqual(response.messages.count, 50)
            for (index, message) in response.messages.enumerated() {
                XCTAssertEqual(message, [UInt8](repeating: UInt8(index), count: index))
            }
            XCTAssertEqual(response.leftoverBytes, 0)
            XCTAssertEqual(response.grpcStatus, 0)
            await connection.close()
        }
    }

    func testBidiAnswersEachMessageAndEndsWithOKOnHalfClose() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            try await stream.sendHeaders(path: TestPath.bidi)
            try await stream.sendMessage([0])
            guard case .headers(let headers, endStream: false) = try await stream.next() else {
                return XCTFail("expected response headers first")
            }
            XCTAssertEqual(headers.first(name: ":status"), "200")
            let firstEcho = try await stream.nextMessage()
            XCTAssertEqual(firstEcho, [0])
            for round in 0..<5 {
                let message = Array("ping \(round)".utf8)
                try await stream.sendMessage(message)
                let echoed = try await stream.nextMessage()
                XCTAssertEqual(echoed, message, "round \(round) is answered before the next request")
            }
            try await stream.sendEnd()
            let response = try await stream.response()
            XCTAssertEqual(response.messages, [])
            XCTAssertEqual(response.grpcStatus, 0)
            XCTAssertEqual(server.probe.cancelledCount, 0)
            await connection.close()
        }
    }

    func testManyConcurrentStreamsOnOneConnection() async throws {
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
            XCTAssertEqual(results.count, count)
            for (index, response) in results {
                XCTAssertEqual(response.messages, [Array("call \(index)".utf8)])
                XCTAssertEqual(response.grpcStatus, 0)
            }
            await connection.close()
        }
    }

    func testSeveralConnections() async throws {
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
                            XCTAssertEqual(response.messages, [message])
                            XCTAssertEqual(response.grpcStatus, 0)
                        }
                    }
                }
                try await group.waitForAll()
            }
            XCTAssertEqual(server.probe.state.withLockedValue { $0.received.count }, 160)
            for connection in connections { await connection.close() }
        }
    }

    // MARK: - Refused calls

    func testUnknownMethodIsATrailersOnlyUnimplemented() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            for path in ["/test.Echo/Nope", "/other.Service/Unary", "/malformed", "/a/b/c"] {
                let response = try await connection.unary(path: path, message: [1])
                XCTAssertTrue(response.isTrailersOnly, path)
                XCTAssertEqual(response.httpStatus, "200", path)
                XCTAssertEqual(response.headers.first(name: "content-type"), "application/grpc", path)
                XCTAssertEqual(response.grpcStatus, StatusCode.unimplemented.rawValue, path)
                XCTAssertEqual(response.messages, [], path)
            }
            // The connection still serves calls.
            let response = try await connection.unary(path: TestPath.unary, message: [9])
            XCTAssertEqual(response.messages, [[9]])
            await connection.close()
        }
    }

    func testNonIdentityEncodingIsUnimplemented() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            try await stream.sendHeaders(path: TestPath.unary, metadata: [("grpc-encoding", "gzip")])
            try await stream.sendMessage([1], endStream: true)
            let response = try await stream.response()
            XCTAssertTrue(response.isTrailersOnly)
            XCTAssertEqual(response.grpcStatus, StatusCode.unimplemented.rawValue)
            XCTAssertEqual(server.probe.state.withLockedValue { $0.received }, [], "no handler saw the message")

            let identity = try await connection.unary(path: TestPath.unary, message: [2], metadata: [("grpc-encoding", "identity")])
            XCTAssertEqual(identity.grpcStatus, 0)
            XCTAssertEqual(identity.messages, [[2]])
            await connection.close()
        }
    }

    func testCompressedMessageIsRefusedAsUnimplemented() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            try await stream.sendHeaders(path: TestPath.bidi)
            try await stream.sendData(grpcFrame([1, 2, 3], compressed: true), endStream: true)
            let response = try await stream.response()
            XCTAssertEqual(response.grpcStatus, StatusCode.unimplemented.rawValue)
            XCTAssertEqual(response.messages, [])
            XCTAssertEqual(server.probe.state.withLockedValue { $0.received }, [])
            try await server.probe.cancelled.wait("a refused message to end the handler's call")
            XCTAssertEqual(server.probe.cancelledCount, 1)
            await connection.close()
        }
    }

    func testInvalidMessageFlagIsInternal() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            try await stream.sendHeaders(path: TestPath.bidi)
            try await stream.sendData([2, 0, 0, 0, 1, 9], endStream: true)
            let response = try await stream.response()
            XCTAssertEqual(response.grpcStatus, StatusCode.internal.rawValue)
            await connection.close()
        }
    }

    func testMessageAboveTheLimitIsResourceExhausted() async throws {
        try await withServer(configure: { $0.maxReceiveMessageBytes = 1_024 }) { server in
            let connection = try await server.connect()
            // At the limit: accepted.
            let atLimit = [UInt8](repeating: 1, count: 1_024)
            let accepted = try await connection.unary(path: TestPath.unary, message: atLimit)
            XCTAssertEqual(accepted.grpcStatus, 0)
            XCTAssertEqual(accepted.messages, [atLimit])

            // One byte more: refused as soon as the prefix announces it, before the body arrives.
            let stream = try await connection.makeStream()
            try await stream.sendHeaders(path: TestPath.unary)
            try await stream.sendData([0, 0, 0, 0x04, 0x01])
            let response = try await stream.response()
            XCTAssertTrue(response.isTrailersOnly)
            XCTAssertEqual(response.grpcStatus, StatusCode.resourceExhausted.rawValue)
            XCTAssertNotNil(response.grpcMessage)
            await connection.close()
        }
    }

    func testStreamEndingInsideAMessageIsInternal() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            try await stream.sendHeaders(path: TestPath.unary)
            try await stream.sendData([0, 0, 0, 0, 10, 1, 2], endStream: true)
            let response = try await stream.response()
            XCTAssertEqual(response.grpcStatus, StatusCode.internal.rawValue)
            await connection.close()
        }
    }

    func testNonGRPCContentTypeIsHTTP415() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            try await stream.sendHeaders(path: TestPath.unary, contentType: "application/json", endStream: true)
            let response = try await stream.response()
            XCTAssertEqual(response.httpStatus, "415")
            XCTAssertTrue(response.isTrailersOnly)
            XCTAssertNil(response.headers.first(name: "grpc-status"))
            XCTAssertEqual(server.probe.state.withLockedValue { $0.calls.count }, 0, "the router was not asked")
            await connection.close()
        }
    }

    // MARK: - Deadlines, metadata, status messages

    func testDeadlineEndsAHangingCallWithDeadlineExceededAndCancelsItOnce() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            let started = NIODeadline.now()
            try await stream.sendHeaders(path: TestPath.hang, metadata: [("grpc-timeout", "50m")])
            try await stream.sendMessage([1])
            let response = try await stream.response(within: .seconds(1))
            let elapsed = NIODeadline.now() - started
            XCTAssertEqual(response.grpcStatus, StatusCode.deadlineExceeded.rawValue)
            XCTAssertTrue(response.isTrailersOnly)
            XCTAssertGreaterThanOrEqual(elapsed, .milliseconds(45))
            XCTAssertLessThan(elapsed, .milliseconds(900))
            try await server.probe.cancelled.wait("cancelled()")

            // The client goes away too (RST_STREAM); the handler must not hear about it again.
            try? await stream.reset()
            let after = try await connection.unary(path: TestPath.unary, message: [1])
            XCTAssertEqual(after.grpcStatus, 0)
            XCTAssertEqual(server.probe.cancelledCount, 1)
            let deadline = server.probe.state.withLockedValue { $0.calls.first?.deadline }
            XCTAssertNotNil(deadline)
            await connection.close()
        }
    }

    func testHugeAndMalformedTimeoutsDoNotBreakTheCall() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            for timeout in ["99999999H", "1S", "bogus", "123456789S"] {
                let response = try await connection.unary(path: TestPath.unary, message: [7], metadata: [("grpc-timeout", timeout)])
                XCTAssertEqual(response.grpcStatus, 0, timeout)
                XCTAssertEqual(response.messages, [[7]], timeout)
            }
            let deadlines = server.probe.state.withLockedValue { $0.calls.map { $0.deadline != nil } }
            XCTAssertEqual(deadlines, [true, true, false, false])
            await connection.close()
        }
    }

    func testMetadataPassesThroughBothWays() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let response = try await connection.unary(
                path: TestPath.metadata, message: [], metadata: [("hasleader", "true"), ("x-request-id", "abc 123")])
            XCTAssertEqual(response.grpcStatus, 0)
            let lines = String(decoding: response.messages.first ?? [], as: UTF8.self).split(separator: "\n").map(String.init)
            XCTAssertTrue(lines.contains("hasleader: true"), "\(lines)")
            XCTAssertTrue(lines.contains("x-request-id: abc 123"), "\(lines)")
            XCTAssertFalse(lines.contains { $0.hasPrefix(":") }, "no pseudo-headers in metadata: \(lines)")
            XCTAssertEqual(response.trailers?.first(name: "hasleader"), "true")
            let call = try XCTUnwrap(server.probe.state.withLockedValue { $0.calls.first })
            XCTAssertEqual(call.service, "test.Echo")
            XCTAssertEqual(call.method, "Metadata")
            XCTAssertNil(call.deadline)
            await connection.close()
        }
    }

    func testStatusMessageIsPercentEncoded() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let message = "100% sure: café ✓\n"
            let response = try await connection.unary(path: TestPath.fail, message: Array(message.utf8))
            XCTAssertEqual(response.grpcStatus, StatusCode.failedPrecondition.rawValue)
            XCTAssertEqual(response.grpcMessage, "100%25 sure: caf%C3%A9 %E2%9C%93%0A")
            XCTAssertTrue(response.isTrailersOnly)
            await connection.close()
        }
    }

    // MARK: - Cancellation

    func testClientResetCancelsTheHandlerAndLaterWritesAreNoOps() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            try await stream.sendHeaders(path: TestPath.hang)
            try await stream.sendMessage([1])
            try await server.probe.started.wait("the handler")
            try await stream.reset()
            try await server.probe.cancelled.wait("cancelled()")
            let call = try XCTUnwrap(server.probe.lastCall)
            XCTAssertTrue(call.isFinished)
            call.send([1, 2, 3])
            call.finish(.ok)
            try await call.eventLoop.submit {
                call.send([4])
                call.finish(.internal, message: "too late")
            }.get()
            // The connection is unharmed and the handler was told once.
            let response = try await connection.unary(path: TestPath.unary, message: [5])
            XCTAssertEqual(response.messages, [[5]])
            XCTAssertEqual(server.probe.cancelledCount, 1)
            await connection.close()
        }
    }

    func testClosingTheConnectionCancelsOpenCalls() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            try await stream.sendHeaders(path: TestPath.hang)
            try await stream.sendMessage([1])
            try await server.probe.started.wait("the handler")
            await connection.close()
            try await server.probe.cancelled.wait("cancelled()")
            XCTAssertEqual(server.probe.cancelledCount, 1)
        }
    }

    func testFinishedCallsAreFreedEvenIfTheirWritabilityHandlerHoldsThem() async throws {
        try await withServer { server in
            let connection = try await server.connect()
            let stream = try await connection.makeStream()
            try await stream.sendUnary(path: TestPath.cycle, message: [1])
            let response = try await stream.response()
            XCTAssertEqual(response.messages, [[1]])
            XCTAssertEqual(response.grpcStatus, 0)
            try await stream.waitClosed()
            // The server tears the stream down on its loop; hop there until it has (no sleeping).
            var freed = false
            for _ in 0..<100 where !freed {
                _ = try await connection.unary(path: TestPath.unary, message: [])
                freed = server.probe.state.withLockedValue { $0.weakCalls.allSatisfy { $0.call == nil } }
            }
            XCTAssertEqual(server.probe.state.withLockedValue { $0.weakCalls.count }, 1)
            XCTAssertTrue(freed, "the ServerCall of a finished call is still alive")
            await connection.close()
        }
    }

    // MARK: - Back-pressure

    func testSlowReaderMakesTheCallUnwritableUntilItReads() async throws {
        try await withServer { server in
            let connection = try await server.connect(initialWindowSize: 1_024)
            let stream = try await connection.makeStream(autoRead: false)
            try await stream.sendHeaders(path: TestPath.flood, endStream: true)
            try await server.probe.blocked.wait("the call to become unwritable")
            let (sent, writability) = server.probe.state.withLockedValue { ($0.sentBeforeBlocked ?? 0, $0.writability) }
            XCTAssertGreaterThan(sent, 0)
            XCTAssertLessThan(sent, FloodHandler.limit, "the window of 1 KiB stops the stream long before the limit")
            XCTAssertEqual(writability, [false])
            XCTAssertFalse(try XCTUnwrap(server.probe.lastCall).isWritable)

            // The client reads: it grants window, the server drains and the call is writable again.
            try await stream.channel.setOption(.autoRead, value: true).get()
            stream.channel.read()  // turning autoRead on does not itself read
            try await server.probe.writableAgain.wait("the call to become writable")
            let response = try await stream.response()
            XCTAssertEqual(response.grpcStatus, 0)
            XCTAssertEqual(response.messages.count, sent)
            XCTAssertEqual(server.probe.state.withLockedValue { $0.writability }, [false, true])
            await connection.close()
        }
    }
}
