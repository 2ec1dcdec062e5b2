import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PeerTransport
import Testing

@Suite("Peer transport", .serialized)
struct PeerTransportTests {
    @Test("Three members exchange frames in order")
    func threeMembersExchangeFramesInOrder() async throws {
        try await withTransports { harness in
            let members = [try await harness.makeMember(id: 1), try await harness.makeMember(id: 2), try await harness.makeMember(id: 3)]
            harness.connectAll(members)
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
            #expect(delivered, "received: \(members.map(\.inbox.total))")
            for member in members {
                for peer in members where peer.id != member.id {
                    let frames = member.inbox.frames(from: peer.id)
                    #expect(frames.map(sequence(of:)) == Array(0..<count), "frames from \(peer.id) at \(member.id)")
                    #expect(frames == (0..<count).map { makeFrame(sequence: $0, size: 8 + $0 % 300) })
                    let stats = member.transport.statistics
                    #expect(stats.peers[peer.id]?.sentFrames == count)
                    #expect(stats.peers[peer.id]?.droppedFrames == 0)
                    #expect(stats.peers[peer.id]?.isConnected == true)
                    #expect(stats.peers[peer.id]?.reconnects == 0)
                    #expect(stats.receivedFrames[peer.id] == count)
                }
                #expect(member.transport.statistics.inboundConnections == 2)
            }
        }
    }

    @Test("A four-megabyte frame round-trips")
    func fourMegabyteFrameRoundTrip() async throws {
        try await withTransports { harness in
            let a = try await harness.makeMember(id: 1)
            let b = try await harness.makeMember(id: 2)
            harness.connectAll([a, b])
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
            #expect(arrived)
            let received = b.inbox.frames(from: 1)
            #expect(received.count == 3)
            #expect(received.first == makeFrame(sequence: 1))
            #expect(received.count == 3 && received[1] == large, "the 4 MB frame came back different")
            #expect(received.last == makeFrame(sequence: 2))

            b.transport.send(received[1], to: 1)
            let returned = await eventually { a.inbox.count(from: 2) == 1 }
            #expect(returned)
            #expect(a.inbox.frames(from: 2).first == large, "the echoed 4 MB frame came back different")
        }
    }

    @Test("Frames queued while a peer is down are delivered once it starts")
    func framesQueuedWhilePeerIsDownAreDeliveredOnceItStarts() async throws {
        try await withTransports { harness in
            let port = try await freePort(group: harness.group)
            let a = try await harness.makeMember(id: 1)
            a.transport.setPeer(2, host: "127.0.0.1", port: port)
            for sequence in 0..<50 { a.transport.send(makeFrame(sequence: sequence), to: 2) }

            // Let a few connection attempts fail.
            let retried = await eventually { (a.transport.statistics.peers[2]?.reconnects ?? 0) >= 2 }
            #expect(retried, "no reconnect attempts: \(String(describing: a.transport.statistics.peers[2]))")
            let waiting = a.transport.statistics.peers[2]
            #expect(waiting?.isConnected == false)
            #expect(waiting?.queuedFrames == 50)
            #expect(waiting?.queuedBytes == 50 * 104)
            #expect(waiting?.sentFrames == 0)

            // The peer starts on the address a was given.
            let b = try await harness.makeMember(id: 2, listen: false)
            let bound = try await b.transport.listen(host: "127.0.0.1", port: port)
            #expect(bound == port)
            for sequence in 50..<60 { a.transport.send(makeFrame(sequence: sequence), to: 2) }
            let delivered = await eventually { b.inbox.count(from: 1) == 60 }
            #expect(delivered, "delivered \(b.inbox.count(from: 1)) of 60")
            #expect(b.inbox.frames(from: 1).map(sequence(of:)) == Array(0..<60))
            let stats = a.transport.statistics.peers[2]
            #expect(stats?.isConnected == true)
            #expect(stats?.queuedFrames == 0)
            #expect(stats?.queuedBytes == 0)
            #expect(stats?.sentFrames == 60)
        }
    }

    @Test("Reconnects back off exponentially up to the maximum")
    func reconnectsBackOffExponentiallyUpToTheMaximum() async throws {
        try await withTransports { harness in
            let port = try await freePort(group: harness.group)
            let a = try await harness.makeMember(id: 1) { $0.reconnectDelay = (.milliseconds(10), .milliseconds(40)) }
            a.transport.setPeer(2, host: "127.0.0.1", port: port)
            a.transport.send(makeFrame(sequence: 0), to: 2)
            try await Task.sleep(for: .seconds(1))
            // Delays of 10, 20, 40, 40, ... ms make about 25 attempts in a second; without backoff it
            // would be about 100, and without the maximum only 6.
            let reconnects = a.transport.statistics.peers[2]?.reconnects ?? 0
            #expect(reconnects >= 10)
            #expect(reconnects <= 40)
        }
    }

    @Test("After a peer restarts, the transport reconnects and delivers later frames")
    func peerRestartReconnectsAndDeliversLaterFrames() async throws {
        try await withTransports { harness in
            let a = try await harness.makeMember(id: 1)
            var b = try await harness.makeMember(id: 2)
            harness.connectAll([a, b])
            a.transport.send(makeFrame(sequence: 0), to: 2)
            let first = await eventually { b.inbox.count(from: 1) == 1 }
            #expect(first)

            // b goes away; a notices the connection closed and keeps retrying.
            await b.transport.shutdown()
            let noticed = await eventually { a.transport.statistics.peers[2]?.isConnected == false }
            #expect(noticed)
            for sequence in 1..<20 { a.transport.send(makeFrame(sequence: sequence), to: 2) }

            // b comes back on the same port.
            let port = b.port
            b = try await harness.makeMember(id: 2, listen: false)
            _ = try await b.transport.listen(host: "127.0.0.1", port: port)
            let delivered = await eventually { b.inbox.count(from: 1) == 19 }
            #expect(delivered, "delivered \(b.inbox.count(from: 1)) of 19 after the restart")
            #expect(b.inbox.frames(from: 1).map(sequence(of:)) == Array(1..<20))
            #expect(a.transport.statistics.peers[2]?.reconnects ?? 0 >= 1)
        }
    }

    @Test("A peer that connects is reconnected to at once, however long the backoff has grown")
    func peerThatConnectsIsReconnectedToAtOnce() async throws {
        try await withTransports { harness in
            let port = try await freePort(group: harness.group)
            // With one-minute backoffs, a's link to b would wait a minute after its first attempt.
            // Both connect to a peer as soon as it is added (as the server configures them).
            let a = try await harness.makeMember(id: 1) {
                $0.reconnectDelay = (.seconds(60), .seconds(60))
                $0.connectsEagerly = true
            }
            a.transport.setPeer(2, host: "127.0.0.1", port: port)
            // The attempt made when the peer was added fails: nothing listens on the port yet.
            let failed = await eventually { a.logMessages.contains("connect failed") }
            #expect(failed)

            // b starts and adds a as a peer; it connects before it has anything to send, and a,
            // told by b's hello that b is up, connects back without waiting out its backoff.
            let b = try await harness.makeMember(id: 2, listen: false) { $0.connectsEagerly = true }
            _ = try await b.transport.listen(host: "127.0.0.1", port: port)
            b.transport.setPeer(1, host: "127.0.0.1", port: a.port)
            a.transport.send(makeFrame(sequence: 7), to: 2)
            let delivered = await eventually(timeout: .seconds(20)) { b.inbox.count(from: 1) == 1 }
            #expect(delivered)
            #expect(a.transport.statistics.peers[2]?.reconnects == 1)
        }
    }

    @Test("Queue overflow drops the newest frames and counts them")
    func queueOverflowDropsNewestFramesAndCountsThem() async throws {
        try await withTransports { harness in
            let port = try await freePort(group: harness.group)
            // Room for exactly ten 100-byte frames (104 bytes each on the wire).
            let a = try await harness.makeMember(id: 1) { $0.maxQueuedBytesPerPeer = 10 * 104 }
            a.transport.setPeer(2, host: "127.0.0.1", port: port)
            for sequence in 0..<25 { a.transport.send(makeFrame(sequence: sequence), to: 2) }
            a.transport.send((25..<30).map { makeFrame(sequence: $0) }, to: 2)
            var stats = a.transport.statistics.peers[2]
            #expect(stats?.droppedFrames == 20)
            #expect(stats?.queuedFrames == 10)
            #expect(stats?.queuedBytes == 10 * 104)

            // The oldest ten are the ones kept.
            let b = try await harness.makeMember(id: 2, listen: false)
            _ = try await b.transport.listen(host: "127.0.0.1", port: port)
            let delivered = await eventually { b.inbox.count(from: 1) == 10 }
            #expect(delivered)
            try await Task.sleep(for: .milliseconds(50))
            #expect(b.inbox.frames(from: 1).map(sequence(of:)) == Array(0..<10))
            stats = a.transport.statistics.peers[2]
            #expect(stats?.sentFrames == 10)
            #expect(stats?.droppedFrames == 20)
            #expect(stats?.queuedBytes == 0)
        }
    }

    @Test("An unwritable connection keeps frames queued within the bound")
    func unwritableConnectionKeepsFramesQueuedWithinTheBound() async throws {
        try await withTransports { harness in
            // A "peer" that accepts but does not read until told to.
            let accepted = NIOLockedValueBox<[any Channel]>([])
            let server = try await ServerBootstrap(group: harness.group)
                .serverChannelOption(.socketOption(.so_rcvbuf), value: 64 << 10)  // no receive-buffer autotuning
                .childChannelOption(.autoRead, value: false)
                .childChannelInitializer { channel in
                    accepted.withLockedValue { $0.append(channel) }
                    return channel.eventLoop.makeSucceededVoidFuture()
                }
                .bind(host: "127.0.0.1", port: 0).get()
            defer { server.close(promise: nil) }
            let bound = 1 << 20
            let a = try await harness.makeMember(id: 1) { $0.maxQueuedBytesPerPeer = bound }
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
            #expect(stalled.isConnected, "\(stalled)")
            #expect(stalled.sentFrames + stalled.droppedFrames + stalled.queuedFrames == total)
            #expect(stalled.droppedFrames > 0, "\(stalled)")
            #expect(stalled.queuedFrames > 0, "nothing kept queued while the channel was not writable: \(stalled)")
            #expect(stalled.queuedBytes <= bound)
            #expect(stalled.sentFrames < total)

            // The reader wakes up: the queue drains.
            for channel in accepted.withLockedValue({ $0 }) {
                channel.pipeline.addHandler(DiscardingHandler()).whenSuccess { _ = channel.setOption(.autoRead, value: true) }
            }
            let drained = await eventually { a.transport.statistics.peers[2]!.queuedFrames == 0 }
            let final = a.transport.statistics.peers[2]!
            #expect(drained, "\(final)")
            #expect(final.sentFrames + final.droppedFrames == total)
            #expect(final.droppedFrames == stalled.droppedFrames)
        }
    }

    @Test("A wrong cluster is rejected and logged")
    func wrongClusterIsRejectedAndLogged() async throws {
        try await withTransports { harness in
            let b = try await harness.makeMember(id: 2, cluster: 7)
            let stranger = try await harness.makeMember(id: 9, cluster: 8)
            let friend = try await harness.makeMember(id: 3, cluster: 7)
            stranger.transport.setPeer(2, host: "127.0.0.1", port: b.port)
            friend.transport.setPeer(2, host: "127.0.0.1", port: b.port)
            stranger.transport.send(makeFrame(sequence: 1), to: 2)
            friend.transport.send(makeFrame(sequence: 1), to: 2)

            let rejected = await eventually { b.transport.statistics.rejectedConnections >= 1 && b.inbox.count(from: 3) == 1 }
            #expect(rejected)
            #expect(b.inbox.count(from: 9) == 0)
            #expect(
                b.logMessages.contains { $0.contains("cluster 8") && $0.contains("cluster 7") },
                "no log message names the clusters: \(b.logMessages)")
            // The stranger's connection was closed and it keeps retrying (with backoff); the friend's stays open.
            let retried = await eventually { (stranger.transport.statistics.peers[2]?.reconnects ?? 0) >= 1 }
            #expect(retried)
            friend.transport.send(makeFrame(sequence: 2), to: 2)
            let more = await eventually { b.inbox.count(from: 3) == 2 }
            #expect(more)
            #expect(b.inbox.count(from: 9) == 0)
            #expect(friend.transport.statistics.peers[2]?.reconnects == 0)
        }
    }

    @Test("A hello naming a sender that is not admitted, this member itself or 0 is rejected; admitted senders are delivered")
    func unadmittedSenderIsRejected() async throws {
        try await withTransports { harness in
            let b = try await harness.makeMember(id: 2) { $0.admitsSender = { $0 == 1 || $0 == 3 || $0 == 2 || $0 == 0 } }
            let friend = try await harness.makeMember(id: 1)
            let stranger = try await harness.makeMember(id: 9)
            friend.transport.setPeer(2, host: "127.0.0.1", port: b.port)
            stranger.transport.setPeer(2, host: "127.0.0.1", port: b.port)
            friend.transport.send(makeFrame(sequence: 1), to: 2)
            stranger.transport.send(makeFrame(sequence: 1), to: 2)
            let rejected = await eventually { b.transport.statistics.rejectedConnections >= 1 && b.inbox.count(from: 1) == 1 }
            #expect(rejected)
            #expect(b.inbox.count(from: 9) == 0)
            #expect(b.logMessages.contains { $0.contains("names 9, which is not a member") }, "\(b.logMessages)")

            // Hellos naming the member itself or 0 are refused even when the check would admit them.
            for sender: UInt64 in [2, 0] {
                let before = b.transport.statistics.rejectedConnections
                let channel = try await harness.rawConnection(to: b.port)
                var hello: [UInt8] = [0, 0, 0, 21] + Array("SHPT".utf8) + [1]
                for shift in stride(from: 56, through: 0, by: -8) { hello.append(UInt8(truncatingIfNeeded: UInt64(7) >> UInt64(shift))) }
                for shift in stride(from: 56, through: 0, by: -8) { hello.append(UInt8(truncatingIfNeeded: sender >> UInt64(shift))) }
                try await channel.writeAndFlush(ByteBuffer(bytes: hello + [0, 0, 0, 8] + makeFrame(sequence: 5, size: 8)))
                let closed = await eventually { !channel.isActive }
                #expect(closed, "a hello naming \(sender) was accepted")
                // The stranger's reconnects are rejected meanwhile too.
                #expect(b.transport.statistics.rejectedConnections >= before + 1)
            }
            #expect(b.inbox.count(from: 2) == 0 && b.inbox.count(from: 0) == 0)
            // A refused peer reconnects every few seconds: only the first refusal is a warning.
            let retried = await eventually { (stranger.transport.statistics.peers[2]?.reconnects ?? 0) >= 2 }
            #expect(retried)
            let warnings = b.logs.withLockedValue { $0.filter { $0.level == .warning && $0.message.contains("not a member") }.count }
            #expect(warnings == 1)
            friend.transport.send(makeFrame(sequence: 2), to: 2)
            let delivered = await eventually { b.inbox.count(from: 1) == 2 }
            #expect(delivered)
        }
    }

    @Test("An oversized frame closes only that connection")
    func oversizedFrameClosesOnlyThatConnection() async throws {
        try await withTransports { harness in
            let b = try await harness.makeMember(id: 2) { $0.maxFrameBytes = 1_000 }
            let a = try await harness.makeMember(id: 1)
            let c = try await harness.makeMember(id: 3)
            a.transport.setPeer(2, host: "127.0.0.1", port: b.port)
            c.transport.setPeer(2, host: "127.0.0.1", port: b.port)
            a.transport.send(makeFrame(sequence: 0, size: 1_000), to: 2)
            c.transport.send(makeFrame(sequence: 0), to: 2)
            let connected = await eventually { b.inbox.count(from: 1) == 1 && b.inbox.count(from: 3) == 1 }
            #expect(connected)
            #expect(b.transport.statistics.inboundConnections == 2)

            a.transport.send([makeFrame(sequence: 1, size: 1_001), makeFrame(sequence: 2)], to: 2)
            let closed = await eventually { b.transport.statistics.rejectedConnections == 1 }
            #expect(closed)
            #expect(b.logMessages.contains { $0.contains("1001 bytes exceeds the limit of 1000") }, "\(b.logMessages)")

            // c's connection is untouched; a reconnects and its later frames arrive.
            c.transport.send(makeFrame(sequence: 1), to: 2)
            let reconnected = await eventually { (a.transport.statistics.peers[2]?.reconnects ?? 0) >= 1 }
            #expect(reconnected)
            a.transport.send(makeFrame(sequence: 3), to: 2)
            let delivered = await eventually { b.inbox.count(from: 1) == 2 && b.inbox.count(from: 3) == 2 }
            #expect(delivered)
            #expect(b.inbox.frames(from: 1).map(sequence(of:)) == [0, 3])
            #expect(b.inbox.frames(from: 3).map(sequence(of:)) == [0, 1])
            #expect(c.transport.statistics.peers[2]?.reconnects == 0)
        }
    }

    @Test("A frame longer than maxFrameBytes is never sent: dropped and counted, the link carries on")
    func frameOverTheLimitIsNotSent() async throws {
        try await withTransports { harness in
            let a = try await harness.makeMember(id: 1) { $0.maxFrameBytes = 1_000 }
            let b = try await harness.makeMember(id: 2) { $0.maxFrameBytes = 1_000 }
            harness.connectAll([a, b])
            a.transport.send([makeFrame(sequence: 0, size: 1_000), makeFrame(sequence: 1, size: 1_001), makeFrame(sequence: 2)], to: 2)
            let delivered = await eventually { b.inbox.count(from: 1) == 2 }
            #expect(delivered)
            #expect(b.inbox.frames(from: 1).map(sequence(of:)) == [0, 2])
            #expect(a.transport.statistics.peers[2]?.droppedFrames == 1)
            #expect(b.transport.statistics.rejectedConnections == 0)
        }
    }

    @Test("The default frame limit is a snapshot chunk or an entry plus 1 MiB of headroom")
    func defaultFrameLimit() {
        #expect(PeerTransport.Configuration(localID: 1, clusterID: 1).maxFrameBytes == 4 << 20)
        #expect(PeerTransport.Configuration.maxFrameBytes(largestPayload: 1 << 20) == 2 << 20)
    }

    @Test("Malformed hellos close only their connections")
    func malformedHellosCloseOnlyTheirConnections() async throws {
        try await withTransports { harness in
            let b = try await harness.makeMember(id: 2)
            let a = try await harness.makeMember(id: 1)
            a.transport.setPeer(2, host: "127.0.0.1", port: b.port)
            a.transport.send(makeFrame(sequence: 0), to: 2)
            let connected = await eventually { b.inbox.count(from: 1) == 1 }
            #expect(connected)

            var badVersion: [UInt8] = [0, 0, 0, 21] + Array("SHPT".utf8) + [99]
            badVersion += [UInt8](repeating: 0, count: 7) + [7] + [UInt8](repeating: 0, count: 7) + [5]
            let garbage: [[UInt8]] = [
                Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8),  // a length of 1.2 GB: not a hello
                [0, 0, 0, 21] + Array("XXXX".utf8) + [UInt8](repeating: 1, count: 17),  // wrong magic
                [0, 0, 0, 3, 1, 2, 3],  // too short for a hello
                badVersion,
            ]
            for (index, bytes) in garbage.enumerated() {
                let channel = try await harness.rawConnection(to: b.port)
                try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
                let closed = await eventually { !channel.isActive }
                #expect(closed, "connection \(index) left open")
                #expect(b.transport.statistics.rejectedConnections == index + 1)
            }
            #expect(b.logMessages.contains { $0.contains("version 99 is not supported") }, "\(b.logMessages)")
            #expect(b.logMessages.contains { $0.contains("not a Statehouse peer") }, "\(b.logMessages)")

            a.transport.send(makeFrame(sequence: 1), to: 2)
            let delivered = await eventually { b.inbox.count(from: 1) == 2 }
            #expect(delivered)
            #expect(a.transport.statistics.peers[2]?.reconnects == 0)
            #expect(b.transport.statistics.receivedFrames == [1: 2])
        }
    }

    @Test("removePeer closes its connection and drops later frames")
    func removePeerClosesItsConnectionAndDropsLaterFrames() async throws {
        try await withTransports { harness in
            let a = try await harness.makeMember(id: 1)
            let b = try await harness.makeMember(id: 2)
            harness.connectAll([a, b])
            a.transport.send(makeFrame(sequence: 0), to: 2)
            let delivered = await eventually { b.inbox.count(from: 1) == 1 }
            #expect(delivered)
            #expect(b.transport.statistics.inboundConnections == 1)

            a.transport.removePeer(2)
            #expect(a.transport.statistics.peers[2] == nil)
            let closed = await eventually { b.transport.statistics.inboundConnections == 0 }
            #expect(closed, "the removed peer's connection stayed open")
            a.transport.send(makeFrame(sequence: 1), to: 2)
            a.transport.send([makeFrame(sequence: 2), makeFrame(sequence: 3)], to: 2)
            #expect(a.transport.statistics.unroutableFrames == 3)
            a.transport.send(makeFrame(sequence: 4), to: 99)
            #expect(a.transport.statistics.unroutableFrames == 4)
            try await Task.sleep(for: .milliseconds(100))
            #expect(b.inbox.count(from: 1) == 1)
            #expect(b.transport.statistics.inboundConnections == 0, "a reconnected to a removed peer")

            // Adding it back works as a new peer.
            a.transport.setPeer(2, host: "127.0.0.1", port: b.port)
            a.transport.send(makeFrame(sequence: 5), to: 2)
            let again = await eventually { b.inbox.count(from: 1) == 2 }
            #expect(again)
            #expect(b.inbox.frames(from: 1).map(sequence(of:)) == [0, 5])
        }
    }

    @Test("setPeer with a new address moves the connection")
    func setPeerWithANewAddressMovesTheConnection() async throws {
        try await withTransports { harness in
            let a = try await harness.makeMember(id: 1)
            let oldB = try await harness.makeMember(id: 2)
            let newB = try await harness.makeMember(id: 2)
            a.transport.setPeer(2, host: "127.0.0.1", port: oldB.port)
            a.transport.send(makeFrame(sequence: 0), to: 2)
            let first = await eventually { oldB.inbox.count(from: 1) == 1 }
            #expect(first)

            a.transport.setPeer(2, host: "127.0.0.1", port: oldB.port)  // unchanged: nothing happens
            a.transport.setPeer(2, host: "127.0.0.1", port: newB.port)
            a.transport.send(makeFrame(sequence: 1), to: 2)
            let moved = await eventually { newB.inbox.count(from: 1) == 1 && oldB.transport.statistics.inboundConnections == 0 }
            #expect(moved)
            #expect(oldB.inbox.count(from: 1) == 1)
            #expect(newB.inbox.frames(from: 1).map(sequence(of:)) == [1])
        }
    }

    @Test("Shutdown closes everything and drops later sends")
    func shutdownClosesEverythingAndDropsLaterSends() async throws {
        try await withTransports { harness in
            let a = try await harness.makeMember(id: 1)
            let b = try await harness.makeMember(id: 2)
            let downPort = try await freePort(group: harness.group)
            harness.connectAll([a, b])
            a.transport.setPeer(3, host: "127.0.0.1", port: downPort)  // backing off when shut down
            a.transport.send(makeFrame(sequence: 0), to: 2)
            a.transport.send(makeFrame(sequence: 0), to: 3)
            b.transport.send(makeFrame(sequence: 0), to: 1)
            let exchanged = await eventually { b.inbox.count(from: 1) == 1 && a.inbox.count(from: 2) == 1 }
            #expect(exchanged)

            let started = ContinuousClock.now
            await a.transport.shutdown()
            #expect(ContinuousClock.now - started < .seconds(1))
            #expect(a.transport.statistics.peers.count == 0)
            #expect(a.transport.statistics.inboundConnections == 0)

            // Both of a's connections are gone, and its listener too.
            let closed = await eventually {
                b.transport.statistics.inboundConnections == 0 && b.transport.statistics.peers[1]?.isConnected == false
            }
            #expect(closed)
            do {
                _ = try await harness.rawConnection(to: a.port)
                Issue.record("a's listener still accepts connections")
            } catch {}

            a.transport.send(makeFrame(sequence: 1), to: 2)
            a.transport.setPeer(4, host: "127.0.0.1", port: b.port)
            a.transport.send(makeFrame(sequence: 1), to: 4)
            #expect(a.transport.statistics.unroutableFrames == 2)
            b.transport.send(makeFrame(sequence: 1), to: 1)
            try await Task.sleep(for: .milliseconds(100))
            #expect(b.inbox.count(from: 1) == 1)
            #expect(a.inbox.count(from: 2) == 1)
            do {
                _ = try await a.transport.listen(host: "127.0.0.1", port: 0)
                Issue.record("listen after shutdown succeeded")
            } catch let error as PeerTransportError {
                #expect(error == .shutDown)
            }
            await a.transport.shutdown()  // a second time does nothing
        }
    }

    @Test("Throughput smoke test")
    func throughputSmoke() async throws {
        try await withTransports { harness in
            let a = try await harness.makeMember(id: 1)
            let b = try await harness.makeMember(id: 2)
            harness.connectAll([a, b])
            a.transport.send(makeFrame(sequence: 0), to: 2)
            let warm = await eventually { b.inbox.count(from: 1) == 1 }
            #expect(warm)

            let count = 50_000
            let frame = makeFrame(sequence: 1)
            let started = ContinuousClock.now
            for _ in 0..<count { a.transport.send(frame, to: 2) }
            let delivered = await eventually(timeout: .seconds(20)) { b.inbox.count(from: 1) == count + 1 }
            let elapsed = ContinuousClock.now - started
            #expect(delivered, "delivered \(b.inbox.count(from: 1) - 1) of \(count)")
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            print(
                "PeerTransport throughput: \(count) frames of \(frame.count) bytes in \(elapsed): \(Int(Double(count) / seconds)) frames/s")
            #expect(a.transport.statistics.peers[2]?.droppedFrames == 0)
        }
    }
}

/// Reads and forgets everything.
final class DiscardingHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}
