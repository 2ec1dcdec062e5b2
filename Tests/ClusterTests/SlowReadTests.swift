import EtcdWire
import Foundation
import TestSupport
import Testing

extension LocalClusterTests {
    /// A leader serving big ranges whose reads from RocksDB are slow (issue 10, "heavy work off
    /// the loop"). A range that needs more than a few values from RocksDB is read on the thread
    /// pool from a snapshot pinned when it was planned, so ticks, heartbeats and applies go on
    /// meanwhile, and a compaction applied during the read does not change its answer. The same
    /// holds for a read-only transaction and for a watch catching up from history. A member
    /// loop that read the values itself would send no heartbeat while it did, and the followers
    /// would elect another leader.
    @Suite("A leader whose range reads are slow")
    struct SlowReadTests {
        /// How long the leader takes to read each big range's values: three election timeouts
        /// of the test clusters (500 ms).
        static let readMilliseconds = 1_500
        /// How long ranges and puts go on together while reads are slow.
        static let slowPeriod = Duration.seconds(6)
        static let keys = 1_000

        @Test("ranges whose reads take three election timeouts leave the leader leading; a compaction does not change them")
        func slowRangesKeepLeadership() async throws {
            try await withCluster(prepare: { cluster in
                for member in cluster.members { member.environment[Self.delayVariable] = Self.delayFile(of: member, in: cluster) }
            }) { cluster in
                let leader = try await cluster.waitForLeader()
                let client = try await cluster.client(leader)
                try await putMany(client, prefix: "range/", 0..<Self.keys)
                let termsBefore = try await cluster.terms()
                let changesBefore = try await cluster.leaderChangesSeen()
                let offLoopBefore = try await Self.rangesReadOffLoop(leader, in: cluster)

                try "\(Self.readMilliseconds)".write(toFile: Self.delayFile(of: leader, in: cluster), atomically: true, encoding: .utf8)
                // A range planned now, then a put and a compaction that deletes the version it answers.
                let began = ContinuousClock.now
                let planned = Task { try await client.get("range/", prefix: true, timeout: .seconds(30)) }
                if !cluster.isReferenceServer {
                    let deadline = ContinuousClock.now + .seconds(10)
                    while try await Self.rangesReadOffLoop(leader, in: cluster) == offLoopBefore, ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
                let changed = try await client.put(workloadKey("range/", 0), "changed").header.revision
                try await client.compact(revision: changed)
                let answer = try await planned.value
                if !cluster.isReferenceServer {
                    #expect(ContinuousClock.now - began >= .milliseconds(Self.readMilliseconds), "the read was not slowed")
                    #expect(answer.header.revision < changed, "the range was planned after the put")
                }
                #expect(answer.kvs.count == Self.keys)
                #expect(answer.kvs.first.map { String(decoding: $0.value, as: UTF8.self) } == workloadValue(0))

                // A transaction that only reads is served as a read (etcd does not log it): its
                // range's values are read on the thread pool too.
                let offLoopBeforeTxn = try await Self.rangesReadOffLoop(leader, in: cluster)
                var txn = Etcdserverpb_TxnRequest()
                var rangeOp = Etcdserverpb_RequestOp()
                rangeOp.requestRange.key = Data("range/".utf8)
                rangeOp.requestRange.rangeEnd = EtcdClient.prefixEnd(of: Data("range/".utf8))
                txn.success = [rangeOp]
                let txnBegan = ContinuousClock.now
                let txnAnswer = try await client.txn(txn)
                #expect(txnAnswer.succeeded)
                #expect(txnAnswer.responses.first?.responseRange.kvs.count == Self.keys)
                #expect(txnAnswer.header.revision == changed)
                if !cluster.isReferenceServer {
                    #expect(ContinuousClock.now - txnBegan >= .milliseconds(Self.readMilliseconds), "the transaction's read was not slowed")
                    let offLoopAfterTxn = try await Self.rangesReadOffLoop(leader, in: cluster)
                    #expect(offLoopAfterTxn > offLoopBeforeTxn, "the transaction read its values on the loop")
                }

                // Ranges keep the read pool busy while puts go on.
                let deadline = ContinuousClock.now + Self.slowPeriod
                let ranges = Task {
                    try await withThrowingTaskGroup(of: Int.self) { group in
                        for _ in 0..<3 {
                            group.addTask {
                                var served = 0
                                while ContinuousClock.now < deadline {
                                    let response = try await client.get("range/", prefix: true, timeout: .seconds(30))
                                    #expect(response.kvs.count == Self.keys)
                                    served += 1
                                }
                                return served
                            }
                        }
                        return try await group.reduce(0, +)
                    }
                }
                var puts = 0
                var firstPut: Int64 = 0
                while ContinuousClock.now < deadline {
                    let revision = try await client.put("slow-read/\(puts)", "v\(puts)", timeout: .seconds(30)).header.revision
                    if puts == 0 { firstPut = revision }
                    puts += 1
                }
                let served = try await ranges.value

                // A watch from the first of those puts catches up from history: its windows'
                // values are read on the thread pool, slowly, while the leader keeps leading.
                let watchOffLoopBefore = try await Self.watchCatchUpsReadOffLoop(leader, in: cluster)
                let watcher = try await EtcdClient.connect(port: leader.clientPort)
                var watch = Etcdserverpb_WatchCreateRequest()
                watch.key = Data("slow-read/".utf8)
                watch.rangeEnd = EtcdClient.prefixEnd(of: watch.key)
                watch.startRevision = firstPut
                let watchBegan = ContinuousClock.now
                let events = try await watcher.watch(watch, timeout: .seconds(60)) { _, stream in try await stream.events(count: puts) }
                await watcher.close()
                #expect(events.map(\.kv.modRevision) == Array(firstPut..<firstPut + Int64(puts)), "every put once, in order")
                #expect(events.map { String(decoding: $0.kv.key, as: UTF8.self) } == (0..<puts).map { "slow-read/\($0)" })
                if !cluster.isReferenceServer {
                    #expect(ContinuousClock.now - watchBegan >= .milliseconds(Self.readMilliseconds), "the catch-up was not slowed")
                    let watchOffLoopAfter = try await Self.watchCatchUpsReadOffLoop(leader, in: cluster)
                    #expect(watchOffLoopAfter > watchOffLoopBefore, "the catch-up read its values on the loop")
                }
                try FileManager.default.removeItem(atPath: Self.delayFile(of: leader, in: cluster))

                #expect(served >= 3, "only \(served) slow ranges were served")
                #expect(try await cluster.leaderChangesSeen() == changesBefore, "a leader change while the leader's reads were slow")
                #expect(try await cluster.terms() == termsBefore, "the Raft term moved while the leader's reads were slow")
                #expect(try await cluster.waitForLeader() === leader)
                #expect(try await client.value(of: workloadKey("range/", 0)) == "changed")
                for member in cluster.members {
                    let value = try await cluster.client(member).value(of: "slow-read/\(puts - 1)")
                    #expect(value == "v\(puts - 1)", "\(member.name) has the last put")
                }
            }
        }

        static let delayVariable = "TESTING_STATEHOUSE_READ_DELAY_FILE"

        /// The file whose milliseconds `member` sleeps before reading each big range's values.
        static func delayFile(of member: LocalMember, in cluster: LocalCluster) -> String {
            "\(cluster.root)/\(member.name).read-delay"
        }

        /// `statehouse_mvcc_watch_catch_up_reads_off_loop_total` of `member` (0 for etcd).
        static func watchCatchUpsReadOffLoop(_ member: LocalMember, in cluster: LocalCluster) async throws -> Double {
            let (_, text) = try await LocalCluster.httpGet(port: member.clientPort, path: "/metrics")
            return metricValue("statehouse_mvcc_watch_catch_up_reads_off_loop_total", in: text) ?? 0
        }

        /// `statehouse_mvcc_ranges_read_off_loop_total` of `member` (0 for etcd, which has none).
        static func rangesReadOffLoop(_ member: LocalMember, in cluster: LocalCluster) async throws -> Double {
            let (_, text) = try await LocalCluster.httpGet(port: member.clientPort, path: "/metrics")
            return metricValue("statehouse_mvcc_ranges_read_off_loop_total", in: text) ?? 0
        }
    }
}
