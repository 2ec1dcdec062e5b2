import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Primitives
import TransportSecurity

/// What a sender on any thread needs to know about the link, kept with the queue under one lock.
enum LinkReadiness: Equatable {
    /// No connection was ever asked for: the first send starts one.
    case idle
    /// Connecting, or waiting to reconnect: frames wait, the link drains them once connected.
    case waiting
    /// Connected and writable: a send schedules a drain.
    case ready
    /// Connected but not writable: frames wait until the channel is writable again.
    case blocked
    /// Removed or shut down: frames are dropped.
    case closed
}

/// The part of a link shared between senders and the link's event loop.
struct Outbox {
    var frames = CircularBuffer<[UInt8]>(initialCapacity: 64)
    /// The queued frames' bytes as they go on the wire, length prefixes included.
    var queuedBytes = 0
    var readiness = LinkReadiness.idle
    /// Whether a drain is already scheduled on the link's event loop.
    var isDrainScheduled = false
    var sentFrames = 0
    /// Bytes written to connections, length prefixes included.
    var sentBytes = 0
    var droppedFrames = 0
    var reconnects = 0
    var isConnected = false
    /// The version the open connection speaks, 0 if none.
    var protocolVersion: UInt8 = 0
    /// The peer's versions, when it answered that none is in common.
    var refusedBy: ClosedRange<UInt8>?
    var roundTrips = RoundTripHistogram()

    var statistics: PeerTransport.Statistics.Peer {
        var peer = PeerTransport.Statistics.Peer(
            sentFrames: sentFrames, droppedFrames: droppedFrames, queuedFrames: frames.count, queuedBytes: queuedBytes,
            isConnected: isConnected, reconnects: reconnects, sentBytes: sentBytes)
        peer.protocolVersion = Int(protocolVersion)
        peer.refusedBy = refusedBy
        peer.roundTrips = roundTrips
        return peer
    }
}

/// The outbound side of one peer: its queue and its one connection.
///
/// Senders on any thread only touch the ``Outbox`` (under its lock). Everything else — the
/// connection, its state, the backoff timer — belongs to `loop` and is only touched there, which
/// is why the class is `@unchecked Sendable`.
final class PeerLink: @unchecked Sendable {
    /// The peer's member ID.
    let id: UInt64
    /// The event loop that owns the connection and the fields below the lock.
    let loop: any EventLoop
    private let configuration: PeerTransport.Configuration
    private let logger: Logger
    private let outbox = NIOLockedValueBox(Outbox())

    private enum Connection {
        case idle
        case connecting(attempt: Int)
        case connected(any Channel)
        case backingOff(Scheduled<Void>)
        case closed
    }

    // Confined to `loop`.
    private var host: String
    private var port: Int
    /// Whether connections speak TLS (an `https://` peer URL), with ``PeerTransport/Configuration/clientTLS``.
    private var usesTLS: Bool
    private var connection = Connection.idle
    private var attempts = 0
    private var consecutiveFailures = 0
    private var connectedAt = NIODeadline.uptimeNanoseconds(0)
    private var isDraining = false
    private var mustDrainAgain = false
    private var batch: [[UInt8]] = []
    /// The hello the open connection started with, and whether the peer answered it.
    private var hello: (versions: ClosedRange<UInt8>, isAnswered: Bool) = (1...1, false)
    /// Whether the next connection starts with a version-1 hello: after a peer closed a
    /// connection without answering a hello with a range, as builds from before ranges do.
    private var sendsVersionOneHello: Bool
    /// The repeated round-trip probe of the open connection, and when its unanswered probe left.
    private var probe: RepeatedTask?
    private var probeSentAt: NIODeadline?

    /// The most payload bytes encoded into one write (a single larger frame is written alone).
    private static let chunkBytes = 64 << 10
    /// The write buffer watermarks: above the high one the channel is not writable.
    static let writeBufferWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 256 << 10, high: 1 << 20)

    init(
        id: UInt64, host: String, port: Int, usesTLS: Bool = false, loop: any EventLoop, configuration: PeerTransport.Configuration,
        logger: Logger
    ) {
        self.id = id
        self.host = host
        self.port = port
        self.usesTLS = usesTLS
        self.loop = loop
        self.configuration = configuration
        self.sendsVersionOneHello = configuration.protocolVersions.upperBound < 2
        var logger = logger
        logger[metadataKey: "peer"] = "\(id)"
        self.logger = logger
    }

    /// This peer's counters.
    var statistics: PeerTransport.Statistics.Peer {
        outbox.withLockedValue { $0.statistics }
    }

    /// The peer protocol version the open connection speaks; 0 while none is open.
    var protocolVersion: UInt8 {
        outbox.withLockedValue { $0.protocolVersion }
    }

    // MARK: Any thread

    /// Queues `frames` (dropping, and counting, what does not fit) and makes sure the loop drains them.
    func enqueue(_ frames: some Collection<[UInt8]>) {
        let limit = configuration.maxQueuedBytesPerPeer
        let mustSchedule = outbox.withLockedValue { box -> Bool in
            guard box.readiness != .closed else {
                box.droppedFrames += frames.count
                return false
            }
            for frame in frames {
                let wireBytes = PeerWire.lengthPrefixBytes + frame.count
                // A frame the peer would refuse (and close the connection over) is not sent.
                guard frame.count <= min(configuration.maxFrameBytes, PeerWire.largestEncodableFrame), box.queuedBytes + wireBytes <= limit
                else {
                    box.droppedFrames += 1
                    continue
                }
                box.frames.append(frame)
                box.queuedBytes += wireBytes
            }
            guard !box.isDrainScheduled, !box.frames.isEmpty, box.readiness == .idle || box.readiness == .ready else {
                return false
            }
            box.isDrainScheduled = true
            return true
        }
        guard mustSchedule else { return }
        // On the link's own loop (the member loop, on a server) the frames leave now, not after
        // whatever else the current task still does (a batch's apply, say).
        if loop.inEventLoop {
            scheduledDrain()
        } else {
            loop.execute { self.scheduledDrain() }
        }
    }

    /// Points the link at a new address; a live or pending connection is replaced by one to it.
    func setAddress(host: String, port: Int, usesTLS: Bool = false) {
        loop.execute { self.addressChanged(host: host, port: port, usesTLS: usesTLS) }
    }

    /// Connects at once if the link is idle or waiting out a reconnect backoff (which starts over).
    ///
    /// Called when the peer is known to be up because it just connected to this member: a peer
    /// that restarted then hears from this member within a round trip, not after a backoff that
    /// grew while it was down (up to ``PeerTransport/Configuration/reconnectDelay``'s maximum).
    func connectNow() {
        loop.execute {
            switch self.connection {
            case .idle:
                self.connect()
            case .backingOff(let timer):
                timer.cancel()
                self.consecutiveFailures = 0
                self.outbox.withLockedValue { $0.reconnects += 1 }
                self.connect()
            case .connecting, .connected, .closed:
                break
            }
        }
    }

    /// Closes the connection, cancels any reconnect and drops the queue; later sends are dropped.
    func close() -> EventLoopFuture<Void> {
        loop.flatSubmit { self.closeOnLoop() }
    }

    // MARK: On `loop`

    private func setReadiness(_ readiness: LinkReadiness, isConnected: Bool? = nil) {
        outbox.withLockedValue { box in
            if box.readiness != .closed { box.readiness = readiness }
            if let isConnected { box.isConnected = isConnected }
        }
    }

    private func scheduledDrain() {
        loop.assertInEventLoop()
        outbox.withLockedValue { $0.isDrainScheduled = false }
        switch connection {
        case .idle: connect()
        case .connected: drain()
        case .connecting, .backingOff, .closed: break
        }
    }

    private func connect() {
        loop.assertInEventLoop()
        attempts += 1
        let attempt = attempts
        connection = .connecting(attempt: attempt)
        setReadiness(.waiting)
        logger.trace("connecting", metadata: ["address": "\(host):\(port)"])
        ClientBootstrap(group: loop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: Self.writeBufferWaterMark)
            .channelInitializer { [host, usesTLS, configuration] channel in
                channel.eventLoop.makeCompletedFuture {
                    if usesTLS {
                        try channel.pipeline.syncOperations.addHandler(try Self.tlsHandler(host: host, configuration: configuration))
                    }
                    // The peer writes at most the hello's reply, then empty frames (probes' answers).
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(FrameDecoder(maxFrameBytes: 0, firstFrameBytes: PeerHelloReply.payloadBytes)))
                    try channel.pipeline.syncOperations.addHandler(OutboundConnectionHandler(link: self))
                }
            }
            .connect(host: host, port: port)
            .hop(to: loop)
            .whenComplete { result in self.connectFinished(result, attempt: attempt) }
    }

    /// The TLS client side of a connection to `host`: the server's certificate must name `host`
    /// (an IP address is checked against the certificate's IP addresses, a name is also sent as SNI).
    private static func tlsHandler(host: String, configuration: PeerTransport.Configuration) throws -> NIOSSLClientHandler {
        guard let source = configuration.clientTLS else { throw PeerTransportError.noClientTLS }
        let isAddress = NetworkAddress.isIPv4Address(Substring(host)) || host.contains(":")
        return try NIOSSLClientHandler(context: source.context, serverHostname: isAddress ? nil : host)
    }

    private func connectFinished(_ result: Result<any Channel, any Error>, attempt: Int) {
        loop.assertInEventLoop()
        guard case .connecting(let current) = connection, current == attempt else {
            // Superseded by a new address, or the link was closed meanwhile.
            if case .success(let channel) = result { channel.close(promise: nil) }
            return
        }
        switch result {
        case .success(let channel) where channel.isActive:
            connection = .connected(channel)
            connectedAt = .now()
            let versions = sendsVersionOneHello ? 1...1 : configuration.protocolVersions
            self.hello = (versions, false)
            let hello = PeerHello(clusterID: configuration.clusterID, senderID: configuration.localID, versions: versions).encoded
            // A version-1 peer never answers: the connection speaks version 1 from the start.
            outbox.withLockedValue { $0.protocolVersion = versions.upperBound < 2 ? 1 : 0 }
            var buffer = channel.allocator.buffer(capacity: PeerWire.lengthPrefixBytes + hello.count)
            PeerWire.writeFrame(hello, into: &buffer)
            channel.writeAndFlush(buffer, promise: nil)
            setReadiness(.ready, isConnected: true)
            logger.info("connected to peer", metadata: ["address": "\(host):\(port)"])
            drain()
        case .success(let channel):
            channel.close(promise: nil)
            logger.debug("connection closed as it opened", metadata: ["address": "\(host):\(port)"])
            scheduleReconnect()
        case .failure(let error):
            logger.debug("connect failed", metadata: ["address": "\(host):\(port)", "error": "\(error)"])
            scheduleReconnect()
        }
    }

    private func scheduleReconnect() {
        loop.assertInEventLoop()
        let (minimum, maximum) = configuration.reconnectDelay
        let exponent = min(consecutiveFailures, 32)
        let scaled = minimum.nanoseconds.multipliedReportingOverflow(by: Int64(1) << exponent)
        let delay = TimeAmount.nanoseconds(scaled.overflow ? maximum.nanoseconds : min(scaled.partialValue, maximum.nanoseconds))
        consecutiveFailures += 1
        let task = loop.scheduleTask(in: delay) { self.reconnectTimerFired() }
        connection = .backingOff(task)
        setReadiness(.waiting, isConnected: false)
    }

    private func reconnectTimerFired() {
        loop.assertInEventLoop()
        guard case .backingOff = connection else { return }
        outbox.withLockedValue { $0.reconnects += 1 }
        connect()
    }

    /// Called by the connection's handler when `channel` closed.
    func channelClosed(_ channel: any Channel) {
        loop.assertInEventLoop()
        guard case .connected(let current) = connection, current === channel else { return }
        stopProbing()
        if hello.versions.upperBound >= 2, !hello.isAnswered, configuration.protocolVersions.lowerBound == 1 {
            sendsVersionOneHello = true
            logger.info(
                "peer closed the connection without answering the hello: it may run a build that speaks peer protocol version 1 only; the next connection speaks version 1",
                metadata: ["versions": "\(PeerHello.describe(configuration.protocolVersions))"])
        } else if hello.versions.upperBound >= 2, !hello.isAnswered {
            logger.warning(
                "peer closed the connection without answering the hello: it may run a build that speaks peer protocol version 1 only, which this member does not",
                metadata: ["versions": "\(PeerHello.describe(configuration.protocolVersions))"])
        } else if hello.versions.upperBound < 2, configuration.protocolVersions.upperBound >= 2 {
            // The peer may have been upgraded meanwhile: offer the whole range again.
            sendsVersionOneHello = false
        }
        // A connection that lived through a whole maximum backoff restarts the backoff; one that
        // closes at once (a peer that rejects us, say) keeps backing off further.
        if NIODeadline.now() - connectedAt >= configuration.reconnectDelay.max {
            consecutiveFailures = 0
        }
        logger.info("connection to peer closed; reconnecting", metadata: ["address": "\(host):\(port)"])
        scheduleReconnect()
    }

    /// Called by the connection's handler with each frame the peer wrote on `channel`: the answer
    /// to the hello, then answers to probes.
    func received(_ frame: ByteBuffer, on channel: any Channel) {
        loop.assertInEventLoop()
        guard case .connected(let current) = connection, current === channel else { return }
        guard hello.isAnswered else {
            answered(frame, on: channel)
            return
        }
        guard frame.readableBytes == 0, let sentAt = probeSentAt else {
            logger.warning("peer wrote an unexpected frame; closing the connection")
            channel.close(promise: nil)
            return
        }
        probeSentAt = nil
        let seconds = Double((NIODeadline.now() - sentAt).nanoseconds) / 1e9
        outbox.withLockedValue { $0.roundTrips.record(seconds) }
    }

    private func answered(_ frame: ByteBuffer, on channel: any Channel) {
        let ours = configuration.protocolVersions
        let reply: PeerHelloReply
        do {
            reply = try PeerHelloReply(parsing: frame)
        } catch {
            logger.warning("closing the connection to peer: \(error)")
            channel.close(promise: nil)
            return
        }
        hello.isAnswered = true
        guard let chosen = reply.chosen, hello.versions.contains(chosen) else {
            let isNew = outbox.withLockedValue { box in
                defer { box.refusedBy = reply.versions }
                return box.refusedBy != reply.versions
            }
            logger.log(
                level: isNew ? .error : .debug,
                "peer refused the connection: it speaks peer protocol versions \(PeerHello.describe(reply.versions)), this member \(PeerHello.describe(ours)): no version in common; run builds whose versions overlap",
                metadata: ["address": "\(host):\(port)"])
            channel.close(promise: nil)
            return
        }
        outbox.withLockedValue { box in
            box.protocolVersion = chosen
            box.refusedBy = nil
        }
        logger.debug("peer answered the hello", metadata: ["version": "\(chosen)"])
        if chosen >= 2 {
            probe = loop.scheduleRepeatedTask(initialDelay: .zero, delay: configuration.roundTripProbeInterval) { _ in
                self.sendProbe(on: channel)
            }
        }
    }

    /// Writes a probe (an empty frame) unless the last one is still unanswered.
    private func sendProbe(on channel: any Channel) {
        loop.assertInEventLoop()
        guard case .connected(let current) = connection, current === channel, probeSentAt == nil else { return }
        var buffer = channel.allocator.buffer(capacity: PeerWire.lengthPrefixBytes)
        PeerWire.writeFrame([], into: &buffer)
        probeSentAt = .now()
        channel.writeAndFlush(buffer, promise: nil)
    }

    private func stopProbing() {
        probe?.cancel()
        probe = nil
        probeSentAt = nil
        outbox.withLockedValue { $0.protocolVersion = 0 }
    }

    /// Called by the connection's handler when `channel`'s writability changed.
    func writabilityChanged(_ channel: any Channel) {
        loop.assertInEventLoop()
        guard case .connected(let current) = connection, current === channel, channel.isWritable else { return }
        setReadiness(.ready)
        drain()
    }

    /// Writes queued frames while the channel is writable, then flushes once.
    private func drain() {
        loop.assertInEventLoop()
        guard case .connected(let channel) = connection else { return }
        if isDraining {
            // Re-entered from a writability change during our own flush.
            mustDrainAgain = true
            return
        }
        isDraining = true
        defer { isDraining = false }
        repeat {
            mustDrainAgain = false
            var wrote = false
            while channel.isWritable, let chunk = nextChunk(allocator: channel.allocator) {
                channel.write(chunk, promise: nil)
                wrote = true
            }
            if !channel.isWritable {
                // Set before flushing: the flush may make the channel writable again at once.
                setReadiness(.blocked)
            }
            if wrote { channel.flush() }
        } while mustDrainAgain
    }

    /// Takes the next frames off the queue, up to ``chunkBytes`` (or one larger frame), encoded.
    private func nextChunk(allocator: ByteBufferAllocator) -> ByteBuffer? {
        var bytes = 0
        outbox.withLockedValue { box in
            while let frame = box.frames.first {
                let wireBytes = PeerWire.lengthPrefixBytes + frame.count
                guard batch.isEmpty || bytes + wireBytes <= Self.chunkBytes else { break }
                batch.append(box.frames.removeFirst())
                bytes += wireBytes
            }
            box.queuedBytes -= bytes
            box.sentFrames += batch.count
            box.sentBytes += bytes
        }
        guard !batch.isEmpty else { return nil }
        var buffer = allocator.buffer(capacity: bytes)
        for frame in batch { PeerWire.writeFrame(frame, into: &buffer) }
        batch.removeAll(keepingCapacity: true)
        return buffer
    }

    private func addressChanged(host: String, port: Int, usesTLS: Bool) {
        loop.assertInEventLoop()
        guard host != self.host || port != self.port || usesTLS != self.usesTLS else { return }
        logger.info("peer address changed", metadata: ["from": "\(self.host):\(self.port)", "to": "\(host):\(port)"])
        self.host = host
        self.port = port
        self.usesTLS = usesTLS
        let previous = connection
        connection = .idle
        switch previous {
        case .idle, .closed:
            connection = previous
            return
        case .connecting:
            break  // its completion sees it was superseded
        case .connected(let channel):
            stopProbing()
            setReadiness(.waiting, isConnected: false)
            channel.close(promise: nil)
        case .backingOff(let task):
            task.cancel()
        }
        consecutiveFailures = 0
        connect()
    }

    private func closeOnLoop() -> EventLoopFuture<Void> {
        loop.assertInEventLoop()
        outbox.withLockedValue { box in
            box.readiness = .closed
            box.isConnected = false
            box.frames.removeAll()
            box.queuedBytes = 0
        }
        let previous = connection
        connection = .closed
        stopProbing()
        switch previous {
        case .connected(let channel):
            return channel.close().recover { _ in }
        case .backingOff(let task):
            task.cancel()
        case .idle, .connecting, .closed:
            break
        }
        return loop.makeSucceededVoidFuture()
    }
}

/// The handler of an outbound connection: hands its link the frames the peer writes (the answer
/// to the hello, answers to probes), and tells it when the channel closes or its writability
/// changes.
final class OutboundConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let link: PeerLink

    init(link: PeerLink) {
        self.link = link
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        link.received(Self.unwrapInboundIn(data), on: context.channel)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        link.writabilityChanged(context.channel)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        link.channelClosed(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
