public import Logging
import NIOConcurrencyHelpers
public import NIOCore
import NIOPosix
import NIOSSL
public import TransportSecurity

/// The transport Raft members use to talk to each other: length-prefixed binary frames over TCP.
///
/// Each member listens for its peers' connections and opens one connection of its own to each peer
/// it sends to, so two members talk over two connections, one in each direction. Frames are opaque
/// payloads: the caller encodes its messages.
///
/// On the wire every frame is a 4-byte big-endian length followed by the payload. A connection
/// starts with a hello frame (`SHPT`, the versions of the peer protocol the sender speaks, the
/// cluster ID and the sender's ID); the accepting side answers with its own versions and the
/// highest both speak, and closes connections from other clusters, with no version in common or
/// anything else, and connections that announce a frame longer than
/// ``Configuration/maxFrameBytes``. A peer from before version ranges, which speaks version 1
/// only and refuses a hello with a range, gets a version-1 hello on the next connection.
///
/// On connections speaking version 2 or later the connecting side probes the round trip every
/// ``Configuration/roundTripProbeInterval`` (an empty frame, answered with an empty frame); the
/// times are in ``Statistics/Peer/roundTrips``.
///
/// Sending never blocks: ``send(_:to:)-([UInt8],_)`` queues the frame for the peer (bounded by
/// ``Configuration/maxQueuedBytesPerPeer``) and the peer's event loop writes it. The connection is
/// opened when the peer is added and reopened, with exponential backoff, whenever it fails or
/// closes; a peer that connects to this member is reconnected to at once, backoff or not.
/// Frames that cannot be queued are dropped and counted: Raft tolerates lost messages.
///
/// Call ``shutdown()`` before releasing a transport.
public final class PeerTransport: Sendable {
    /// How a transport identifies itself and bounds its queues and frames.
    public struct Configuration: Sendable {
        /// This member's ID, sent in the hello of every connection it opens.
        public var localID: UInt64
        /// The cluster's ID: connections whose hello names another cluster are closed.
        public var clusterID: UInt64
        /// The most bytes (length prefixes included) queued for one peer; frames beyond are dropped and counted.
        ///
        /// A frame only leaves the queue when the connection is writable, so this also bounds what
        /// waits for a slow or unreachable peer. A single frame larger than this is always dropped.
        public var maxQueuedBytesPerPeer: Int = 64 << 20
        /// The longest frame accepted, inbound and outbound: a connection announcing a longer one
        /// is closed as malformed, and a longer frame to send is dropped and counted. The server
        /// sets it to the largest Raft message it can send (a snapshot chunk, an append message,
        /// one entry) plus headroom for headers; see ``maxFrameBytes(largestPayload:)``.
        public var maxFrameBytes: Int = 4 << 20
        /// The delay before the first reconnect, doubled after each failure up to the maximum.
        public var reconnectDelay: (min: TimeAmount, max: TimeAmount) = (.milliseconds(50), .seconds(2))
        /// How long a connection attempt may take before it counts as failed.
        public var connectTimeout: TimeAmount = .seconds(5)
        /// Whether a connection whose hello names this sender is accepted (called on the
        /// connection's event loop: it must not block). By default every sender of this cluster
        /// is; a member passes the members it knows, so that a hello naming anyone else is closed.
        ///
        /// The hello is not authenticated: this keeps out connections that name no member, not
        /// one that names a member falsely.
        public var admitsSender: @Sendable (_ senderID: UInt64) -> Bool = { _ in true }
        /// Called when an accepted connection from a peer closes (its process exited, its host
        /// reset the connection, or the peer closed it), with the peer's ID, on the connection's
        /// event loop: it must not block. A member uses it to notice a dead leader at once.
        public var peerDisconnected: @Sendable (_ senderID: UInt64) -> Void = { _ in }
        /// TLS of the listeners opened with `usesTLS` (`https://` peer URLs); each accepted
        /// connection takes the source's current context, so rotated files apply to new ones.
        public var serverTLS: TLSContextSource?
        /// The only common name accepted in the client certificates of TLS peer connections
        /// (`--peer-cert-allowed-cn`); nil accepts any certificate the listener verified.
        public var allowedCommonName: String?
        /// TLS of the connections this member opens to peers added with `usesTLS`.
        public var clientTLS: TLSContextSource?
        /// The versions of the peer protocol this member speaks: by default every version this
        /// build knows (``PeerTransport/supportedProtocolVersions``). Tests narrow it to stand
        /// for another build (see ``PeerTransport/protocolVersions(testingEnvironment:)``).
        public var protocolVersions: ClosedRange<UInt8> = PeerTransport.supportedProtocolVersions
        /// How often the round trip to each peer is probed on connections speaking version 2 or
        /// later (etcd's prober: every 4 s); the first probe goes out as the connection opens.
        public var roundTripProbeInterval: TimeAmount = .seconds(4)
        /// Whether ``PeerTransport/setPeer(_:host:port:usesTLS:)`` opens the connection to a new
        /// peer at once rather than on the first send, so that the round trip to every peer is
        /// measured even when nothing is sent to it (a follower sends only to the leader), and a
        /// peer that restarted learns at once that this member is up (its link here then skips
        /// its reconnect backoff).
        public var connectsEagerly = false

        /// The frame limit for messages of at most `largestPayload` bytes of entries or snapshot
        /// data: that plus 1 MiB for the messages' headers.
        public static func maxFrameBytes(largestPayload: Int) -> Int {
            largestPayload + (1 << 20)
        }

        /// Creates the configuration of member `localID` of cluster `clusterID`, with default limits.
        public init(localID: UInt64, clusterID: UInt64) {
            self.localID = localID
            self.clusterID = clusterID
        }
    }

    /// Counters of a transport, read with ``PeerTransport/statistics``.
    public struct Statistics: Sendable, Equatable {
        /// The counters of the connection to one peer.
        public struct Peer: Sendable, Equatable {
            /// Frames written to the connection (not necessarily received).
            public var sentFrames: Int
            /// Frames dropped because the queue was full or the peer was removed.
            public var droppedFrames: Int
            /// Frames waiting to be written.
            public var queuedFrames: Int
            /// Bytes waiting to be written, length prefixes included.
            public var queuedBytes: Int
            /// Whether the connection is open.
            public var isConnected: Bool
            /// Connection attempts after the first one.
            public var reconnects: Int
            /// Bytes written to the connection, length prefixes included.
            public var sentBytes: Int
            /// The peer protocol version the open connection speaks; 0 while none is open or
            /// the peer refused (see ``refusedBy``).
            public var protocolVersion: Int = 0
            /// The versions the peer speaks, when its last answer was that it has none in common
            /// with this member; nil once a connection is accepted.
            public var refusedBy: ClosedRange<UInt8>?
            /// The measured round trips to the peer.
            public var roundTrips = RoundTripHistogram()

            /// Creates a peer's counters.
            public init(
                sentFrames: Int, droppedFrames: Int, queuedFrames: Int, queuedBytes: Int, isConnected: Bool, reconnects: Int,
                sentBytes: Int = 0
            ) {
                self.sentBytes = sentBytes
                self.sentFrames = sentFrames
                self.droppedFrames = droppedFrames
                self.queuedFrames = queuedFrames
                self.queuedBytes = queuedBytes
                self.isConnected = isConnected
                self.reconnects = reconnects
            }
        }

        /// The outbound counters of each known peer, by peer ID.
        public var peers: [UInt64: Peer]
        /// Frames received and delivered, by sender ID.
        public var receivedFrames: [UInt64: Int]
        /// Bytes received, length prefixes included, by sender ID.
        public var receivedBytes: [UInt64: Int] = [:]
        /// Frames dropped because no peer had that ID, or the transport was shut down.
        public var unroutableFrames: Int
        /// Inbound connections currently open.
        public var inboundConnections: Int
        /// Inbound connections closed for a bad hello (wrong magic, version or cluster, or a
        /// sender that is not admitted) or an oversized frame.
        public var rejectedConnections: Int

        /// Creates a transport's counters.
        public init(
            peers: [UInt64: Peer], receivedFrames: [UInt64: Int], unroutableFrames: Int, inboundConnections: Int,
            rejectedConnections: Int
        ) {
            self.peers = peers
            self.receivedFrames = receivedFrames
            self.unroutableFrames = unroutableFrames
            self.inboundConnections = inboundConnections
            self.rejectedConnections = rejectedConnections
        }

        /// Frames received from all senders.
        public var totalReceivedFrames: Int { receivedFrames.values.reduce(0, +) }
    }

    private struct State {
        var peers: [UInt64: PeerLink] = [:]
        var listeners: [any Channel] = []
        var inbound: [ObjectIdentifier: any Channel] = [:]
        var isShutDown = false
        var unroutableFrames = 0
        var lastWarnings: [RefusalWarning: NIODeadline] = [:]
    }

    /// The kinds of refused connection whose warnings are rate-limited.
    enum RefusalWarning: Hashable {
        case unknownSender
        case noCommonVersion
    }

    private struct InboundCounters {
        var receivedFrames: [UInt64: Int] = [:]
        var receivedBytes: [UInt64: Int] = [:]
        var rejectedConnections = 0
    }

    /// The configuration the transport was created with.
    public let configuration: Configuration
    private let group: any EventLoopGroup
    private let logger: Logger
    private let receive: @Sendable (UInt64, [UInt8]) -> Void
    private let state = NIOLockedValueBox(State())
    private let inboundCounters = NIOLockedValueBox(InboundCounters())

    /// Creates a transport; nothing is opened until ``listen(host:port:usesTLS:)`` or the first send.
    /// - Parameters:
    ///   - configuration: this member's identity and the limits.
    ///   - group: the event loops connections run on; each peer is pinned to one of them.
    ///   - logger: where connection events and rejected connections are logged.
    ///   - receive: called with each inbound frame and its sender's ID, in order per connection,
    ///     on the connection's event loop: it must not block.
    public init(
        configuration: Configuration, group: any EventLoopGroup, logger: Logger,
        receive: @escaping @Sendable (_ from: UInt64, _ frame: [UInt8]) -> Void
    ) {
        self.configuration = configuration
        self.group = group
        self.logger = logger
        self.receive = receive
    }

    // MARK: Listening

    /// Starts accepting peers' connections on `host`:`port`.
    /// - Parameters:
    ///   - host: the address to bind, such as `127.0.0.1` or `0.0.0.0`.
    ///   - port: the port to bind; 0 binds any free port.
    ///   - usesTLS: whether connections speak TLS with ``Configuration/serverTLS`` (an
    ///     `https://` peer URL), their client certificates checked against
    ///     ``Configuration/allowedCommonName`` before any frame is read.
    /// - Returns: the bound port.
    /// - Throws: the bind's error, or ``PeerTransportError/shutDown`` after ``shutdown()``.
    public func listen(host: String, port: Int, usesTLS: Bool = false) async throws -> Int {
        guard !usesTLS || configuration.serverTLS != nil else { throw PeerTransportError.noServerTLS }
        guard !state.withLockedValue({ $0.isShutDown }) else { throw PeerTransportError.shutDown }
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(
                .recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 1 << 10, initial: 64 << 10, maximum: 1 << 20)
            )
            .childChannelInitializer { channel in self.initializeInbound(channel, usesTLS: usesTLS) }
            .bind(host: host, port: port)
            .get()
        let isRegistered = state.withLockedValue { state -> Bool in
            guard !state.isShutDown else { return false }
            state.listeners.append(channel)
            return true
        }
        guard isRegistered else {
            try? await channel.close()
            throw PeerTransportError.shutDown
        }
        guard let boundPort = channel.localAddress?.port else {
            try? await channel.close()
            throw PeerTransportError.noBoundPort
        }
        logger.info("listening for peers", metadata: ["address": "\(host):\(boundPort)"])
        return boundPort
    }

    private func initializeInbound(_ channel: any Channel, usesTLS: Bool) -> EventLoopFuture<Void> {
        let key = ObjectIdentifier(channel)
        let isRegistered = state.withLockedValue { state -> Bool in
            guard !state.isShutDown else { return false }
            state.inbound[key] = channel
            return true
        }
        guard isRegistered else { return channel.eventLoop.makeFailedFuture(PeerTransportError.shutDown) }
        channel.closeFuture.whenComplete { _ in
            self.state.withLockedValue { _ = $0.inbound.removeValue(forKey: key) }
        }
        var logger = logger
        logger[metadataKey: "remote"] = "\(channel.remoteAddress.map { "\($0)" } ?? "?")"
        let handler = InboundPeerHandler(
            clusterID: configuration.clusterID, localID: configuration.localID, versions: configuration.protocolVersions,
            admitsSender: configuration.admitsSender, logger: logger, transport: self)
        let maxFrameBytes = configuration.maxFrameBytes
        // A member speaking version 1 only refuses a hello with a range, as builds before ranges do.
        let firstFrameBytes =
            configuration.protocolVersions.upperBound >= 2 ? PeerHello.maxPayloadBytes : PeerHello.versionOnePayloadBytes
        let configuration = self.configuration
        let connectionLogger = logger
        return channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            if usesTLS, let tls = configuration.serverTLS {
                try pipeline.addHandler(NIOSSLServerHandler(context: tls.context))
                if let allowed = configuration.allowedCommonName {
                    try pipeline.addHandler(AllowedCommonNameHandler(allowed: allowed, logger: connectionLogger))
                }
            }
            try pipeline.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: maxFrameBytes, firstFrameBytes: firstFrameBytes)))
            try pipeline.addHandler(handler)
        }
    }

    /// Hands a received frame to the caller.
    func deliver(_ frame: [UInt8], from sender: UInt64) {
        receive(sender, frame)
    }

    /// Adds `count` frames of `bytes` bytes to what was received from `sender`.
    func countReceived(_ count: Int, bytes: Int, from sender: UInt64) {
        inboundCounters.withLockedValue { counters in
            counters.receivedFrames[sender, default: 0] += count
            counters.receivedBytes[sender, default: 0] += bytes
        }
    }

    /// Counts an inbound connection closed for a protocol violation.
    func countRejectedConnection() {
        inboundCounters.withLockedValue { $0.rejectedConnections += 1 }
    }

    /// Whether a refused hello of this kind should be logged at warning level now: at most once
    /// per ``refusalWarningInterval`` (a refused peer reconnects every few seconds).
    func shouldWarn(about kind: RefusalWarning, now: NIODeadline = .now()) -> Bool {
        state.withLockedValue { state in
            if let last = state.lastWarnings[kind], now - last < Self.refusalWarningInterval { return false }
            state.lastWarnings[kind] = now
            return true
        }
    }

    /// The shortest time between two warnings about refused hellos of one kind.
    static let refusalWarningInterval = TimeAmount.seconds(10)

    // MARK: Peers

    /// Adds peer `id` at `host`:`port`, or changes its address; `usesTLS` connects with
    /// ``Configuration/clientTLS`` (an `https://` peer URL).
    ///
    /// Nothing is opened until the first frame is sent, unless ``Configuration/connectsEagerly``
    /// is set. Changing the address of a peer that is
    /// connected, connecting or waiting to reconnect closes that and connects to the new address.
    /// Ignored after ``shutdown()``.
    public func setPeer(_ id: UInt64, host: String, port: Int, usesTLS: Bool = false) {
        let (existing, added) = state.withLockedValue { state -> (PeerLink?, PeerLink?) in
            guard !state.isShutDown else { return (nil, nil) }
            if let link = state.peers[id] { return (link, nil) }
            let link = PeerLink(
                id: id, host: host, port: port, usesTLS: usesTLS, loop: group.next(), configuration: configuration, logger: logger)
            state.peers[id] = link
            return (nil, link)
        }
        existing?.setAddress(host: host, port: port, usesTLS: usesTLS)
        // Connecting before there is anything to send lets the peer know at once that this member
        // is up (see `peerConnected(_:)`): a member that just restarted is reached by its leader
        // within a round trip instead of after the leader's reconnect backoff.
        if configuration.connectsEagerly { added?.connectNow() }
    }

    /// Peer `id` just opened a connection to this member, so it is up: the link to it connects
    /// now instead of at the end of its reconnect backoff.
    func peerConnected(_ id: UInt64) {
        let link = state.withLockedValue { $0.isShutDown ? nil : $0.peers[id] }
        link?.connectNow()
    }

    /// Forgets peer `id`: closes its connection, cancels its reconnects and drops its queued frames.
    /// Later sends to it are dropped as unroutable.
    public func removePeer(_ id: UInt64) {
        let link = state.withLockedValue { $0.peers.removeValue(forKey: id) }
        _ = link?.close()
    }

    // MARK: Sending

    /// Queues `frame` for peer `id` and returns at once; callable from any thread.
    ///
    /// The frame is dropped (and counted) if `id` is not a known peer, if the peer's queue is full,
    /// or after ``shutdown()``. Frames to one peer are written in the order they were sent.
    public func send(_ frame: [UInt8], to id: UInt64) {
        link(for: id, frameCount: 1)?.enqueue(CollectionOfOne(frame))
    }

    /// Queues `frames` for peer `id`, in order, and returns at once; they are written with one flush
    /// when the connection is ready. Frames that do not fit are dropped and counted, as with
    /// ``send(_:to:)-([UInt8],_)``.
    public func send(_ frames: [[UInt8]], to id: UInt64) {
        guard !frames.isEmpty else { return }
        link(for: id, frameCount: frames.count)?.enqueue(frames)
    }

    private func link(for id: UInt64, frameCount: Int) -> PeerLink? {
        state.withLockedValue { state in
            guard !state.isShutDown, let link = state.peers[id] else {
                state.unroutableFrames += frameCount
                return nil
            }
            return link
        }
    }

    /// The peer protocol version spoken on the open connection to peer `id`; 0 while none is
    /// open (or `id` is not a peer), when what is sent must suit any version in common.
    public func protocolVersion(of id: UInt64) -> UInt8 {
        state.withLockedValue { $0.peers[id] }?.protocolVersion ?? 0
    }

    // MARK: Statistics and shutdown

    /// The transport's counters at this moment.
    public var statistics: Statistics {
        let (links, unroutable, inbound) = state.withLockedValue { ($0.peers, $0.unroutableFrames, $0.inbound.count) }
        let counters = inboundCounters.withLockedValue { $0 }
        var statistics = Statistics(
            peers: links.mapValues(\.statistics), receivedFrames: counters.receivedFrames, unroutableFrames: unroutable,
            inboundConnections: inbound, rejectedConnections: counters.rejectedConnections)
        statistics.receivedBytes = counters.receivedBytes
        return statistics
    }

    /// Closes the listeners and every connection, and cancels reconnects; later sends are dropped.
    ///
    /// Returns once the listeners and connections are closed. Calling it again does nothing.
    public func shutdown() async {
        let (listeners, links, inbound) = state.withLockedValue { state in
            state.isShutDown = true
            defer {
                state.listeners = []
                state.peers = [:]
                state.inbound = [:]
            }
            return (state.listeners, Array(state.peers.values), Array(state.inbound.values))
        }
        for listener in listeners { try? await listener.close() }
        for link in links { try? await link.close().get() }
        for channel in inbound { try? await channel.close() }
        if !listeners.isEmpty || !links.isEmpty {
            logger.info("peer transport shut down")
        }
    }
}

/// Errors thrown by ``PeerTransport``.
public enum PeerTransportError: Error, Sendable, Equatable {
    /// The transport was shut down.
    case shutDown
    /// The listener's socket reported no port.
    case noBoundPort
    /// A TLS listener was asked for without ``PeerTransport/Configuration/serverTLS``.
    case noServerTLS
    /// A TLS peer was connected to without ``PeerTransport/Configuration/clientTLS``.
    case noClientTLS
    /// The testing variable of the protocol versions (see
    /// ``PeerTransport/protocolVersions(testingEnvironment:)``) holds no valid range.
    case invalidProtocolVersions(String)
}

/// The handler of an inbound connection: checks the hello, then delivers every frame.
final class InboundPeerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let clusterID: UInt64
    private let localID: UInt64
    private let versions: ClosedRange<UInt8>
    private let admitsSender: @Sendable (UInt64) -> Bool
    private var logger: Logger
    private let transport: PeerTransport
    private var senderID: UInt64?
    /// The protocol version the connection speaks, once the hello is accepted.
    private var version: UInt8 = 0
    private var isClosing = false
    private var uncountedFrames = 0
    private var uncountedBytes = 0

    init(
        clusterID: UInt64, localID: UInt64, versions: ClosedRange<UInt8>, admitsSender: @escaping @Sendable (UInt64) -> Bool,
        logger: Logger, transport: PeerTransport
    ) {
        self.clusterID = clusterID
        self.localID = localID
        self.versions = versions
        self.admitsSender = admitsSender
        self.logger = logger
        self.transport = transport
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !isClosing else { return }
        var frame = Self.unwrapInboundIn(data)
        guard let senderID else {
            acceptHello(frame, context: context)
            return
        }
        if version >= 2, frame.readableBytes == 0 {
            // A round-trip probe: answered at once with an empty frame.
            var pong = context.channel.allocator.buffer(capacity: PeerWire.lengthPrefixBytes)
            PeerWire.writeFrame([], into: &pong)
            context.writeAndFlush(Self.wrapOutboundOut(pong), promise: nil)
            return
        }
        let bytes = frame.readBytes(length: frame.readableBytes)!
        uncountedFrames += 1
        uncountedBytes += PeerWire.lengthPrefixBytes + bytes.count
        transport.deliver(bytes, from: senderID)
    }

    private func acceptHello(_ frame: ByteBuffer, context: ChannelHandlerContext) {
        let hello: PeerHello
        do {
            hello = try PeerHello(parsing: frame)
        } catch {
            reject("rejected peer connection: \(error)", context: context)
            return
        }
        let chosen = PeerHello.negotiate(versions, hello.versions)
        if hello.versions.upperBound >= 2 {
            // A hello with a range is answered, also when refused, so the sender knows why.
            var reply = context.channel.allocator.buffer(capacity: PeerWire.lengthPrefixBytes + PeerHelloReply.payloadBytes)
            PeerWire.writeFrame(PeerHelloReply(versions: versions, chosen: chosen).encoded, into: &reply)
            context.writeAndFlush(Self.wrapOutboundOut(reply), promise: nil)
        }
        guard let chosen else {
            logger[metadataKey: "sender"] = "\(hello.senderID)"
            let level: Logger.Level = transport.shouldWarn(about: .noCommonVersion) ? .error : .debug
            reject(
                "rejected peer connection: it speaks peer protocol versions \(PeerHello.describe(hello.versions)), this member \(PeerHello.describe(versions)): no version in common",
                level: level, context: context)
            return
        }
        guard hello.clusterID == clusterID else {
            logger[metadataKey: "sender"] = "\(hello.senderID)"
            reject(
                "rejected peer connection: it belongs to cluster \(hello.clusterID), this member to cluster \(clusterID)",
                level: .error, context: context)
            return
        }
        logger[metadataKey: "sender"] = "\(hello.senderID)"
        guard hello.senderID != 0, hello.senderID != localID, admitsSender(hello.senderID) else {
            let level: Logger.Level = transport.shouldWarn(about: .unknownSender) ? .warning : .debug
            reject(
                "rejected peer connection: its hello names \(String(hello.senderID, radix: 16)), which is not a member this member knows",
                level: level, context: context)
            return
        }
        senderID = hello.senderID
        version = chosen
        logger.debug("peer connected", metadata: ["version": "\(chosen)"])
        transport.peerConnected(hello.senderID)
    }

    private func reject(_ message: Logger.Message, level: Logger.Level = .warning, context: ChannelHandlerContext) {
        guard !isClosing else { return }
        isClosing = true
        logger.log(level: level, message)
        transport.countRejectedConnection()
        context.close(promise: nil)
    }

    private func countFrames() {
        guard let senderID, uncountedFrames > 0 else { return }
        transport.countReceived(uncountedFrames, bytes: uncountedBytes, from: senderID)
        uncountedFrames = 0
        uncountedBytes = 0
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        countFrames()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        countFrames()
        if let senderID { transport.configuration.peerDisconnected(senderID) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        countFrames()
        if let error = error as? FrameTooLargeError {
            reject("closing peer connection: \(error)", context: context)
        } else if !isClosing {
            logger.debug("peer connection failed", metadata: ["error": "\(error)"])
            isClosing = true
            context.close(promise: nil)
        }
    }
}
