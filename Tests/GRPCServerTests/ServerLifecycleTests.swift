import Dispatch
import GRPCServer
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// Answers `/health` with 200 "ok", anything else with 404; remembers what it was asked.
final class TestHTTPRouter: Sendable {
    let requests = NIOLockedValueBox<[HTTPRequest]>([])

    var router: HTTPRouter {
        { request, respond in
            self.requests.withLockedValue { $0.append(request) }
            if request.path == "/health" {
                // Answer from another thread, as a router waiting on the node would.
                DispatchQueue.global().async {
                    respond(HTTPResponse(status: 200, contentType: "application/json", body: Array(#"{"health":"true"}"#.utf8)))
                }
            } else {
                respond(HTTPResponse(status: 404, contentType: "text/plain", body: Array("no\n".utf8)))
            }
        }
    }
}

/// Shutdown and HTTP/1.1, one test at a time (the shutdown tests measure how long it takes).
@Suite("Server lifecycle", .serialized)
struct ServerLifecycleTests {
    // MARK: - Shutdown

    @Test("Shutdown lets an in-flight call finish, sends GOAWAY and refuses new connections")
    func shutdownLetsAnInFlightCallFinishSendsGoAwayAndRefusesNewConnections() async throws {
        let running = try await RunningServer.start(configure: { $0.gracefulShutdownTimeout = .seconds(5) })
        let server = running.server
        let connection = try await running.connect()
        let stream = try await connection.makeStream()
        try await stream.sendHeaders(path: TestPath.bidi)
        try await stream.sendMessage([1])
        let firstEcho = try await stream.nextMessage()
        #expect(firstEcho == [1])

        let started = NIODeadline.now()
        let shutdown = Task { await server.shutdown() }
        do {
            _ = try await connection.goAway()

            do {
                let late = try await TestConnection.connect(to: running.port, group: running.group)
                await late.close()
                Issue.record("a connection after shutdown was accepted")
            } catch {
                // Refused, as it should be.
            }

            // The call in flight still runs to its end.
            try await stream.sendMessage([2])
            let secondEcho = try await stream.nextMessage()
            #expect(secondEcho == [2])
            try await stream.sendEnd()
            let response = try await stream.response()
            #expect(response.grpcStatus == 0)
            #expect(running.probe.cancelledCount == 0)

            // Once its calls are done (and the client has acknowledged the drain's PING) the
            // connection closes, well before the graceful timeout (5 s).
            try await connection.channel.closeFuture.get(within: .seconds(3), "the connection to close")
        } catch {
            await connection.close()
            await shutdown.value
            throw error
        }
        await shutdown.value
        // Well before the graceful timeout.
        #expect(NIODeadline.now() - started < .seconds(4))
    }

    @Test("Shutdown closes idle connections promptly")
    func shutdownClosesIdleConnectionsPromptly() async throws {
        let running = try await RunningServer.start(
            configure: { $0.gracefulShutdownTimeout = .seconds(5) }, http: TestHTTPRouter().router)
        let http2 = try await running.connect()
        let answered = try await http2.unary(path: TestPath.unary, message: [1])
        #expect(answered.grpcStatus == 0)
        let http1 = try await HTTP1TestConnection.connect(to: running.port, group: running.group)
        try await http1.send(.GET, "/health")
        let health = try await http1.response(at: 0)
        #expect(health.status == 200)
        // A connection that has not said anything yet.
        let silent = try await ClientBootstrap(group: running.group).connect(host: "127.0.0.1", port: running.port).get()

        let started = NIODeadline.now()
        await running.server.shutdown()
        // Idle connections close once the client acknowledged the drain's PING, not after the
        // graceful timeout (5 s).
        #expect(NIODeadline.now() - started < .seconds(3), "idle connections do not wait for the graceful timeout")
        for channel in [http2.channel, http1.channel, silent] {
            try await channel.closeFuture.get(within: .seconds(1), "the server to close an idle connection")
        }
    }

    @Test("Shutdown closes calls that outlive the graceful timeout")
    func shutdownClosesCallsThatOutliveTheGracefulTimeout() async throws {
        let running = try await RunningServer.start(configure: { $0.gracefulShutdownTimeout = .milliseconds(200) })
        let connection = try await running.connect()
        let stream = try await connection.makeStream()
        try await stream.sendHeaders(path: TestPath.hang)
        try await stream.sendMessage([1])
        try await running.probe.started.wait("the handler")

        let started = NIODeadline.now()
        await running.server.shutdown()
        let elapsed = NIODeadline.now() - started
        #expect(elapsed >= .milliseconds(150))
        #expect(elapsed < .seconds(1))
        try await running.probe.cancelled.wait("the hanging call to be cancelled")
        #expect(running.probe.cancelledCount == 1)
        try await connection.channel.closeFuture.get(within: .seconds(1), "the connection to close")
    }

    // MARK: - HTTP/1.1 on the same port

    @Test("HTTP/1.1 /health is answered by the router")
    func http1HealthIsAnsweredByTheRouter() async throws {
        let router = TestHTTPRouter()
        try await withServer(http: router.router) { server in
            let connection = try await HTTP1TestConnection.connect(to: server.port, group: server.group)
            try await connection.send(.GET, "/health?serializable=true", headers: [("x-probe", "1")])
            var response = try await connection.response(at: 0)
            #expect(response.status == 404, "the path includes the query")
            try await connection.send(.GET, "/health")
            response = try await connection.response(at: 1)
            #expect(response.status == 200)
            #expect(response.headers.first(name: "content-type") == "application/json")
            #expect(response.headers.first(name: "content-length") == "17")
            #expect(response.text == #"{"health":"true"}"#)
            let requests = router.requests.withLockedValue { $0 }
            #expect(requests.map(\.method) == ["GET", "GET"])
            #expect(requests.map(\.path) == ["/health?serializable=true", "/health"])
            #expect(requests[0].headers.contains { $0.0.lowercased() == "x-probe" && $0.1 == "1" })
            await connection.close()
        }
    }

    @Test("HTTP/1.1 keep-alive serves several requests on one connection")
    func http1KeepAliveServesSeveralRequestsOnOneConnection() async throws {
        try await withServer(http: TestHTTPRouter().router) { server in
            let connection = try await HTTP1TestConnection.connect(to: server.port, group: server.group)
            for index in 0..<3 {
                try await connection.send(.GET, "/health")
                let response = try await connection.response(at: index)
                #expect(response.status == 200)
                #expect(response.text == #"{"health":"true"}"#)
                #expect(response.headers.first(name: "connection") == nil)
            }
            #expect(connection.channel.isActive, "the connection stays open")
            // gRPC still works on the same port meanwhile.
            let grpc = try await server.connect()
            let answered = try await grpc.unary(path: TestPath.unary, message: [3])
            #expect(answered.messages == [[3]])
            await grpc.close()
            await connection.close()
        }
    }

    @Test("HTTP/1.1 pipelined requests are answered in order")
    func http1PipelinedRequestsAreAnsweredInOrder() async throws {
        try await withServer(http: TestHTTPRouter().router) { server in
            let connection = try await HTTP1TestConnection.connect(to: server.port, group: server.group)
            // The slow /health answer (another thread) must still come before the fast 404.
            try await connection.send(.GET, "/health")
            try await connection.send(.GET, "/missing")
            let first = try await connection.response(at: 0)
            #expect(first.status == 200)
            let second = try await connection.response(at: 1)
            #expect(second.status == 404)
            await connection.close()
        }
    }

    @Test("HTTP/1.1 Connection: close is honoured")
    func http1ConnectionCloseIsHonoured() async throws {
        try await withServer(http: TestHTTPRouter().router) { server in
            let connection = try await HTTP1TestConnection.connect(to: server.port, group: server.group)
            try await connection.send(.GET, "/health", headers: [("connection", "close")])
            let response = try await connection.response(at: 0)
            #expect(response.status == 200)
            #expect(response.headers.first(name: "connection") == "close")
            try await connection.channel.closeFuture.get(within: .seconds(1), "the server to close the connection")
        }
    }

    @Test("HTTP/1.1 without a router is 404")
    func http1WithoutARouterIs404() async throws {
        try await withServer { server in
            let connection = try await HTTP1TestConnection.connect(to: server.port, group: server.group)
            try await connection.send(.GET, "/health")
            let response = try await connection.response(at: 0)
            #expect(response.status == 404)
            await connection.close()
        }
    }
}
