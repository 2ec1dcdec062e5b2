/// A JSON gateway on the gRPC port, in the manner of grpc-gateway: `POST <path>` with a JSON
/// request calls a gRPC method through the server's ``CallRouter`` (the same handlers that serve
/// gRPC), and answers JSON. Served on the HTTP/1.1 side of the port.
///
/// Unary methods read one JSON object from the body (an empty body is an empty request) and
/// answer one JSON object. Streaming methods answer a chunked stream of `{"result": …}` objects,
/// one per line; methods that stream requests read every JSON object of the body as one
/// request. Errors are answered with the HTTP status grpc-gateway maps the gRPC code to, and a
/// JSON body (``GatewayErrorBody``).
public struct Gateway: Sendable {
    /// The path prefixes the gateway owns (e.g. `/v3/`): a request under one that matches no
    /// route is answered 404, and one for a known path with another method than POST is
    /// answered 405.
    public var prefixes: [String]
    /// The routes, by path.
    public var routes: [String: GatewayRoute]
    /// The largest JSON text of one request message, in bytes; past it the request is answered
    /// with RESOURCE_EXHAUSTED and the connection closed.
    public var maxRequestBytes: Int

    /// Creates a gateway.
    public init(prefixes: [String], routes: [String: GatewayRoute], maxRequestBytes: Int) {
        self.prefixes = prefixes
        self.routes = routes
        self.maxRequestBytes = maxRequestBytes
    }

    /// What a request for `path` (without its query) is.
    enum Target {
        /// A route of the gateway.
        case route(GatewayRoute)
        /// Under a prefix of the gateway, but no route.
        case notFound
        /// Not the gateway's.
        case elsewhere
    }

    func target(path: String) -> Target {
        if let route = routes[path] { return .route(route) }
        return prefixes.contains { path.hasPrefix($0) } ? .notFound : .elsewhere
    }
}

/// One path of a ``Gateway``: the gRPC method it calls, whether the method streams, and how
/// its messages map to JSON.
public struct GatewayRoute: Sendable {
    /// The service, e.g. `etcdserverpb.KV`.
    public var service: String
    /// The method, e.g. `Range`.
    public var method: String
    /// The client streams requests: every JSON object of the body is one request.
    public var streamsRequests: Bool
    /// The server streams responses: the answer is a chunked stream of `{"result": …}` lines.
    public var streamsResponses: Bool
    /// A JSON request object to the method's serialized protobuf request; throws
    /// ``GatewayDecodingError`` for JSON that does not fit the request message.
    public var decodeRequest: @Sendable ([UInt8]) throws -> [UInt8]
    /// A serialized protobuf response to its JSON object.
    public var encodeResponse: @Sendable ([UInt8]) throws -> [UInt8]

    /// Creates a route.
    public init(
        service: String, method: String, streamsRequests: Bool, streamsResponses: Bool,
        decodeRequest: @escaping @Sendable ([UInt8]) throws -> [UInt8],
        encodeResponse: @escaping @Sendable ([UInt8]) throws -> [UInt8]
    ) {
        self.service = service
        self.method = method
        self.streamsRequests = streamsRequests
        self.streamsResponses = streamsResponses
        self.decodeRequest = decodeRequest
        self.encodeResponse = encodeResponse
    }
}

/// A JSON request the gateway cannot turn into the method's request message; the call is
/// answered INVALID_ARGUMENT (HTTP 400) with ``message``.
public struct GatewayDecodingError: Error, Sendable, CustomStringConvertible {
    /// What is wrong with the JSON.
    public var message: String

    /// Creates an error.
    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
