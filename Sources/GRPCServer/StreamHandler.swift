import GRPCFraming
import GRPCStatus
import NIOCore
import NIOHPACK
import NIOHTTP2

/// Serves one HTTP/2 stream as one gRPC call: parses the request headers, reassembles
/// length-prefixed messages from DATA frames, enforces the deadline, and reports the stream's
/// end to the call's handler.
final class GRPCStreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let router: CallRouter
    private let maxReceiveMessageBytes: Int
    private let observer: (any CallObserver)?
    private var call: ServerCall?
    private var handler: (any ServerCallHandler)?
    private var decoder: GRPCMessageDecoder
    private var deadlineTask: Scheduled<Void>?
    private var ended = false
    /// The connection's shared limits, if any.
    private let limits: ConnectionLimits?
    /// The bytes of partly received messages this stream holds in ``limits``.
    private var bufferedBytes = 0

    init(router: @escaping CallRouter, maxReceiveMessageBytes: Int, observer: (any CallObserver)? = nil, limits: ConnectionLimits? = nil) {
        self.router = router
        self.maxReceiveMessageBytes = maxReceiveMessageBytes
        self.observer = observer
        self.limits = limits
        decoder = GRPCMessageDecoder(maximumMessageBytes: maxReceiveMessageBytes)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            if call == nil {
                start(context: context, headers: headers.headers)
            }
            if headers.endStream { end() }
        case .data(let data):
            guard let call, handler != nil, !call.isFinished else { return }
            if case .byteBuffer(let buffer) = data.data {
                do {
                    let messages = try decoder.append(buffer.readableBytesView)
                    guard accountBufferedBytes() else {
                        fail(
                            .resourceExhausted,
                            "grpc: the connection holds more than \(limits?.maxBufferedBytes ?? 0) bytes of partly received messages")
                        return
                    }
                    for message in messages where !call.isFinished { handler?.received(message) }
                } catch {
                    fail(error.code, error.message)
                    return
                }
            }
            if data.endStream { end() }
        default:
            break
        }
    }

    /// Records in the connection's limits how many bytes of a partly received message this
    /// stream holds; false if the connection would hold more than it may.
    private func accountBufferedBytes() -> Bool {
        guard let limits else { return true }
        let held = decoder.bufferedBytes
        guard limits.adjustBuffered(by: held - bufferedBytes) else { return false }
        bufferedBytes = held
        return true
    }

    /// Gives this stream's buffered bytes back to the connection.
    private func releaseBufferedBytes() {
        _ = limits?.adjustBuffered(by: -bufferedBytes)
        bufferedBytes = 0
    }

    private func start(context: ChannelHandlerContext, headers: HPACKHeaders) {
        let path = headers.first(name: ":path") ?? ""
        let contentType = headers.first(name: "content-type") ?? ""
        guard contentType.hasPrefix("application/grpc") else {
            // Not gRPC: answer with HTTP 415 as the gRPC spec asks.
            var response = HPACKHeaders()
            response.add(name: ":status", value: "415")
            response.add(name: "content-type", value: "text/plain")
            context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: response, endStream: true))), promise: nil)
            return
        }
        var metadata: [(name: String, value: String)] = []
        for (name, value, _) in headers where !name.hasPrefix(":") { metadata.append((name.lowercased(), value)) }
        var deadline: NIODeadline? = nil
        if let timeout = headers.first(name: "grpc-timeout"), let nanoseconds = GRPCWire.timeoutNanoseconds(timeout) {
            deadline = .now() + .nanoseconds(nanoseconds)
        }
        let method = GRPCWire.method(fromPath: path)
        let call = ServerCall(
            service: method?.service ?? "", method: method?.method ?? "", metadata: metadata, deadline: deadline,
            channel: context.channel, writer: HTTP2CallWriter(channel: context.channel, limits: limits))
        self.call = call
        if let encoding = headers.first(name: "grpc-encoding"), encoding != "identity" {
            call.finishOnLoop(.unimplemented, message: "grpc: Decompressor is not installed for grpc-encoding \"\(encoding)\"")
            return
        }
        guard method != nil, let handler = router(call) else {
            call.finishOnLoop(.unimplemented, message: "unknown method \(path)")
            return
        }
        self.handler = handler
        call.observe(by: observer)
        if let deadline {
            deadlineTask = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
                self?.fail(.deadlineExceeded, "context deadline exceeded")
            }
        }
    }

    private func end() {
        guard !ended, let call, !call.isFinished else { return }
        ended = true
        if decoder.hasPartialMessage {
            fail(.internal, "grpc: the stream ended inside a message")
            return
        }
        handler?.receivedEnd()
    }

    /// Finishes the call with an error and tells the handler it is cancelled.
    private func fail(_ code: StatusCode, _ message: String) {
        guard let call, !call.isFinished else { return }
        // Writing the trailers can close the stream at once (when the client has half-closed),
        // and `streamGone()` then drops the handler: keep it to tell it.
        let handler = self.handler
        self.handler = nil
        releaseBufferedBytes()
        deadlineTask?.cancel()
        call.finishOnLoop(code, message: message)
        handler?.cancelled()
    }

    private func streamGone() {
        releaseBufferedBytes()
        deadlineTask?.cancel()
        if let call, call.markCancelled() { handler?.cancelled() }
        handler = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        streamGone()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is StreamClosedEvent { streamGone() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        call?.writabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        streamGone()
        context.close(promise: nil)
    }
}
