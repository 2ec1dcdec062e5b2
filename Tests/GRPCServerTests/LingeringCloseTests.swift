import NIOCore
import NIOEmbedded
import Testing

@testable import GRPCServer

/// A connection drained by a shutdown stays open for a moment after its calls end (see
/// ``LingeringCloseHandler``); other closes are not delayed.
@Suite("Lingering close")
struct LingeringCloseTests {
    private static func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(LingeringCloseHandler(linger: .seconds(1)))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    @Test("after a shutdown began, a close waits out the linger")
    func shutdownCloseWaits() throws {
        let channel = try Self.channel()
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        let closed = channel.close()
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(900))
        #expect(channel.isActive, "closed before the linger ran out")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(200))
        #expect(!channel.isActive)
        try closed.wait()
    }

    @Test("a second close during the linger goes through at once")
    func secondCloseIsImmediate() throws {
        let channel = try Self.channel()
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        let first = channel.close()
        #expect(channel.isActive)
        try channel.close().wait()
        #expect(!channel.isActive)
        try first.wait()
    }

    @Test("without a shutdown a close is immediate")
    func ordinaryCloseIsImmediate() throws {
        let channel = try Self.channel()
        try channel.close().wait()
        #expect(!channel.isActive)
    }
}
