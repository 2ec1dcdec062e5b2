import GRPCServer
import NIOCore
import ServerConfiguration

extension GRPCServerConfiguration {
    /// Takes the member's client limits (`--max-concurrent-streams`, the keepalive flags,
    /// `--max-connections`, `--connection-idle-timeout`). Each connection may hold partly
    /// received messages of up to 16 times ``maxReceiveMessageBytes`` over all its streams (as
    /// many largest requests uploaded at once on one connection, as etcd's clients multiplex
    /// calls), so set that first.
    mutating func apply(_ limits: ClientLimits) {
        maxConcurrentStreams = limits.maxConcurrentStreams
        maxConnections = limits.maxConnections
        idleTimeout = limits.idleTimeoutMilliseconds == 0 ? nil : .milliseconds(limits.idleTimeoutMilliseconds)
        keepaliveMinTime = .milliseconds(limits.keepaliveMinTimeMilliseconds)
        keepaliveInterval = .milliseconds(limits.keepaliveIntervalMilliseconds)
        keepaliveTimeout = .milliseconds(limits.keepaliveTimeoutMilliseconds)
        maxConnectionBufferedBytes = 16 * maxReceiveMessageBytes
    }
}
