import EtcdWire
import Foundation
import TestSupport
import Testing

extension LocalClusterTests {
    /// A watch client that stops reading (issue 10): HTTP/2 flow control stops the member from
    /// sending, its watcher falls out of sync instead of queueing events, and it catches up from
    /// the store's history once the client reads again (docs/api.md, "Watch"). Checked with the
    /// watch on a follower and on the leader, whose stall would cost the cluster its leader.
    @Suite("A watcher that never reads")
    struct SlowWatcherTests {
        /// Bytes of each value written.
        static let valueSize = 16 * 1024
        /// Puts before the watch opens (history it replays from revision 1).
        static let before = 200
        /// Puts while it does not read.
        static let during = 1_600

        @Test(
            "an unread watch from revision 1 leaves its member's memory bounded and Raft undisturbed, then delivers every event in order",
            arguments: ["a follower", "the leader"])
        func unreadWatchIsBounded(on role: String) async throws {
            try await withCluster { cluster in
                let leader = try await cluster.waitForLeader()
                let followers = cluster.others(than: leader)
                // The watch is on a follower or on the leader; a follower that applies the same
                // entries and serves no watch is the control for what the data itself costs.
                let (watched, control) = role == "the leader" ? (leader, followers[0]) : (followers[0], followers[1])
                let writer = try await cluster.client(leader)
                let value = String(repeating: "w", count: Self.valueSize)
                let firstRevision = try await putValues(writer, 0..<Self.before, value: value) - Int64(Self.before) + 1

                let termBefore = try await cluster.terms()
                let changesBefore = try await cluster.leaderChangesSeen()
                let watchedBefore = try rssAnon(watched)
                let controlBefore = try rssAnon(control)

                let reader = try await EtcdClient.connect(port: watched.clientPort)
                var request = Etcdserverpb_WatchCreateRequest()
                request.key = Data("unread/".utf8)
                request.rangeEnd = EtcdClient.prefixEnd(of: request.key)
                request.startRevision = 1
                let (events, growth) = try await reader.watch(request, timeout: .seconds(180)) { _, stream in
                    // From here the client reads nothing until every put is acknowledged.
                    let last = try await putValues(writer, Self.before..<Self.before + Self.during, value: value)
                    try await waitUntilApplied(last, on: [watched, control], in: cluster)
                    try await Task.sleep(for: .seconds(1))
                    let growth = (watched: try rssAnon(watched) - watchedBefore, control: try rssAnon(control) - controlBefore)
                    // Reading again: the whole history, then live events.
                    var events = try await stream.events(count: Self.before + Self.during)
                    _ = try await writer.put("unread/live", "after")
                    events += try await stream.events(count: 1)
                    return (events, growth)
                }
                await reader.close()

                let written = (Self.before + Self.during) * Self.valueSize
                #expect(
                    growth.watched - growth.control < written / 2,
                    """
                    the member serving the unread watch grew by \(growth.watched >> 20) MiB, the control follower by \
                    \(growth.control >> 20) MiB, for \(written >> 20) MiB written
                    """)
                #expect(try await cluster.leaderChangesSeen() == changesBefore, "a leader change while the watcher did not read")
                #expect(try await cluster.terms() == termBefore, "the Raft term moved while the watcher did not read")

                let expectedKeys = (0..<Self.before + Self.during).map { workloadKey("unread/", $0) } + ["unread/live"]
                #expect(events.count == expectedKeys.count, "every event arrives once")
                let revisions = events.map(\.kv.modRevision)
                #expect(revisions == Array(firstRevision..<firstRevision + Int64(events.count)), "events in revision order, none missing")
                #expect(Set(events.map { String(decoding: $0.kv.key, as: UTF8.self) }) == Set(expectedKeys))
                #expect(events.dropLast().allSatisfy { $0.kv.value.count == Self.valueSize })
                #expect(events.last.map { String(decoding: $0.kv.value, as: UTF8.self) } == "after")
            }
        }

        /// Puts `unread/<index>` = `value` for every index, 16 at a time; returns the highest
        /// revision answered.
        func putValues(_ client: EtcdClient, _ indices: Range<Int>, value: String) async throws -> Int64 {
            try await withThrowingTaskGroup(of: Int64.self) { group in
                var next = indices.lowerBound
                var highest: Int64 = 0
                while next < min(indices.upperBound, indices.lowerBound + 16) {
                    let key = workloadKey("unread/", next)
                    group.addTask { try await client.put(key, value).header.revision }
                    next += 1
                }
                while let revision = try await group.next() {
                    highest = max(highest, revision)
                    if next < indices.upperBound {
                        let key = workloadKey("unread/", next)
                        group.addTask { try await client.put(key, value).header.revision }
                        next += 1
                    }
                }
                return highest
            }
        }

        /// Waits until each of `members` answers a serializable read at `revision` or later.
        func waitUntilApplied(_ revision: Int64, on members: [LocalMember], in cluster: LocalCluster) async throws {
            for member in members {
                let client = try await cluster.client(member)
                for attempt in 1...200 {
                    if try await client.get("unread/", serializable: true).header.revision >= revision { break }
                    if attempt == 200 { throw TimeoutError(description: "\(member.name) did not apply revision \(revision)") }
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
        }

        /// The member process's anonymous resident memory (`RssAnon` in /proc/PID/status), in bytes.
        func rssAnon(_ member: LocalMember) throws -> Int {
            let pid = try #require(member.process?.pid)
            let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
            let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("RssAnon:") })
            let kilobytes = try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
            return kilobytes * 1024
        }
    }
}
