public import Logging
public import NIOCore
public import NIOSSL

/// The verified certificate of the other end of a TLS connection.
public enum PeerIdentity {
    /// The subject common name of the client certificate the other end of `channel` presented to
    /// a TLS listener that requires (and so verified) one.
    ///
    /// `channel` is a connection, or an HTTP/2 stream whose parent is one. Call it on the
    /// channel's event loop.
    public static func verifiedCommonName(of channel: any Channel) -> String? {
        // An accepted connection's parent is its listener, on another event loop; an HTTP/2
        // stream's parent is its connection, on the same one.
        for candidate in [channel, channel.parent].compactMap({ $0 }) where candidate.eventLoop.inEventLoop {
            if let handler = try? candidate.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self) {
                return handler.peerCertificate.flatMap(commonName(of:))
            }
        }
        return nil
    }

    /// The certificate's subject common name (the last one, if it has several, as Go reads it).
    public static func commonName(of certificate: NIOSSLCertificate) -> String? {
        certificate.subjectName.last { $0.type == .commonName }?.value
    }
}

/// Closes a TLS connection, before any of its data goes further, unless the other end's
/// verified certificate has the allowed common name (`--peer-cert-allowed-cn`).
///
/// Put it right after the `NIOSSLServerHandler`; the check runs on the first data read, which
/// comes after the handshake.
public final class AllowedCommonNameHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer

    private let allowed: String
    private let logger: Logger
    private var isRefused = false

    /// A handler letting through connections whose certificate's CN is `allowed`.
    public init(allowed: String, logger: Logger) {
        self.allowed = allowed
        self.logger = logger
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !isRefused else { return }
        let commonName = PeerIdentity.verifiedCommonName(of: context.channel)
        guard commonName == allowed else {
            isRefused = true
            logger.warning(
                "refused a peer connection: its certificate's common name is not the allowed one",
                metadata: ["tls.cn": "\(commonName ?? "none")", "tls.allowed-cn": "\(allowed)"])
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
    }
}

@available(*, unavailable)
extension AllowedCommonNameHandler: Sendable {}
