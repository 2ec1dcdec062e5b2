import NIOCore

/// Keeps a draining HTTP/2 connection open for a moment after its last call ends, instead of
/// closing it at once.
///
/// On graceful shutdown the server sends GOAWAY on every connection and closes each one when
/// its calls are done. A client can still pick such a connection for a new call until it has
/// acted on the GOAWAY (grpc-go updates its connection picker asynchronously). On a connection
/// that is draining, that call is refused as never processed, and the client retries it on
/// another member without the caller noticing; on a connection already closed, it fails with
/// "transport is closing" (the error etcd 3.4's own rolling restarts show). Holding the close
/// back for ``linger`` after the shutdown began covers that window; a client that closes the
/// connection itself (as grpc-go does once it has drained) ends the wait earlier, and a second
/// close request (the server's final sweep) goes through at once.
///
/// The handler sits first in the connection's pipeline, so it sees every close the HTTP/2
/// handlers above it ask for. Closes before a shutdown began are not delayed.
final class LingeringCloseHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let linger: TimeAmount
    private var isQuiescing = false
    private var pending: (close: Scheduled<Void>, promise: EventLoopPromise<Void>?)?

    /// Creates a handler that delays a shutdown's close by `linger`.
    init(linger: TimeAmount) {
        self.linger = linger
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent { isQuiescing = true }
        context.fireUserInboundEventTriggered(event)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard isQuiescing, mode == .all, pending == nil, linger > .zero else {
            context.close(mode: mode, promise: promise)
            return
        }
        let close = context.eventLoop.assumeIsolated().scheduleTask(in: linger) {
            self.pending = nil
            context.close(mode: mode, promise: promise)
        }
        pending = (close, promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The client closed first: the close asked for is done.
        if let (close, promise) = pending {
            pending = nil
            close.cancel()
            promise?.succeed()
        }
        context.fireChannelInactive()
    }
}
