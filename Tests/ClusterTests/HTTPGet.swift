import NIOCore
import NIOHTTP1
import NIOPosix

/// A plain HTTP/1.1 GET on 127.0.0.1 with a hard deadline, for `/health`, `/version` and `/metrics`.
///
/// The deadline closes the connection and fails the call whatever the other side does, so a
/// member that accepts and never answers cannot hold a wait beyond its timeout.
enum HTTPGet {
    /// The call did not complete before its deadline.
    struct DeadlineExceeded: Error, CustomStringConvertible {
        let port: Int
        let path: String
        let timeout: Duration
        var description: String { "GET http://127.0.0.1:\(port)\(path) got no complete answer within \(timeout)" }
    }

    /// The connection closed before a complete response arrived.
    struct Incomplete: Error, CustomStringConvertible {
        var description: String { "the connection closed before a complete HTTP response" }
    }

    /// `GET path` on 127.0.0.1:`port`: the status code and the body as text.
    ///
    /// - Throws: the connect error, ``Incomplete``, or ``DeadlineExceeded`` once `timeout` passes.
    static func fetch(port: Int, path: String, timeout: Duration) async throws -> (status: Int, body: String) {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let limit = TimeAmount.nanoseconds(
            Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
        let promise = loop.makePromise(of: (status: Int, body: String).self)
        let connect = ClientBootstrap(group: loop)
            .connectTimeout(limit)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise))
                }
            }
            .connect(host: "127.0.0.1", port: port)
        let deadline = loop.scheduleTask(in: limit) {
            promise.fail(DeadlineExceeded(port: port, path: path, timeout: timeout))
        }
        connect.whenComplete { result in
            switch result {
            case .success(let channel):
                promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
                var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
                head.headers.add(name: "Host", value: "127.0.0.1:\(port)")
                head.headers.add(name: "Connection", value: "close")
                channel.write(HTTPClientRequestPart.head(head), promise: nil)
                channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            case .failure(let error):
                promise.fail(error)
            }
        }
        promise.futureResult.whenComplete { _ in deadline.cancel() }
        return try await promise.futureResult.get()
    }
}

/// Collects one response's status and body and completes the promise with them.
private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<(status: Int, body: String)>
    private var status = 0
    private var body: [UInt8] = []

    init(promise: EventLoopPromise<(status: Int, body: String)>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
        case .body(var buffer):
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            promise.succeed((status, String(decoding: body, as: UTF8.self)))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(HTTPGet.Incomplete())
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}
