import GRPCStatus
import NIOCore
import NIOHTTP1

/// One JSON gateway request on an HTTP/1.1 connection, served as a gRPC call: the body's JSON
/// objects become request messages for the call's handler, and the call's answers are written
/// back as JSON. Confined to the connection's event loop.
final class GatewayExchange: CallWriter {
    private let route: GatewayRoute
    private let channel: any Channel
    private let version: HTTPVersion
    private let keepAlive: Bool
    private let maxReceiveMessageBytes: Int
    private var splitter: JSONObjectSplitter
    private var call: ServerCall?
    private var handler: (any ServerCallHandler)?
    /// A unary call's one request has been handed to the handler; the rest of the body is ignored.
    private var deliveredUnaryRequest = false
    private var requestEnded = false
    private var responseHeadSent = false
    private var unaryResponse: [UInt8]?
    /// The response head said `connection: close`.
    private var closesConnection = false
    private let onFinished: () -> Void

    /// A unary call's error found before the body ended: answered once it has, so that the
    /// connection can be kept.
    private var pendingFailure: (code: StatusCode, message: String)?

    /// Whether the response has been written completely.
    private(set) var responseEnded = false

    /// Whether the exchange is over: the request was read and the response written.
    var isComplete: Bool { requestEnded && responseEnded }

    /// Creates an exchange; `onFinished` runs once both the request has been read and the
    /// response written.
    init(
        route: GatewayRoute, head: HTTPRequestHead, channel: any Channel, maxRequestBytes: Int, maxReceiveMessageBytes: Int,
        onFinished: @escaping () -> Void
    ) {
        self.route = route
        self.channel = channel
        self.version = head.version
        self.keepAlive = head.isKeepAlive
        self.maxReceiveMessageBytes = maxReceiveMessageBytes
        self.splitter = JSONObjectSplitter(maximumBytes: maxRequestBytes)
        self.onFinished = onFinished
    }

    /// Starts the call: routes it, or answers at once (unknown method, body too large).
    func start(head: HTTPRequestHead, router: CallRouter, observer: (any CallObserver)?) {
        let call = ServerCall(
            service: route.service, method: route.method, metadata: Self.metadata(head.headers), deadline: nil, channel: channel,
            writer: self)
        self.call = call
        if let length = head.headers.first(name: "content-length").flatMap({ Int($0) }), length > splitter.maximumBytes,
            !route.streamsRequests
        {
            call.finishOnLoop(.resourceExhausted, message: Self.tooLarge(length, splitter.maximumBytes))
            return
        }
        guard let handler = router(call) else {
            fail(.unimplemented, "unknown method /\(route.service)/\(route.method)")
            return
        }
        // The router may have ended the call already (a service refusing without a leader).
        if !call.isFinished { self.handler = handler }
        call.observe(by: observer)
        if head.headers.first(name: "expect")?.lowercased() == "100-continue" && !call.isFinished {
            channel.writeAndFlush(HTTPServerResponsePart.head(HTTPResponseHead(version: version, status: .continue)), promise: nil)
        }
    }

    /// The gRPC metadata of a gateway request, as grpc-gateway passes it: `Authorization` as
    /// `authorization`, and every `Grpc-Metadata-<name>` header as `<name>`.
    static func metadata(_ headers: HTTPHeaders) -> [(name: String, value: String)] {
        var metadata: [(name: String, value: String)] = []
        let prefix = "grpc-metadata-"
        for (name, value) in headers {
            let lowered = name.lowercased()
            if lowered == "authorization" {
                metadata.append(("authorization", value))
            } else if lowered.hasPrefix(prefix), lowered.count > prefix.count {
                metadata.append((String(lowered.dropFirst(prefix.count)), value))
            }
        }
        return metadata
    }

    static func tooLarge(_ length: Int, _ maximum: Int) -> String {
        "gateway: request body larger than max (\(length) vs. \(maximum))"
    }

    // MARK: - Request side

    /// A piece of the body.
    func received(_ bytes: ByteBufferView) {
        guard let call, !call.isFinished, !deliveredUnaryRequest, pendingFailure == nil else { return }
        let objects: [[UInt8]]
        do {
            objects = try splitter.append(bytes, maximumObjects: route.streamsRequests ? .max : 1)
        } catch {
            switch error {
            case .notAnObject:
                fail(.invalidArgument, "gateway: the request body must be a JSON object (or a sequence of them for a streaming method)")
            case .tooLarge(let length):
                // Not worth reading on: answer now and close the connection.
                fail(.resourceExhausted, Self.tooLarge(length, splitter.maximumBytes), closing: true)
            }
            return
        }
        for object in objects {
            deliver(object)
            if !route.streamsRequests || call.isFinished { return }
        }
    }

    /// The body ended.
    func receivedEnd() {
        requestEnded = true
        guard let call, !call.isFinished else {
            if responseEnded { onFinished() }
            return
        }
        if let pendingFailure {
            fail(pendingFailure.code, pendingFailure.message)
            return
        }
        if splitter.hasPartialObject && !deliveredUnaryRequest {
            fail(.invalidArgument, "gateway: the request body ended inside a JSON object")
            return
        }
        if !route.streamsRequests && !deliveredUnaryRequest {
            // An empty body is an empty request.
            deliver(Array("{}".utf8))
            guard !call.isFinished else { return }
        }
        handler?.receivedEnd()
    }

    private func deliver(_ json: [UInt8]) {
        if !route.streamsRequests { deliveredUnaryRequest = true }
        let message: [UInt8]
        do {
            message = try route.decodeRequest(json)
        } catch {
            fail(.invalidArgument, (error as? GatewayDecodingError)?.message ?? "\(error)")
            return
        }
        guard message.count <= maxReceiveMessageBytes else {
            fail(.resourceExhausted, "grpc: received message larger than max (\(message.count) vs. \(maxReceiveMessageBytes))")
            return
        }
        handler?.received(message)
    }

    /// Ends the call with an error and tells the handler it is cancelled. A unary call's error
    /// waits for the end of the body unless `closing` (then the connection is closed after it).
    private func fail(_ code: StatusCode, _ message: String, closing: Bool = false) {
        guard let call, !call.isFinished else { return }
        if !route.streamsRequests && !requestEnded && !closing {
            if pendingFailure == nil { pendingFailure = (code, message) }
            return
        }
        let handler = self.handler
        self.handler = nil
        call.finishOnLoop(code, message: message)
        handler?.cancelled()
    }

    /// The connection closed: the call is cancelled if it was still running.
    func connectionClosed() {
        if let call, call.markCancelled() { handler?.cancelled() }
        handler = nil
        call = nil
    }

    /// The connection's writability changed.
    func writabilityChanged(_ writable: Bool) {
        call?.writabilityChanged(writable)
    }

    // MARK: - Response side (CallWriter)

    func writeMessage(_ message: [UInt8], flush: Bool) {
        let json: [UInt8]
        do {
            json = try route.encodeResponse(message)
        } catch {
            fail(.internal, "gateway: failed to encode the response as JSON: \(error)")
            return
        }
        guard route.streamsResponses else {
            if unaryResponse == nil { unaryResponse = json }
            return
        }
        writeHeadIfNeeded(status: 200)
        let chunk = GatewayJSON.resultChunk(json)
        let part = HTTPServerResponsePart.body(.byteBuffer(channel.allocator.buffer(bytes: chunk)))
        if flush {
            channel.writeAndFlush(part, promise: nil)
        } else {
            channel.write(part, promise: nil)
        }
    }

    func writeEnd(_ status: StatusCode, message: String, trailers: [(String, String)]) {
        if route.streamsResponses {
            if status != .ok {
                writeHeadIfNeeded(status: GatewayJSON.httpStatus(for: status))
                let chunk = GatewayJSON.streamErrorChunk(status, message: message)
                channel.write(HTTPServerResponsePart.body(.byteBuffer(channel.allocator.buffer(bytes: chunk))), promise: nil)
            } else {
                writeHeadIfNeeded(status: 200)
            }
        } else {
            let body: [UInt8]
            let httpStatus: Int
            if status == .ok {
                body = unaryResponse ?? Array("{}".utf8)
                httpStatus = 200
            } else {
                body = GatewayJSON.errorBody(status, message: message)
                httpStatus = GatewayJSON.httpStatus(for: status)
            }
            writeHead(status: httpStatus, contentLength: body.count)
            channel.write(HTTPServerResponsePart.body(.byteBuffer(channel.allocator.buffer(bytes: body))), promise: nil)
        }
        responseEnded = true
        // The call holds this exchange as its writer, and the handler holds the call: let go of
        // both so that the call can be freed once its handler is done with it.
        handler = nil
        call = nil
        // A response that ends before its request (an error, or the server ending a stream)
        // leaves body bytes unread: the connection cannot be reused.
        let close = closesConnection || !requestEnded
        let channel = self.channel
        channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in
            if close { channel.close(promise: nil) }
        }
        if requestEnded { onFinished() }
    }

    private func writeHeadIfNeeded(status: Int) {
        guard !responseHeadSent else { return }
        writeHead(status: status, contentLength: nil)
    }

    private func writeHead(status: Int, contentLength: Int?) {
        responseHeadSent = true
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        // grpc-gateway passes the gRPC response's headers on as Grpc-Metadata-*.
        headers.add(name: "grpc-metadata-content-type", value: "application/grpc")
        if let contentLength {
            headers.add(name: "content-length", value: String(contentLength))
        } else {
            headers.add(name: "transfer-encoding", value: "chunked")
        }
        if !keepAlive || !requestEnded {
            closesConnection = true
            headers.add(name: "connection", value: "close")
        }
        channel.write(
            HTTPServerResponsePart.head(
                HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: status), headers: headers)),
            promise: nil)
    }
}
