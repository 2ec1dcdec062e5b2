import EtcdWire
import Foundation
import NIOCore
import NIOPosix
import Primitives
import RaftCore
import Testing

extension LocalClusterTests {
    /// What a stranger on the peer port can do without TLS: nothing, unless it names a member.
    @Suite("Peer authentication")
    struct PeerAuthenticationTests {
        /// A made-up member ID: no member of any test cluster has it.
        static let strangerID: UInt64 = 0xBAD0_BAD0_BAD0_BAD0

        @Test("a stranger's, a spoofer's and a garbage snapshot's well-formed frames change nothing; every member stays up")
        func strangersChangeNothing() async throws {
            try await withCluster { cluster in
                let leader = try await cluster.waitForLeader()
                let client = try await cluster.client(leader)
                try await client.put("peer-auth/before", "intact")
                let statuses = await cluster.statuses()
                let status = try #require(statuses[leader.name])
                // What every response header reveals is all a stranger needs for the hello.
                let clusterID = status.header.clusterID
                let term = status.raftTerm
                let follower = try #require(cluster.others(than: leader).first)
                let bystander = try #require(cluster.others(than: leader).last)

                // 1. A stranger: its hello names no member, so the connection is closed unread.
                for target in [follower, leader] {
                    let frames = Self.attack(from: Self.strangerID, to: target.id, term: term, forwarding: true)
                    let closed = try await Self.send(
                        hello: PeerHelloBytes(clusterID: clusterID, senderID: Self.strangerID), frames: frames, to: target.peerPort)
                    #expect(closed, "\(target.name) kept a stranger's connection open")
                }

                // 2. A spoofer: its hello names a real member, its messages another sender. (A
                // forwarded request carries no sender of its own: on a connection that names a
                // member, it is that member's, which only peer TLS can tell apart.)
                let spoofed =
                    Self.attack(from: Self.strangerID, to: follower.id, term: term, forwarding: false)
                    + Self.attack(from: leader.id, to: follower.id, term: term, forwarding: false)
                _ = try await Self.send(
                    hello: PeerHelloBytes(clusterID: clusterID, senderID: bystander.id), frames: spoofed, to: follower.peerPort)

                // 3. The leader's own ID, this term: a garbage snapshot far ahead of the log.
                let garbage = Self.raftFrame(
                    RaftMessage(
                        kind: .installSnapshot, from: leader.id, to: follower.id, term: term,
                        snapshot: SnapshotChunk(
                            metadata: SnapshotMetadata(index: 1_000_000, term: term, confState: ConfState(voters: [leader.id])),
                            offset: 0, data: Array("not a snapshot".utf8), isLast: true)))
                _ = try await Self.send(
                    hello: PeerHelloBytes(clusterID: clusterID, senderID: leader.id), frames: [garbage], to: follower.peerPort)

                try await Task.sleep(for: .milliseconds(3 * cluster.electionMilliseconds))
                #expect(cluster.running.count == 3, "a member stopped")
                let after = await cluster.statuses()
                #expect(after.count == 3)
                for (name, memberStatus) in after {
                    // No forged term was adopted. (A slow machine may still hold a real election.)
                    #expect(memberStatus.raftTerm < term + 1_000, "\(name) is at term \(memberStatus.raftTerm), was \(term)")
                    #expect(memberStatus.leader != Self.strangerID)
                }
                let members = try await client.memberList().members.map(\.id)
                #expect(Set(members) == Set(cluster.members.map(\.id)), "the membership changed: \(members)")
                let stillLeader = try await cluster.waitForLeader()
                if stillLeader !== leader { print("note: leadership moved from \(leader.name) to \(stillLeader.name) (a real election)") }
                try await client.put("peer-auth/after", "written")
                #expect(try await client.get("peer-auth/before").kvs.first?.value == Data("intact".utf8))

                let (_, followerMetrics) = try await LocalCluster.httpGet(port: follower.clientPort, path: "/metrics")
                #expect((metricValue("statehouse_peer_connections_rejected_total", in: followerMetrics) ?? 0) >= 1)
                #expect((metricValue(#"statehouse_peer_frames_refused_total{reason="sender_mismatch"}"#, in: followerMetrics) ?? 0) >= 1)
                #expect((metricValue(#"statehouse_peer_frames_refused_total{reason="invalid_snapshot"}"#, in: followerMetrics) ?? 0) >= 1)
                let (_, leaderMetrics) = try await LocalCluster.httpGet(port: leader.clientPort, path: "/metrics")
                #expect((metricValue("statehouse_peer_connections_rejected_total", in: leaderMetrics) ?? 0) >= 1)

                // The targeted member restarts on its data: nothing of the attack was stored.
                _ = try await cluster.stop(follower, signal: SIGTERM)
                try await cluster.restart(follower)
                try await cluster.waitUntilHealthy([follower])
                let restarted = try await cluster.client(follower)
                #expect(try await restarted.get("peer-auth/after").kvs.first?.value == Data("written".utf8))
                #expect(try await restarted.get("peer-auth/before").kvs.first?.value == Data("intact".utf8))
            }
        }

        /// Well-formed frames that would disrupt the cluster if accepted: a vote and an append
        /// with a huge term, a garbage snapshot, a forwarded proposal, a leader transfer, and a
        /// forwarded membership change removing `target` if `forwarding` is set.
        static func attack(from sender: UInt64, to target: UInt64, term: UInt64, forwarding: Bool) -> [[UInt8]] {
            let huge = term + 1_000_000
            var frames = [
                RaftMessage(kind: .requestVote, from: sender, to: target, term: huge, logTerm: huge, index: 1_000_000, context: 1),
                RaftMessage(
                    kind: .appendEntries, from: sender, to: target, term: huge, logTerm: 0, index: 0,
                    entries: [LogEntry(term: huge, index: 1, data: [1, 2, 3])], commit: 1),
                RaftMessage(
                    kind: .installSnapshot, from: sender, to: target, term: huge,
                    snapshot: SnapshotChunk(
                        metadata: SnapshotMetadata(index: 1_000_000, term: huge, confState: ConfState(voters: [sender])),
                        offset: 0, data: [UInt8](repeating: 0xEE, count: 64), isLast: true)),
                RaftMessage(kind: .propose, from: sender, to: target, term: 0, entries: [LogEntry(term: 0, index: 0, data: [9])]),
                RaftMessage(kind: .transferLeader, from: sender, to: target, term: 0, context: sender),
            ].map(raftFrame)
            if forwarding {
                // A forwarded `member remove` of the target (PeerFrame kind 1, request kind 2).
                var forward: [UInt8] = [1]
                forward.appendLittleEndian(42)
                forward.append(2)
                forward.appendUInt32LengthPrefixed(ConfChange(.removeNode, node: target).encoded())
                frames.append(forward)
            }
            return frames
        }

        /// A Raft message as a peer frame's payload (PeerFrame kind 0).
        static func raftFrame(_ message: RaftMessage) -> [UInt8] { [0] + message.encoded() }

        /// Opens a connection to `port`, sends the hello and `frames`, and returns whether the
        /// member closed the connection within a second.
        static func send(hello: PeerHelloBytes, frames: [[UInt8]], to port: Int) async throws -> Bool {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).get()
            var buffer = ByteBuffer()
            for payload in [hello.bytes] + frames {
                buffer.writeInteger(UInt32(payload.count), endianness: .big)
                buffer.writeBytes(payload)
            }
            try? await channel.writeAndFlush(buffer)
            let closed = try? await eventually("the member to close the connection", timeout: .seconds(1), interval: .milliseconds(20)) {
                channel.isActive ? nil : true
            }
            try? await channel.close()
            return closed ?? false
        }
    }
}

/// A peer hello as the wire format documents it: `SHPT`, version 1, the cluster ID and the
/// sender's ID (big-endian).
struct PeerHelloBytes {
    var clusterID: UInt64
    var senderID: UInt64

    var bytes: [UInt8] {
        var out = Array("SHPT".utf8) + [1]
        out.appendBigEndian(clusterID)
        out.appendBigEndian(senderID)
        return out
    }
}
