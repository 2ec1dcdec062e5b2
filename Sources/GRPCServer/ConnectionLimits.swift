import NIOCore
import NIOHTTP2

/// What one HTTP/2 connection may hold and do, shared by the connection's handler and the
/// handlers of its streams: the bytes of partly received request messages summed over every
/// stream, and the client's pings (etcd's `--grpc-keepalive-min-time` policy).
///
/// The use of `@unchecked Sendable` is safe because the object is only ever touched on the
/// connection's event loop: HTTP/2 stream channels share their connection's loop, and the
/// initializers that capture it run there too.
final class ConnectionLimits: @unchecked Sendable {
    /// The most bytes of partly received messages the connection's streams may hold together.
    let maxBufferedBytes: Int
    /// The shortest interval between client pings that counts as well-behaved.
    let minimumPingInterval: TimeAmount
    /// Bytes of partly received messages held by the connection's streams now.
    private(set) var bufferedBytes = 0
    private var lastPing: NIODeadline?
    private var pingStrikes = 0
    private var respondedSincePing = false

    /// Pings arriving too early that are forgiven before the connection is closed (grpc-go's
    /// `maxPingStrikes`).
    static let maximumPingStrikes = 2

    init(maxBufferedBytes: Int, minimumPingInterval: TimeAmount) {
        self.maxBufferedBytes = maxBufferedBytes
        self.minimumPingInterval = minimumPingInterval
    }

    /// Changes the buffered bytes by `delta` (positive: a stream holds more), and returns whether
    /// the total is within ``maxBufferedBytes``. A refused increase is not recorded.
    func adjustBuffered(by delta: Int) -> Bool {
        let total = bufferedBytes + delta
        if delta > 0 && total > maxBufferedBytes { return false }
        bufferedBytes = max(0, total)
        return true
    }

    /// Notes that the server wrote response headers or data: as in grpc-go, the pings that
    /// follow are not held against the client (grpc-go's clients ping to measure bandwidth as
    /// they receive data).
    func responded() {
        respondedSincePing = true
    }

    /// Records a client PING at `now` and returns whether the connection must be closed with
    /// GOAWAY `ENHANCE_YOUR_CALM` "too_many_pings": more than ``maximumPingStrikes`` pings came
    /// sooner than ``minimumPingInterval`` after the one before, with no response in between.
    func receivedPing(at now: NIODeadline) -> Bool {
        defer { lastPing = now }
        if respondedSincePing {
            respondedSincePing = false
            pingStrikes = 0
            return false
        }
        if let lastPing, lastPing + minimumPingInterval > now { pingStrikes += 1 }
        return pingStrikes > Self.maximumPingStrikes
    }
}

/// Keeps an HTTP/2 connection honest about pings, as grpc-go (and so etcd) does.
///
/// - A client that pings too often (``ConnectionLimits/receivedPing(at:)``) gets GOAWAY
///   `ENHANCE_YOUR_CALM` with the debug data "too_many_pings", and the connection is closed
///   (`--grpc-keepalive-min-time`).
/// - A connection silent for `interval` is pinged; if nothing at all arrives within `timeout`
///   after that, the connection is closed at once (`--grpc-keepalive-interval` and
///   `--grpc-keepalive-timeout`): a dead client cannot answer a graceful GOAWAY either.
final class KeepaliveHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private let limits: ConnectionLimits
    private let interval: TimeAmount
    private let timeout: TimeAmount
    private var lastStreamID = HTTP2StreamID.rootStream
    private var closing = false
    private var pingTimer: Scheduled<Void>?
    private var timeoutTimer: Scheduled<Void>?

    /// The data of the server's keepalive pings.
    private static let pingData = HTTP2PingData(withInteger: 0x7374_6174_6568_6f75)

    init(limits: ConnectionLimits, interval: TimeAmount, timeout: TimeAmount) {
        self.limits = limits
        self.interval = interval
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // Added to a connection that is already active.
        schedulePing(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimers()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Anything the client sends shows it is alive.
        timeoutTimer?.cancel()
        timeoutTimer = nil
        let frame = unwrapInboundIn(data)
        if case .ping(_, ack: false) = frame.payload, !closing, limits.receivedPing(at: .now()) {
            closing = true
            let goAway = HTTP2Frame(
                streamID: .rootStream,
                payload: .goAway(
                    lastStreamID: lastStreamID, errorCode: .enhanceYourCalm,
                    opaqueData: context.channel.allocator.buffer(string: "too_many_pings")))
            context.writeAndFlush(wrapOutboundOut(goAway), promise: nil)
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        schedulePing(context: context)
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimers()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let created = event as? NIOHTTP2StreamCreatedEvent, created.streamID > lastStreamID {
            lastStreamID = created.streamID
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Pings the client once it has been silent for the interval, then closes the connection
    /// if nothing arrives within the timeout.
    private func schedulePing(context: ChannelHandlerContext) {
        pingTimer?.cancel()
        let loop = context.eventLoop.assumeIsolated()
        pingTimer = loop.scheduleTask(in: interval) { [self] in
            context.writeAndFlush(
                wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .ping(Self.pingData, ack: false))), promise: nil)
            timeoutTimer?.cancel()
            timeoutTimer = loop.scheduleTask(in: timeout) { context.close(promise: nil) }
        }
    }

    private func cancelTimers() {
        pingTimer?.cancel()
        pingTimer = nil
        timeoutTimer?.cancel()
        timeoutTimer = nil
    }
}

extension GRPCServerConfiguration {
    /// The HTTP/2 settings and the denial-of-service limits of every connection.
    ///
    /// - Header lists are limited to 16 KiB (SETTINGS_MAX_HEADER_LIST_SIZE), in at most
    ///   ``maximumContinuationFrames`` CONTINUATION frames.
    /// - A client may reset at most ``maximumResetFrames`` streams, and cause as many stream
    ///   errors, in 30 s (the "rapid reset" attack); past it the connection is closed.
    /// - PING, SETTINGS and PRIORITY frames: at most ``maximumControlFrames`` in 30 s. The
    ///   allowance is generous because grpc-go clients ping with each burst of data they receive
    ///   (bandwidth estimation); pings that come too often without data are refused earlier, by
    ///   the `--grpc-keepalive-min-time` policy. At most ``maximumBufferedControlFrames``
    ///   answers wait for a client that does not read, which bounds a ping flood's memory.
    var http2Configuration: (NIOHTTP2Handler.ConnectionConfiguration, NIOHTTP2Handler.StreamConfiguration) {
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: Self.maximumHeaderListBytes),
            HTTP2Setting(parameter: .initialWindowSize, value: 1 << 20),
        ]
        connection.controlFrameRateLimit.maximumCount = Self.maximumControlFrames
        connection.controlFrameRateLimit.windowLength = .seconds(30)
        connection.maximumBufferedControlFrames = Self.maximumBufferedControlFrames
        connection.maximumSequentialContinuationFrames = Self.maximumContinuationFrames
        connection.targetWindowSize = 8 << 20
        var stream = NIOHTTP2Handler.StreamConfiguration()
        stream.targetWindowSize = 1 << 20
        stream.streamResetFrameRateLimit.maximumCount = Self.maximumResetFrames
        stream.streamResetFrameRateLimit.windowLength = .seconds(30)
        stream.streamErrorRateLimit.maximumCount = Self.maximumResetFrames
        stream.streamErrorRateLimit.windowLength = .seconds(30)
        return (connection, stream)
    }

    /// The largest header list a client may send (SETTINGS_MAX_HEADER_LIST_SIZE), in bytes.
    public static let maximumHeaderListBytes = 16_384
    /// The most CONTINUATION frames after one HEADERS frame.
    public static let maximumContinuationFrames = 5
    /// The most RST_STREAM frames (and, separately, stream errors) a client may cause in 30 s.
    public static let maximumResetFrames = 200
    /// The most PING, SETTINGS and PRIORITY frames a client may send in 30 s.
    public static let maximumControlFrames = 100_000
    /// The most control-frame answers queued for a client that does not read.
    public static let maximumBufferedControlFrames = 10_000
}
