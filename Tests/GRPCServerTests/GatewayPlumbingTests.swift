import GRPCServer
import GRPCStatus
import NIOCore
import NIOHTTP1
import Testing

/// A gateway over the test service whose "JSON mapping" is the identity: a request's JSON
/// object is the message, and a message is its JSON. A request containing `"bad"` does not
/// decode.
private func testGateway(maxRequestBytes: Int = 1_024) -> Gateway {
    func route(_ method: String, requests: Bool = false, responses: Bool = false) -> GatewayRoute {
        GatewayRoute(
            service: "test.Echo", method: method, streamsRequests: requests, streamsResponses: responses,
            decodeRequest: { json in
                if String(decoding: json, as: UTF8.self).contains("\"bad\"") { throw GatewayDecodingError("bad request") }
                return json
            },
            encodeResponse: { $0 })
    }
    return Gateway(
        prefixes: ["/gw/"],
        routes: [
            "/gw/unary": route("Unary"), "/gw/bidi": route("Bidi", requests: true, responses: true),
            "/gw/fail": route("Fail"), "/gw/hang": route("Hang", requests: true, responses: true),
            "/gw/metadata": route("Metadata"), "/gw/missing": route("Missing"),
        ],
        maxRequestBytes: maxRequestBytes)
}

private func withGateway(_ body: (RunningServer, HTTP1TestConnection) async throws -> Void) async throws {
    try await withServer(configure: { $0.gateway = testGateway() }) { server in
        let connection = try await HTTP1TestConnection.connect(to: server.port, group: server.group)
        do {
            try await body(server, connection)
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
    }
}

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

@Suite("JSON gateway over HTTP/1.1", .serialized)
struct GatewayPlumbingTests {
    @Test("A unary call reads the first JSON object of the body and answers its message as JSON")
    func unary() async throws {
        try await withGateway { _, connection in
            try await connection.send(.POST, "/gw/unary", body: bytes(#" {"a": "}{"} trailing"#))
            let response = try await connection.response(at: 0)
            #expect(response.status == 200)
            #expect(response.headers.first(name: "content-type") == "application/json")
            #expect(response.text == #"{"a": "}{"}"#)
            // Keep-alive: a second request on the same connection, with an empty body.
            try await connection.send(.POST, "/gw/unary?ignored=1", body: [])
            #expect(try await connection.response(at: 1).text == "{}")
        }
    }

    @Test("A streaming call takes each JSON object as a message and answers result lines")
    func streaming() async throws {
        try await withGateway { _, connection in
            try await connection.send(.POST, "/gw/bidi", chunks: [bytes(#"{"n":1}  {"n""#), bytes(#":2}"#), bytes("\n")])
            let response = try await connection.response(at: 0)
            #expect(response.status == 200)
            #expect(response.headers.first(name: "transfer-encoding") == "chunked")
            #expect(response.text == "{\"result\":{\"n\":1}}\n{\"result\":{\"n\":2}}\n")
        }
    }

    @Test("A failed unary call answers the mapped HTTP status and grpc-gateway's error body")
    func failure() async throws {
        try await withGateway { _, connection in
            try await connection.send(.POST, "/gw/fail", body: bytes(#"{"why":"no"}"#))
            let response = try await connection.response(at: 0)
            #expect(response.status == 400)
            let message = GatewayJSON.quote(#"{"why":"no"}"#)
            #expect(response.text == #"{"error":\#(message),"message":\#(message),"code":9}"#)
        }
    }

    @Test("Malformed bodies are answered 400, and the connection stays usable")
    func malformed() async throws {
        try await withGateway { _, connection in
            try await connection.send(.POST, "/gw/unary", body: bytes("[1, 2]"))
            let notObject = try await connection.response(at: 0)
            #expect(notObject.status == 400)
            #expect(notObject.text.contains(#""code":3"#) && notObject.text.contains("must be a JSON object"))
            try await connection.send(.POST, "/gw/unary", body: bytes(#"{"x": "bad"}"#))
            #expect(try await connection.response(at: 1).text == #"{"error":"bad request","message":"bad request","code":3}"#)
            try await connection.send(.POST, "/gw/unary", body: bytes(#"{"x": "#))
            let truncated = try await connection.response(at: 2)
            #expect(truncated.status == 400 && truncated.text.contains("ended inside a JSON object"))
        }
    }

    @Test("A streaming call that fails after answering ends with an error chunk")
    func streamingFailure() async throws {
        try await withGateway { _, connection in
            try await connection.send(.POST, "/gw/bidi", body: bytes(#"{"n":1}{"bad"}"#))
            let response = try await connection.response(at: 0)
            #expect(response.status == 200)
            #expect(
                response.text
                    == "{\"result\":{\"n\":1}}\n"
                    + #"{"error":{"grpc_code":3,"http_code":400,"message":"bad request","http_status":"Bad Request"}}"#)
        }
    }

    @Test("Unknown paths under the prefix are 404, other methods 405, unknown gRPC methods 501")
    func notFound() async throws {
        try await withGateway { _, connection in
            try await connection.send(.POST, "/gw/nothing", body: bytes("{}"))
            let missing = try await connection.response(at: 0)
            #expect(missing.status == 404 && missing.text == "Not Found\n")
            try await connection.send(.GET, "/gw/unary")
            let method = try await connection.response(at: 1)
            #expect(method.status == 405 && method.text == "Method Not Allowed\n")
            try await connection.send(.POST, "/gw/missing", body: bytes("{}"))
            let unimplemented = try await connection.response(at: 2)
            #expect(unimplemented.status == 501 && unimplemented.text.contains(#""code":12"#))
            try await connection.send(.GET, "/elsewhere")
            #expect(try await connection.response(at: 3).status == 404)
        }
    }

    @Test("A body over the limit is refused with RESOURCE_EXHAUSTED and the connection closed")
    func tooLarge() async throws {
        try await withGateway { _, connection in
            let big = bytes(#"{"v":""# + String(repeating: "x", count: 2_000) + #""}"#)
            try await connection.send(.POST, "/gw/unary", body: big)
            let response = try await connection.response(at: 0)
            #expect(response.status == 429)
            #expect(response.text.contains(#""code":8"#) && response.text.contains("larger than max"))
            #expect(await connection.isClosed())
        }
        try await withGateway { _, connection in
            // Streaming: the limit is per message, found while reading.
            try await connection.send(.POST, "/gw/bidi", chunks: [bytes(#"{"v":""#), bytes(String(repeating: "x", count: 2_000))])
            let response = try await connection.response(at: 0)
            #expect(response.status == 429)
            #expect(response.text.contains(#""grpc_code":8"#))
        }
    }

    @Test("Authorization and Grpc-Metadata-* headers become call metadata")
    func metadata() async throws {
        try await withGateway { _, connection in
            try await connection.send(
                .POST, "/gw/metadata", headers: [("Authorization", "tok"), ("Grpc-Metadata-Hasleader", "true"), ("X-Other", "1")],
                body: bytes("{}"))
            #expect(try await connection.response(at: 0).text == "authorization: tok\nhasleader: true\n")
        }
    }

    @Test("Closing the connection cancels a running call")
    func closeCancels() async throws {
        try await withGateway { server, connection in
            try await connection.sendOpen(.POST, "/gw/hang", chunk: bytes("{}"))
            try await server.probe.started.wait("the handler")
            await connection.close()
            try await server.probe.cancelled.wait("the cancellation")
            #expect(server.probe.cancelledCount == 1)
        }
    }
}
