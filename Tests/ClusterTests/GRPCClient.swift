import Foundation
import GRPCStatus
import GRPCTestSupport
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import SwiftProtobuf
import Synchronization

/// A gRPC call that ended with a status other than OK, or could not complete.
struct GRPCCallError: Error, CustomStringConvertible {
    /// The call's status code.
    var code: StatusCode
    /// The status message (`grpc-message`, percent-decoded).
    var message: String

    var description: String { "gRPC \(code) (\(code.rawValue)): \(message)" }
}

/// One HTTP/2 connection to a gRPC server over plain TCP (h2c with prior knowledge), written for
/// the tests: unary calls and streaming calls, messages encoded with swift-protobuf.
///
/// It shares nothing with the server's own gRPC layer, so a framing mistake there is not
/// mirrored here.
final class GRPCConnection: Sendable {
    /// The `host:port` the connection goes to, sent as `:authority`.
    let authority: String
    private let channel: any Channel
    private let multiplexer: NIOHTTP2Handler.AsyncStreamMultiplexer<Void>
    private let goAway: GoAwayWatcher

    private init(
        authority: String, channel: any Channel, multiplexer: NIOHTTP2Handler.AsyncStreamMultiplexer<Void>, goAway: GoAwayWatcher
    ) {
        self.authority = authority
        self.channel = channel
        self.multiplexer = multiplexer
        self.goAway = goAway
    }

    /// Whether the server sent GOAWAY on this connection: it is going away, and a client (as
    /// grpc-go does) opens new calls on another connection.
    var isDraining: Bool { goAway.isSet }

    /// Connects to `host:port` and sets up the HTTP/2 client pipeline.
    static func connect(host: String, port: Int, connectTimeout: Duration = .seconds(2)) async throws -> GRPCConnection {
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.nanoseconds(Int64(connectTimeout.nanoseconds)))
        let goAway = GoAwayWatcher()
        let (channel, multiplexer, settings) = try await bootstrap.connect(host: host, port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                let multiplexer = try channel.pipeline.syncOperations.configureAsyncHTTP2Pipeline(mode: .client) { stream in
                    stream.eventLoop.makeSucceededVoidFuture()
                }
                try channel.pipeline.syncOperations.addHandler(goAway)
                let settings = SettingsWatcher(promise: channel.eventLoop.makePromise())
                try channel.pipeline.syncOperations.addHandler(settings)
                return (channel, multiplexer, settings.received)
            }
        }
        // As grpc-go: a connection is used only once the server's HTTP/2 preface (its SETTINGS)
        // has arrived. A connection the server accepted and closed at once (it was shutting
        // down) fails here, before any call could have reached the server.
        let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(connectTimeout.nanoseconds)) { channel.close(promise: nil) }
        defer { timer.cancel() }
        do {
            try await settings.get()
        } catch {
            try? await channel.close()
            throw error
        }
        return GRPCConnection(authority: "\(host):\(port)", channel: channel, multiplexer: multiplexer, goAway: goAway)
    }

    /// Whether the TCP connection is still open.
    var isActive: Bool { channel.isActive }

    /// Closes the connection (and every call still open on it).
    func close() async {
        try? await channel.close()
    }

    /// Makes a unary call: sends `request` to `path` (`/package.Service/Method`) and returns the
    /// one response message.
    ///
    /// - Throws: ``GRPCCallError`` for a status other than OK or a broken call
    ///   (`deadlineExceeded` once `timeout` has passed).
    func unary<Response: SwiftProtobuf.Message>(
        _ path: String, _ request: some SwiftProtobuf.Message, as responseType: Response.Type = Response.self,
        metadata: [(String, String)] = [], timeout: Duration = .seconds(10)
    ) async throws -> Response {
        try await call(path, metadata: metadata, timeout: timeout) { call in
            try await call.send(request, isLast: true)
            guard let response = try await call.receive(Response.self) else {
                throw GRPCCallError(code: .internal, message: "the call ended OK without a response message")
            }
            if let extra = try await call.receive(Response.self) {
                throw GRPCCallError(code: .internal, message: "a unary call answered a second message: \(extra)")
            }
            return response
        }
    }

    /// Opens a call to `path` and runs `body` with it; the call's stream is closed (reset if it
    /// is still open) when `body` returns. After `timeout` the stream is closed and what `body`
    /// is waiting for fails with `deadlineExceeded`.
    func call<Result: Sendable>(
        _ path: String, metadata: [(String, String)] = [], timeout: Duration = .seconds(10),
        _ body: (GRPCCall) async throws -> Result
    ) async throws -> Result {
        let stream = try await multiplexer.openStream { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<HTTP2Frame.FramePayload, HTTP2Frame.FramePayload>(wrappingChannelSynchronously: channel)
            }
        }
        let expired = Flag()
        let streamChannel = stream.channel
        let timer = streamChannel.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout.nanoseconds))) {
            expired.set()
            streamChannel.close(promise: nil)
        }
        defer { timer.cancel() }
        let headers = GRPCTestWire.requestHeaders(path: path, authority: authority, timeout: timeout, metadata: metadata)
        let streamID = Atomic<Int>(-1)
        do {
            return try await stream.executeThenClose { inbound, outbound in
                let call = GRPCCall(path: path, inbound: inbound.makeAsyncIterator(), outbound: outbound)
                // Written through the channel to learn whether HTTP/2 took the stream: once the
                // connection has read a GOAWAY it refuses new streams, and such a call never
                // reached the server (grpc-go retries it elsewhere by itself).
                try await streamChannel.writeAndFlush(HTTP2Frame.FramePayload.headers(.init(headers: headers))).get()
                if let id = try? await streamChannel.getOption(HTTP2StreamChannelOptions.streamID).get() {
                    streamID.store(Int(id), ordering: .relaxed)
                }
                return try await body(call)
            }
        } catch {
            if expired.isSet {
                throw GRPCCallError(code: .deadlineExceeded, message: "\(path) did not finish within \(timeout) (\(error))")
            }
            let id = streamID.load(ordering: .relaxed)
            if let last = goAway.lastStreamID, id > last {
                // HTTP/2: the server processed no stream above the last one its GOAWAY names
                // (grpc-go retries such calls by itself).
                throw GRPCCallError(code: .unavailable, message: "\(path) was refused: stream \(id) opened after GOAWAY (last \(last))")
            }
            throw error
        }
    }
}

/// Notes a GOAWAY frame on a connection (frames of the connection itself reach handlers after the
/// HTTP/2 handler).
private final class GoAwayWatcher: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTP2Frame
    private let last = Atomic<Int>(-1)

    var isSet: Bool { last.load(ordering: .relaxed) >= 0 }
    /// The last stream ID the latest GOAWAY named.
    var lastStreamID: Int? { isSet ? last.load(ordering: .relaxed) : nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .goAway(let lastStreamID, _, _) = Self.unwrapInboundIn(data).payload {
            last.store(Int(lastStreamID), ordering: .relaxed)
        }
        context.fireChannelRead(data)
    }
}

/// Completes `received` when the server's SETTINGS frame (its HTTP/2 preface) arrives, and fails
/// it if the connection closes first.
private final class SettingsWatcher: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTP2Frame
    private let promise: EventLoopPromise<Void>
    private let completed = Atomic<Bool>(false)

    /// Completed by the server's first SETTINGS frame.
    var received: EventLoopFuture<Void> { promise.futureResult }

    init(promise: EventLoopPromise<Void>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .settings(.settings) = Self.unwrapInboundIn(data).payload, !completed.exchange(true, ordering: .relaxed) {
            promise.succeed()
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !completed.exchange(true, ordering: .relaxed) { promise.fail(ChannelError.ioOnClosedChannel) }
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // A connection that failed before it was active is torn down without channelInactive.
        if !completed.exchange(true, ordering: .relaxed) { promise.fail(ChannelError.ioOnClosedChannel) }
    }
}

/// A flag set once, from any thread.
private final class Flag: Sendable {
    private let value = Atomic<Bool>(false)

    func set() { value.store(true, ordering: .sequentiallyConsistent) }

    var isSet: Bool { value.load(ordering: .sequentiallyConsistent) }
}

extension Duration {
    /// The duration in whole nanoseconds.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// One open gRPC call, as ``GRPCConnection/call(_:metadata:timeout:_:)`` hands it to its body:
/// messages go out with ``send(_:isLast:)`` and come in with ``receive(_:)``.
final class GRPCCall {
    /// The method called.
    let path: String
    private var inbound: NIOAsyncChannelInboundStream<HTTP2Frame.FramePayload>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<HTTP2Frame.FramePayload>
    /// Received bytes not yet taken as messages.
    private var buffer: [UInt8] = []
    private var receivedHeaders = false
    /// The status, once the trailers arrived.
    private(set) var status: GRPCCallError?
    /// The trailers (or the headers of a trailers-only response).
    private(set) var trailers = HPACKHeaders()

    fileprivate init(
        path: String, inbound: NIOAsyncChannelInboundStream<HTTP2Frame.FramePayload>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<HTTP2Frame.FramePayload>
    ) {
        self.path = path
        self.inbound = inbound
        self.outbound = outbound
    }

    /// Sends one message; `isLast` half-closes the request stream with it.
    func send(_ message: some SwiftProtobuf.Message, isLast: Bool = false) async throws {
        let buffer = ByteBufferAllocator().buffer(bytes: GRPCTestWire.frame(try message.serializedBytes()))
        try await outbound.write(.data(HTTP2Frame.FramePayload.Data(data: .byteBuffer(buffer), endStream: isLast)))
    }

    /// Half-closes the request stream without a message.
    func finishSending() async throws {
        let empty = ByteBufferAllocator().buffer(capacity: 0)
        try await outbound.write(.data(HTTP2Frame.FramePayload.Data(data: .byteBuffer(empty), endStream: true)))
    }

    /// The next response message, or nil once the call ended with status OK.
    ///
    /// - Throws: ``GRPCCallError`` with the call's status if it ended with another one, or if
    ///   the stream broke off (`unavailable`) or answered something that is not gRPC (`internal`).
    func receive<Message: SwiftProtobuf.Message>(_ type: Message.Type = Message.self) async throws -> Message? {
        while true {
            if let bytes = try nextMessageBytes() {
                do {
                    return try Message(serializedBytes: bytes)
                } catch {
                    throw GRPCCallError(code: .internal, message: "cannot decode a \(Message.protoMessageName) from \(path): \(error)")
                }
            }
            if let status {
                if status.code == .ok {
                    guard buffer.isEmpty else {
                        throw GRPCCallError(code: .internal, message: "\(path) ended inside a message (\(buffer.count) bytes left)")
                    }
                    return nil
                }
                throw status
            }
            guard let frame = try await inbound.next() else {
                throw GRPCCallError(code: .unavailable, message: "the stream of \(path) closed without a gRPC status")
            }
            try handle(frame)
        }
    }

    /// Takes one length-prefixed message off the front of the buffer, if it is complete.
    private func nextMessageBytes() throws -> [UInt8]? {
        guard let message = GRPCTestWire.messages(in: buffer).messages.first else { return nil }
        guard !message.isCompressed else {
            throw GRPCCallError(code: .internal, message: "\(path) answered a compressed message (flag \(buffer[0])) unasked")
        }
        buffer.removeFirst(5 + message.bytes.count)
        return message.bytes
    }

    private func handle(_ frame: HTTP2Frame.FramePayload) throws {
        switch frame {
        case .headers(let headers):
            if !receivedHeaders {
                receivedHeaders = true
                let status = headers.headers.first(name: ":status")
                guard status == "200" else {
                    throw GRPCCallError(code: .internal, message: "\(path) answered HTTP status \(status ?? "none")")
                }
                let contentType = headers.headers.first(name: "content-type") ?? ""
                guard contentType.hasPrefix("application/grpc") else {
                    throw GRPCCallError(code: .internal, message: "\(path) answered content-type \(contentType)")
                }
                if headers.endStream { try takeStatus(headers.headers) }
            } else {
                guard headers.endStream else {
                    throw GRPCCallError(code: .internal, message: "\(path) sent a second header block that does not end the stream")
                }
                try takeStatus(headers.headers)
            }
        case .data(let data):
            guard receivedHeaders else {
                throw GRPCCallError(code: .internal, message: "\(path) sent data before its headers")
            }
            if case .byteBuffer(let bytes) = data.data {
                buffer.append(contentsOf: bytes.readableBytesView)
            }
            if data.endStream {
                throw GRPCCallError(code: .internal, message: "\(path) ended its stream with data, without trailers")
            }
        case .rstStream(let code):
            throw GRPCCallError(code: .unavailable, message: "\(path) was reset by the server: \(code)")
        default:
            break
        }
    }

    private func takeStatus(_ headers: HPACKHeaders) throws {
        trailers = headers
        guard let text = headers.first(name: "grpc-status"), let number = Int(text), let code = StatusCode(rawValue: number) else {
            throw GRPCCallError(code: .internal, message: "\(path) ended without a valid grpc-status: \(headers)")
        }
        let message = headers.first(name: "grpc-message").map { $0.removingPercentEncoding ?? $0 } ?? ""
        status = GRPCCallError(code: code, message: message)
    }
}
