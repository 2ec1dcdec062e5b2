import NIOCore
import PeerTransport
import Testing

/// The peer protocol's version range: members talk at the highest version both speak, fall back
/// to version 1 for builds from before ranges, refuse disjoint ranges naming both, and probe the
/// round trip from version 2 on.
@Suite("Peer protocol versions", .serialized)
struct ProtocolVersionTests {
    /// Sends a numbered frame to `peer` every few milliseconds until `receiver` has one from
    /// `sender`: frames written on a connection the peer refuses are lost, as Raft allows.
    private func sendUntilDelivered(from sender: Member, to receiver: Member) async -> Bool {
        var sequence = 0
        return await eventually(timeout: .seconds(5)) {
            sequence += 1
            if sequence % 20 == 1 { sender.transport.send(makeFrame(sequence: sequence), to: receiver.id) }
            return receiver.inbox.count(from: sender.id) > 0
        }
    }

    /// Connects `a` and `b` to each other, has a frame delivered each way, and returns the
    /// version each one's connection to the other speaks (nil if a frame never arrived).
    private func versionsBothWays(_ a: Member, _ b: Member, harness: TransportHarness) async -> (Int?, Int?) {
        harness.connectAll([a, b])
        guard await sendUntilDelivered(from: a, to: b), await sendUntilDelivered(from: b, to: a) else { return (nil, nil) }
        return (a.transport.statistics.peers[b.id]?.protocolVersion, b.transport.statistics.peers[a.id]?.protocolVersion)
    }

    @Test("Members of this build talk at its highest version and measure round trips, which are not delivered as frames")
    func currentMembersProbeRoundTrips() async throws {
        try await withTransports { harness in
            let configure: (inout PeerTransport.Configuration) -> Void = { $0.roundTripProbeInterval = .milliseconds(20) }
            let a = try await harness.makeMember(id: 1, configure: configure)
            let b = try await harness.makeMember(id: 2, configure: configure)
            harness.connectAll([a, b])
            a.transport.send(makeFrame(sequence: 1), to: 2)
            b.transport.send(makeFrame(sequence: 1), to: 1)
            let probed = await eventually {
                [a, b].allSatisfy { member in
                    let peer = member.transport.statistics.peers[member.id == 1 ? 2 : 1]
                    let highest = Int(PeerTransport.supportedProtocolVersions.upperBound)
                    return peer?.protocolVersion == highest && (peer?.roundTrips.count ?? 0) >= 3
                }
            }
            #expect(probed, "\(a.transport.statistics.peers) \(b.transport.statistics.peers)")
            let roundTrips = try #require(a.transport.statistics.peers[2]?.roundTrips)
            #expect(roundTrips.sum > 0 && roundTrips.sum < Double(roundTrips.count), "loopback round trips under a second")
            // Only the frames sent arrive; probes and their answers are the transport's own.
            #expect(a.inbox.frames(from: 2) == [makeFrame(sequence: 1)])
            #expect(b.inbox.frames(from: 1) == [makeFrame(sequence: 1)])
            #expect(a.transport.statistics.receivedFrames == [2: 1])
            #expect(a.transport.statistics.peers[2]?.reconnects == 0)
        }
    }

    @Test("With connectsEagerly, a peer nothing is sent to is connected and probed")
    func eagerConnectionsAreProbed() async throws {
        try await withTransports { harness in
            let b = try await harness.makeMember(id: 2)
            let a = try await harness.makeMember(id: 1) {
                $0.connectsEagerly = true
                $0.roundTripProbeInterval = .milliseconds(20)
            }
            let lazy = try await harness.makeMember(id: 3)
            a.transport.setPeer(2, host: "127.0.0.1", port: b.port)
            lazy.transport.setPeer(2, host: "127.0.0.1", port: b.port)
            #expect(await eventually { (a.transport.statistics.peers[2]?.roundTrips.count ?? 0) >= 2 })
            #expect(lazy.transport.statistics.peers[2]?.isConnected == false, "without it, nothing is opened before a send")
            #expect(b.inbox.total == 0)
        }
    }

    @Test("A member speaking version 1 only (as builds before ranges) and a current one talk at version 1, both ways")
    func versionOneOnlyPeer() async throws {
        try await withTransports { harness in
            let current = try await harness.makeMember(id: 1) { $0.roundTripProbeInterval = .milliseconds(20) }
            let old = try await harness.makeMember(id: 2) { $0.protocolVersions = 1...1 }
            // The old member refuses the hello with a range without answering; the next connection
            // starts with a version-1 hello, which it accepts.
            let versions = await versionsBothWays(current, old, harness: harness)
            #expect(versions == (1, 1))
            #expect(current.logMessages.contains { $0.contains("without answering the hello") }, "\(current.logMessages)")
            #expect(old.logMessages.contains { $0.contains("too long for a hello") }, "\(old.logMessages)")
            // Version 1 has no probes.
            try await Task.sleep(for: .milliseconds(100))
            #expect(current.transport.statistics.peers[2]?.roundTrips.count == 0)
        }
    }

    @Test("Members whose ranges share a version talk at the highest one")
    func overlappingRanges() async throws {
        try await withTransports { harness in
            let a = try await harness.makeMember(id: 1) { $0.protocolVersions = 2...5 }
            let b = try await harness.makeMember(id: 2) { $0.protocolVersions = 1...3 }
            let versions = await versionsBothWays(a, b, harness: harness)
            #expect(versions == (3, 3))
            #expect(a.transport.statistics.peers[2]?.reconnects == 0, "no connection was refused")
        }
    }

    @Test("Disjoint ranges are refused on both sides, each log naming both ranges")
    func disjointRangesAreRefused() async throws {
        try await withTransports { harness in
            let a = try await harness.makeMember(id: 1) { $0.protocolVersions = 1...2 }
            let b = try await harness.makeMember(id: 2) { $0.protocolVersions = 3...4 }
            harness.connectAll([a, b])
            a.transport.send(makeFrame(sequence: 1), to: 2)
            b.transport.send(makeFrame(sequence: 1), to: 1)
            let refused = await eventually {
                a.transport.statistics.peers[2]?.refusedBy == 3...4 && b.transport.statistics.peers[1]?.refusedBy == 1...2
                    && a.transport.statistics.rejectedConnections >= 1 && b.transport.statistics.rejectedConnections >= 1
            }
            #expect(refused, "\(a.transport.statistics) \(b.transport.statistics)")
            let dialing = "it speaks peer protocol versions 3...4, this member 1...2: no version in common"
            let accepting = "it speaks peer protocol versions 1...2, this member 3...4: no version in common"
            #expect(a.logMessages.contains { $0.contains("peer refused the connection: \(dialing)") }, "\(a.logMessages)")
            #expect(a.logMessages.contains { $0.contains("rejected peer connection: it speaks peer protocol versions 3...4") })
            #expect(b.logMessages.contains { $0.contains("rejected peer connection: \(accepting)") }, "\(b.logMessages)")
            #expect(a.inbox.total == 0 && b.inbox.total == 0)
            #expect(a.transport.statistics.peers[2]?.protocolVersion == 0)
            // No fallback to version 1 after a refusal that was answered: it stays refused.
            #expect(!a.logMessages.contains { $0.contains("without answering") })
        }
    }

    @Test("A version-1 hello written by hand is understood, and an empty frame after it is an ordinary frame")
    func versionOneHelloIsUnderstood() async throws {
        try await withTransports { harness in
            let b = try await harness.makeMember(id: 2)
            let channel = try await harness.rawConnection(to: b.port)
            let hello = [UInt8](repeating: 0, count: 7) + [7] + [UInt8](repeating: 0, count: 7) + [1]
            let frame = makeFrame(sequence: 5, size: 8)
            var bytes: [UInt8] = [0, 0, 0, 21] + Array("SHPT".utf8) + [1] + hello
            bytes += [0, 0, 0, 8] + frame + [0, 0, 0, 0]  // the empty frame is a frame at version 1
            try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
            #expect(await eventually { b.inbox.count(from: 1) == 2 })
            #expect(b.inbox.frames(from: 1) == [frame, []])
            #expect(channel.isActive)
            try await channel.close()
        }
    }
}
