import NIOCore
import NIOHTTP2

/// Drains an HTTP/2 connection on graceful shutdown without refusing a call the client sent
/// before it learned of the shutdown.
///
/// The usual drain sends GOAWAY with the largest stream ID and a PING; once the PING is
/// acknowledged the client has seen the GOAWAY and opens no more streams. swift-nio-http2's
/// state machine, though, refuses every new stream from the moment the first GOAWAY is sent,
/// and then treats the refused stream's DATA frame as a protocol error (swift-nio-http2
/// issue 466): it sends a second GOAWAY with `PROTOCOL_ERROR` and stops serving the streams the
/// client opened in the meantime, which then hang until the connection is closed. A rolling
/// restart of three members under load hit this in about one drill of three (grpc-go clients
/// failed with "transport is closing").
///
/// So this handler writes the drain's GOAWAY (last stream ID 2³¹−1, `NO_ERROR`) and PING itself,
/// as bytes below the HTTP/2 handler (through ``DrainFrameWriter``), and the HTTP/2 state
/// machine never enters its quiescing state: a stream that races the GOAWAY is served like any
/// other. Once the client has acknowledged the PING it opens no new streams (grpc-go moves new
/// calls to other connections when it reads the GOAWAY, before it answers the PING); when its
/// last stream has ended and every frame is written, the server sends FIN and the client closes
/// the connection. A client that never acknowledges is closed by the server's graceful-shutdown
/// timeout.
///
/// It sits right after the HTTP/2 handler, sees the connection's frames, counts its streams
/// through the HTTP/2 handler's stream delegate (``streamDelegate(passingTo:on:)``), and
/// consumes `ChannelShouldQuiesceEvent`, so the handlers after it (the connection manager's
/// idle timer) never start swift-nio-http2's own drain.
final class GracefulDrainHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame

    /// The PING payload that marks the drain's PING.
    static let pingData: UInt64 = 0x6472_6169_6e69_6e67

    private var openStreams = 0
    private var draining = false
    private var acknowledged = false
    private var closing = false
    private var context: ChannelHandlerContext?

    /// The stream delegate to give the HTTP/2 handler: it counts this connection's open streams
    /// and passes every event on to `next`.
    func streamDelegate(
        passingTo next: NIOHTTP2ServerConnectionManagementHandler.HTTP2StreamDelegate, on eventLoop: any EventLoop
    ) -> any NIOHTTP2StreamDelegate {
        DrainStreamDelegate(handler: NIOLoopBound(self, eventLoop: eventLoop), next: next)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    fileprivate func streamCreated() {
        openStreams += 1
    }

    fileprivate func streamClosed() {
        openStreams = max(0, openStreams - 1)
        closeIfDrained()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            startDraining(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if draining, case .ping(let ping, ack: true) = unwrapInboundIn(data).payload,
            ping == HTTP2PingData(withInteger: Self.pingData)
        {
            acknowledged = true
            closeIfDrained()
            return
        }
        context.fireChannelRead(data)
    }

    private func startDraining(context: ChannelHandlerContext) {
        guard !draining else { return }
        draining = true
        guard let writer = try? context.pipeline.syncOperations.context(handlerType: DrainFrameWriter.self) else {
            context.close(promise: nil)
            return
        }
        var bytes = context.channel.allocator.buffer(capacity: 34)
        // GOAWAY: length 8, type 7, no flags, stream 0; last stream ID 2^31 - 1, NO_ERROR.
        Self.writeFrameHeader(length: 8, type: 0x7, into: &bytes)
        bytes.writeInteger(UInt32(Int32.max))
        bytes.writeInteger(UInt32(0))
        // PING: length 8, type 6, no flags, stream 0; the drain's payload.
        Self.writeFrameHeader(length: 8, type: 0x6, into: &bytes)
        bytes.writeInteger(Self.pingData)
        writer.writeAndFlush(NIOAny(IOData.byteBuffer(bytes)), promise: nil)
    }

    private static func writeFrameHeader(length: Int, type: UInt8, into bytes: inout ByteBuffer) {
        bytes.writeInteger(UInt8(truncatingIfNeeded: length >> 16))
        bytes.writeInteger(UInt16(truncatingIfNeeded: length))
        bytes.writeInteger(type)
        bytes.writeInteger(UInt8(0))
        bytes.writeInteger(UInt32(0))
    }

    private func closeIfDrained() {
        guard draining, acknowledged, openStreams == 0, !closing, let context,
            let writer = try? context.pipeline.syncOperations.context(handlerType: DrainFrameWriter.self)
        else { return }
        closing = true
        // The last stream's final frames may still sit in the HTTP/2 handler's buffer (a stream
        // counts as closed once its last frame is written, before it is flushed) or in the
        // channel's queue. Flush them, then write nothing behind them: once that empty write is
        // done every frame is with the kernel. Then send FIN rather than closing the socket, so
        // that bytes the client is still sending (a PING, a WINDOW_UPDATE) do not make the
        // kernel answer with a reset that could drop the last responses in flight; the client
        // closes its side when it sees that its calls are done, and the server's
        // graceful-shutdown timeout closes what is left.
        context.flush()
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        writer.writeAndFlush(NIOAny(IOData.byteBuffer(ByteBuffer())))
            .flatMap { bound.value.close(mode: .output) }
            .whenFailure { _ in bound.value.close(promise: nil) }
    }
}

/// Counts streams for a ``GracefulDrainHandler`` and passes the events on to the connection
/// manager's delegate. The HTTP/2 handler calls it on the connection's event loop.
private struct DrainStreamDelegate: NIOHTTP2StreamDelegate {
    let handler: NIOLoopBound<GracefulDrainHandler>
    let next: NIOHTTP2ServerConnectionManagementHandler.HTTP2StreamDelegate

    func streamCreated(_ id: HTTP2StreamID, channel: any Channel) {
        onLoop { $0.streamCreated() }
        next.streamCreated(id, channel: channel)
    }

    func streamClosed(_ id: HTTP2StreamID, channel: any Channel) {
        onLoop { $0.streamClosed() }
        next.streamClosed(id, channel: channel)
    }

    private func onLoop(_ body: @escaping @Sendable (GracefulDrainHandler) -> Void) {
        if handler.eventLoop.inEventLoop {
            body(handler.value)
        } else {
            let handler = self.handler
            handler.eventLoop.execute { body(handler.value) }
        }
    }
}

/// Passes bytes through unchanged; ``GracefulDrainHandler`` writes whole frames from its
/// position, between TLS (if any) and the HTTP/2 handler, so that they bypass the HTTP/2 state
/// machine. It is written to only from its own event-loop task, never while the HTTP/2 handler
/// is part-way through writing a frame.
final class DrainFrameWriter: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData
}
