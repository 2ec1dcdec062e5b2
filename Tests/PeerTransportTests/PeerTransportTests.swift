import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PeerTransport
import XCTest

final class PeerTransportTests: TransportTestCase {
    func testThreeMembersExchangeFramesInOrder() async throws {
        let members = [try await makeMember(id: 1), try await makeMember(id: 2), try await makeMember(id: 3)]
        connectAll(members)
        let count = 2_000
        for member in members {
            for peer in members where peer.id != member.id {
                // Half one at a time, half in batches, with sizes that vary.
                for sequence in 0..<count / 2 {
                    member.transport.send(makeFrame(sequence: sequence, size: 8 + sequence % 300), to: peer.id)
                }
                for start in stride(from: count / 2, to: count, by: 100) {
                    member.transport.send((start..<start + 100).map { makeFrame(sequence: $0, size: 8 + $0 % 300) }, to: peer.id)
                }
            }
        }
        let delivered = await eventually { members.allSatisfy { $0.inbox.total == 2 * count } }
        XCTAssertTrue(delivered, "received: \(members.map(\.inbox.total))")
        for member in members {
            for peer in members where peer.id != member.id {
                let frames = member.inbox.frames(from: peer.id)
                XCTAssertEqual(frames.map(sequence(of:)), Array(0..<count), "frames from \(peer.id) at \(member.id)")
                XCTAssertEqual(frames, (0..<count).map { makeFrame(sequence: $0, size: 8 + $0 % 300) })
                let stats = member.transport.statistics
                XCTAssertEqual(stats.peers[peer.id]?.sentFrames, count)
                XCTAssertEqual(stats.peers[peer.id]?.droppedFrames, 0)
                XCTAssertEqual(stats.peers[peer.id]?.isConnected, true)
                XCTAssertEqual(stats.peers[peer.id]?.reconnects, 0)
                XCTAssertEqual(stats.receivedFrames[peer.id], count)
            }
            XCTAssertEqual(member.transport.statistics.inboundConnections, 2)
        }
    }

    func testFourMegabyteFrameRoundTrip() async throws {
        let a = try await makeMember(id: 1)
        let b = try await makeMember(id: 2)
        connectAll([a, b])
        var large = [UInt8](repeating: 0, count: 4 << 20)
        var generator = SystemRandomNumberGenerator()
        for index in stride(from: 0, to: large.count, by: 8) {
            withUnsafeBytes(of: generator.next() as UInt64) { bytes in
                for offset in 0..<8 { large[index + offset] = bytes[offset] }
            }
        }
        // A small frame on each side of the large one checks the framing around it.
        a.transport.send([makeFrame(sequence: 1), large, makeFrame(sequence: 2)], to: 2)
        let arrived = await eventually { b.inbox.count(from: 1) == 3 }
        XCTAssertTrue(arrived)
        let received = b.inbox.frames(from: 1)
        XCTAssertEqual(received.count, 3)
        XCTAssertEqual(received.first, makeFrame(sequence: 1))
        XCTAssertTrue(received.count == 3 && received[1] == large, "the 4 MB frame came back different")
        XCTAssertEqual(received.last, makeFrame(sequence: 2))

        b.transport.send(received[1], to: 1)
        let returned = await eventually { a.inbox.count(from: 2) == 1 }
        XCTAssertTrue(returned)
        XCTAssertTrue(a.inbox.frames(from: 2).first == large, "the echoed 4 MB frame came back different")
    }

    func testFramesQueuedWhilePeerIsDownAreDeliveredOnceItStarts() async throws {
        let port = try await freePort(group: group)
        let a = try await makeMember(id: 1)
        a.transport.setPeer(2, host: "127.0.0.1", port: port)
        for sequence in 0..<50 { a.transport.send(makeFrame(sequence: sequence), to: 2) }

        // Let a few connection attempts fail.
        let retried = await eventually { (a.transport.statistics.peers[2]?.reconnects ?? 0) >= 2 }
        XCTAssertTrue(retried, "no reconnect attempts: \(String(describing: a.transport.statistics.peers[2]))")
        let waiting = a.transport.statistics.peers[2]
        XCTAssertEqual(waiting?.isConnected, false)
        XCTAssertEqual(waiting?.queuedFrames, 50)
        XCTAssertEqual(waiting?.queuedBytes, 50 * 104)
        XCTAssertEqual(waiting?.sentFrames, 0)

        // The peer starts on the address a was given.
        let b = try await makeMember(id: 2, listen: false)
        let bound = try await b.transport.listen(host: "127.0.0.1", port: port)
        XCTAssertEqual(bound, port)
        for sequence in 50..<60 { a.transport.send(makeFrame(sequence: sequence), to: 2) }
        let delivered = await eventually { b.inbox.count(from: 1) == 60 }
        XCTAssertTrue(delivered, "delivered \(b.inbox.count(from: 1)) of 60")
        XCTAssertEqual(b.inbox.frames(from: 1).map(sequence(of:)), Array(0..<60))
        let stats = a.transport.statistics.peers[2]
        XCTAssertEqual(stats?.isConnected, true)
        XCTAssertEqual(stats?.queuedFrames, 0)
        XCTAssertEqual(stats?.queuedBytes, 0)
        XCTAssertEqual(stats?.sentFrames, 60)
    }

    func testReconnectsBackOffExponentiallyUpToTheMaximum() async throws {
        let port = try await freePort(group: group)
        let a = try await makeMember(id: 1) { $0.reconnectDelay = (.milliseconds(10), .milliseconds(40)) }
        a.transport.setPeer(2, host: "127.0.0.1", port: port)
        a.transport.send(makeFrame(sequence: 0), to: 2)
        try await Task.sleep(for: .seconds(1))
        // Delays of 10, 20, 40, 40, ... ms make about 25 attempts in a second; without backoff it
        // would be about 100, and without the maximum only 6.
        let reconnects = a.transport.statistics.peers[2]?.reconnects ?? 0
        XCTAssertGreaterThanOrEqual(reconnects, 10)
        XCTAssertLessThanOrEqual(reconnects, 40)
    }

    func testPeerRestartReconnectsAndDeliversLaterFrames() async throws {
        let a = try await makeMember(id: 1)
        var b = try await makeMember(id: 2)
        connectAll([a, b])
        a.transport.send(makeFrame(sequence: 0), to: 2)
        let first = await eventually { b.inbox.count(from: 1) == 1 }
        XCTAssertTrue(first)

        // b goes away; a notices the connection closed and keeps retrying.
        await b.transport.shutdown()
        let noticed = await eventually { a.transport.statistics.peers[2]?.isConnected == false }
        XCTAssertTrue(noticed)
        for sequence in 1..<20 { a.transport.send(makeFrame(sequence: sequence), to: 2) }

        // b comes back on the same port.
        let port = b.port
        b = try await makeMember(id: 2, listen: false)
        _ = try await b.transport.listen(host: "127.0.0.1", port: port)
        let delivered = await eventually { b.inbox.count(from: 1) == 19 }
        XCTAssertTrue(delivered, "delivered \(b.inbox.count(from: 1)) of 19 after the restart")
        XCTAssertEqual(b.inbox.frames(from: 1).map(sequence(of:)), Array(1..<20))
        XCTAssertGreaterThanOrEqual(a.transport.statistics.peers[2]?.reconnects ?? 0, 1)
    }

    func testQueueOverflowDropsNewestFramesAndCountsThem() async throws {
        let port = try await freePort(group: group)
        // Room for exactly ten 100-byte frames (104 bytes each on the wire).
        let a = try await makeMember(id: 1) { $0.maxQueuedBytesPerPeer = 10 * 104 }
        a.transport.setPeer(2, host: "127.0.0.1", port: port)
        for sequence in 0..<25 { a.transport.send(makeFrame(sequence: sequence), to: 2) }
        a.transport.send((25..<30).map { makeFrame(sequence: $0) }, to: 2)
        var stats = a.transport.statistics.peers[2]
        XCTAssertEqual(stats?.droppedFrames, 20)
        XCTAssertEqual(stats?.queuedFrames, 10)
        XCTAssertEqual(stats?.queuedBytes, 10 * 104)

        // The oldest ten are the ones kept.
        let b = try await makeMember(id: 2, listen: false)
        _ = try await b.transport.listen(host: "127.0.0.1", port: port)
        let delivered = await eventually { b.inbox.count(from: 1) == 10 }
        XCTAssertTrue(delivered)
        try await Task.sleep(for: .milliseconds(50))
        XCTAssertEqual(b.inbox.frames(from: 1).map(sequence(of:)), Array(0..<10))
        stats = a.transport.statistics.peers[2]
        XCTAssertEqual(stats?.sentFrames, 10)
        XCTAssertEqual(stats?.droppedFrames, 20)
        XCTAssertEqual(stats?.queuedBytes, 0)
    }

    func testUnwritableConnectionKeepsFramesQueuedWithinTheBound() async throws {
        // A "peer" that accepts but does not read until told to.
        let accepted = NIOLockedValueBox<[any Channel]>([])
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_rcvbuf), value: 64 << 10)  // no receive-buffer autotuning
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { channel in
                accepted.withLockedValue { $0.append(channel) }
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { server.close(promise: nil) }
        let bound = 1 << 20
        let a = try await makeMember(id: 1) { $0.maxQueuedBytesPerPeer = bound }
        a.transport.setPeer(2, host: "127.0.0.1", port: server.localAddress!.port!)

        let total = 480
        let frameBytes = 64 << 10
        for sequence in 0..<total { a.transport.send(makeFrame(sequence: sequence, size: frameBytes), to: 2) }
        // Once the socket and the channel's buffer are full, writing stops: the rest waits in the
        // queue, up to the bound, or is dropped.
        var stalled = a.transport.statistics.peers[2]!
        var stableSince = ContinuousClock.now
        let deadline = ContinuousClock.now + .seconds(2)
        while ContinuousClock.now - stableSince < .milliseconds(100), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
            let now = a.transport.statistics.peers[2]!
            if now != stalled { (stalled, stableSince) = (now, ContinuousClock.now) }
        }
        print("stalled writer: \(stalled)")
        XCTAssertTrue(stalled.isConnected, "\(stalled)")
        XCTAssertEqual(stalled.sentFrames + stalled.droppedFrames + stalled.queuedFrames, total)
        XCTAssertGreaterThan(stalled.droppedFrames, 0, "\(stalled)")
        XCTAssertGreaterThan(stalled.queuedFrames, 0, "nothing kept queued while the channel was not writable: \(stalled)")
        XCTAssertLessThanOrEqual(stalled.queuedBytes, bound)
        XCTAssertLessThan(stalled.sentFrames, total)

        // The reader wakes up: the queue drains.
        for channel in accepted.withLockedValue({ $0 }) {
            channel.pipeline.addHandler(DiscardingHandler()).whenSuccess { _ = channel.setOption(.autoRead, value: true) }
        }
        let drained = await eventually { a.transport.statistics.peers[2]!.queuedFrames == 0 }
        let final = a.transport.statistics.peers[2]!
        XCTAssertTrue(drained, "\(final)")
        XCTAssertEqual(final.sentFrames + final.droppedFrames, total)
        XCTAssertEqual(final.droppedFrames, stalled.droppedFrames)
    }

    func testWrongClusterIsRejectedAndLogged() async throws {
        let b = try await makeMember(id: 2, cluster: 7)
        let stranger = try await makeMember(id: 9, cluster: 8)
        let friend = try await makeMember(id: 3, cluster: 7)
        stranger.transport.setPeer(2, host: "127.0.0.1", port: b.port)
        friend.transport.setPeer(2, host: "127.0.0.1", port: b.port)
        stranger.transport.send(makeFrame(sequence: 1), to: 2)
        friend.transport.send(makeFrame(sequence: 1), to: 2)

        let rejected = await eventually { b.transport.statistics.rejectedConnections >= 1 && b.inbox.count(from: 3) == 1 }
        XCTAssertTrue(rejected)
        XCTAssertEqual(b.inbox.count(from: 9), 0)
        XCTAssertTrue(
            b.logMessages.contains { $0.contains("cluster 8") && $0.contains("cluster 7") },
            "no log message names the clusters: \(b.logMessages)")
        // The stranger's connection was closed and it keeps retrying (with backoff); the friend's stays open.
        let retried = await eventually { (stranger.transport.statistics.peers[2]?.reconnects ?? 0) >= 1 }
        XCTAssertTrue(retried)
        friend.transport.send(makeFrame(sequence: 2), to: 2)
        let more = await eventually { b.inbox.count(from: 3) == 2 }
        XCTAssertTrue(more)
        XCTAssertEqual(b.inbox.count(from: 9), 0)
        XCTAssertEqual(friend.transport.statistics.peers[2]?.reconnects, 0)
    }

    func testOversizedFrameClosesOnlyThatConnection() async throws {
        let b = try await makeMember(id: 2) { $0.maxFrameBytes = 1_000 }
        let a = try await makeMember(id: 1)
        let c = try await makeMember(id: 3)
        a.transport.setPeer(2, host: "127.0.0.1", port: b.port)
        c.transport.setPeer(2, host: "127.0.0.1", port: b.port)
        a.transport.send(makeFrame(sequence: 0, size: 1_000), to: 2)
        c.transport.send(makeFrame(sequence: 0), to: 2)
        let connected = await eventually { b.inbox.count(from: 1) == 1 && b.inbox.count(from: 3) == 1 }
        XCTAssertTrue(connected)
        XCTAssertEqual(b.transport.statistics.inboundConnections, 2)

        a.transport.send([makeFrame(sequence: 1, size: 1_001), makeFrame(sequence: 2)], to: 2)
        let closed = await eventually { b.transport.statistics.rejectedConnections == 1 }
        XCTAssertTrue(closed)
        XCTAssertTrue(b.logMessages.contains { $0.contains("1001 bytes exceeds the limit of 1000") }, "\(b.logMessages)")

        // c's connection is untouched; a reconnects and its later frames arrive.
        c.transport.send(makeFrame(sequence: 1), to: 2)
        let reconnected = await eventually { (a.transport.statistics.peers[2]?.reconnects ?? 0) >= 1 }
        XCTAssertTrue(reconnected)
        a.transport.send(makeFrame(sequence: 3), to: 2)
        let delivered = await eventually { b.inbox.count(from: 1) == 2 && b.inbox.count(from: 3) == 2 }
        XCTAssertTrue(delivered)
        XCTAssertEqual(b.inbox.frames(from: 1).map(sequence(of:)), [0, 3])
        XCTAssertEqual(b.inbox.frames(from: 3).map(sequence(of:)), [0, 1])
        XCTAssertEqual(c.transport.statistics.peers[2]?.reconnects, 0)
    }

    func testMalformedHellosCloseOnlyTheirConnections() async throws {
        let b = try await makeMember(id: 2)
        let a = try await makeMember(id: 1)
        a.transport.setPeer(2, host: "127.0.0.1", port: b.port)
        a.transport.send(makeFrame(sequence: 0), to: 2)
        let connected = await eventually { b.inbox.count(from: 1) == 1 }
        XCTAssertTrue(connected)

        var badVersion: [UInt8] = [0, 0, 0, 21] + Array("SHPT".utf8) + [99]
        badVersion += [UInt8](repeating: 0, count: 7) + [7] + [UInt8](repeating: 0, count: 7) + [5]
        let garbage: [[UInt8]] = [
            Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8),  // a length of 1.2 GB: not a hello
            [0, 0, 0, 21] + Array("XXXX".utf8) + [UInt8](repeating: 1, count: 17),  // wrong magic
            [0, 0, 0, 3, 1, 2, 3],  // too short for a hello
            badVersion,
        ]
        for (index, bytes) in garbage.enumerated() {
            let channel = try await rawConnection(to: b.port)
            try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
            let closed = await eventually { !channel.isActive }
            XCTAssertTrue(closed, "connection \(index) left open")
            XCTAssertEqual(b.transport.statistics.rejectedConnections, index + 1)
        }
        XCTAssertTrue(b.logMessages.contains { $0.contains("version 99 is not supported") }, "\(b.logMessages)")
        XCTAssertTrue(b.logMessages.contains { $0.contains("not a Statehouse peer") }, "\(b.logMessages)")

        a.transport.send(makeFrame(sequence: 1), to: 2)
        let delivered = await eventually { b.inbox.count(from: 1) == 2 }
        XCTAssertTrue(delivered)
        XCTAssertEqual(a.transport.statistics.peers[2]?.reconnects, 0)
        XCTAssertEqual(b.transport.statistics.receivedFrames, [1: 2])
    }

    func testRemovePeerClosesItsConnectionAndDropsLaterFrames() async throws {
        let a = try await makeMember(id: 1)
        let b = try await makeMember(id: 2)
        connectAll([a, b])
        a.transport.send(makeFrame(sequence: 0), to: 2)
        let delivered = await eventually { b.inbox.count(from: 1) == 1 }
        XCTAssertTrue(delivered)
        XCTAssertEqual(b.transport.statistics.inboundConnections, 1)

        a.transport.removePeer(2)
        XCTAssertNil(a.transport.statistics.peers[2])
        let closed = await eventually { b.transport.statistics.inboundConnections == 0 }
        XCTAssertTrue(closed, "the removed peer's connection stayed open")
        a.transport.send(makeFrame(sequence: 1), to: 2)
        a.transport.send([makeFrame(sequence: 2), makeFrame(sequence: 3)], to: 2)
        XCTAssertEqual(a.transport.statistics.unroutableFrames, 3)
        a.transport.send(makeFrame(sequence: 4), to: 99)
        XCTAssertEqual(a.transport.statistics.unroutableFrames, 4)
        try await Task.sleep(for: .milliseconds(100))
        XCTAssertEqual(b.inbox.count(from: 1), 1)
        XCTAssertEqual(b.transport.statistics.inboundConnections, 0, "a reconnected to a removed peer")

        // Adding it back works as a new peer.
        a.transport.setPeer(2, host: "127.0.0.1", port: b.port)
        a.transport.send(makeFrame(sequence: 5), to: 2)
        let again = await eventually { b.inbox.count(from: 1) == 2 }
        XCTAssertTrue(again)
        XCTAssertEqual(b.inbox.frames(from: 1).map(sequence(of:)), [0, 5])
    }

    func testSetPeerWithANewAddressMovesTheConnection() async throws {
        let a = try await makeMember(id: 1)
        let oldB = try await makeMember(id: 2)
        let newB = try await makeMember(id: 2)
        a.transport.setPeer(2, host: "127.0.0.1", port: oldB.port)
        a.transport.send(makeFrame(sequence: 0), to: 2)
        let first = await eventually { oldB.inbox.count(from: 1) == 1 }
        XCTAssertTrue(first)

        a.transport.setPeer(2, host: "127.0.0.1", port: oldB.port)  // unchanged: nothing happens
        a.transport.setPeer(2, host: "127.0.0.1", port: newB.port)
        a.transport.send(makeFrame(sequence: 1), to: 2)
        let moved = await eventually { newB.inbox.count(from: 1) == 1 && oldB.transport.statistics.inboundConnections == 0 }
        XCTAssertTrue(moved)
        XCTAssertEqual(oldB.inbox.count(from: 1), 1)
        XCTAssertEqual(newB.inbox.frames(from: 1).map(sequence(of:)), [1])
    }

    func testShutdownClosesEverythingAndDropsLaterSends() async throws {
        let a = try await makeMember(id: 1)
        let b = try await makeMember(id: 2)
        let downPort = try await freePort(group: group)
        connectAll([a, b])
        a.transport.setPeer(3, host: "127.0.0.1", port: downPort)  // backing off when shut down
        a.transport.send(makeFrame(sequence: 0), to: 2)
        a.transport.send(makeFrame(sequence: 0), to: 3)
        b.transport.send(makeFrame(sequence: 0), to: 1)
        let exchanged = await eventually { b.inbox.count(from: 1) == 1 && a.inbox.count(from: 2) == 1 }
        XCTAssertTrue(exchanged)

        let started = ContinuousClock.now
        await a.transport.shutdown()
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(1))
        XCTAssertEqual(a.transport.statistics.peers.count, 0)
        XCTAssertEqual(a.transport.statistics.inboundConnections, 0)

        // Both of a's connections are gone, and its listener too.
        let closed = await eventually {
            b.transport.statistics.inboundConnections == 0 && b.transport.statistics.peers[1]?.isConnected == false
        }
        XCTAssertTrue(closed)
        do {
            _ = try await rawConnection(to: a.port)
            XCTFail("a's listener still accepts connections")
        } catch {}

        a.transport.send(makeFrame(sequence: 1), to: 2)
        a.transport.setPeer(4, host: "127.0.0.1", port: b.port)
        a.transport.send(makeFrame(sequence: 1), to: 4)
        XCTAssertEqual(a.transport.statistics.unroutableFrames, 2)
        b.transport.send(makeFrame(sequence: 1), to: 1)
        try await Task.sleep(for: .milliseconds(100))
        XCTAssertEqual(b.inbox.count(from: 1), 1)
        XCTAssertEqual(a.inbox.count(from: 2), 1)
        do {
            _ = try await a.transport.listen(host: "127.0.0.1", port: 0)
            XCTFail("listen after shutdown succeeded")
        } catch let error as PeerTransportError {
            XCTAssertEqual(error, .shutDown)
        }
        await a.transport.shutdown()  // a second time does nothing
    }

    func testThroughputSmoke() async throws {
        let a = try await makeMember(id: 1)
        let b = try await makeMember(id: 2)
        connectAll([a, b])
        a.transport.send(makeFrame(sequence: 0), to: 2)
        let warm = await eventually { b.inbox.count(from: 1) == 1 }
        XCTAssertTrue(warm)

        let count = 50_000
        let frame = makeFrame(sequence: 1)
        let started = ContinuousClock.now
        for _ in 0..<count { a.transport.send(frame, to: 2) }
        let delivered = await eventually(timeout: .seconds(20)) { b.inbox.count(from: 1) == count + 1 }
        let elapsed = ContinuousClock.now - started
        XCTAssertTrue(delivered, "delivered \(b.inbox.count(from: 1) - 1) of \(count)")
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("PeerTransport throughput: \(count) frames of \(frame.count) bytes in \(elapsed): \(Int(Double(count) / seconds)) frames/s")
        XCTAssertEqual(a.transport.statistics.peers[2]?.droppedFrames, 0)
    }
}

/// Reads and forgets everything.
final class DiscardingHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}
