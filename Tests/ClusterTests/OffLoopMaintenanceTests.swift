import Crypto
import EtcdWire
import Foundation
import TestSupport
import Testing

extension LocalClusterTests {
    /// `Hash`, `HashKV` and `Snapshot` read a pinned RocksDB snapshot on a thread pool: the
    /// answers agree across members, and a member keeps serving while a backup stream waits for
    /// its reader.
    @Suite("Maintenance off the member loop")
    struct OffLoopMaintenanceTests {
        /// Streams `Maintenance/Snapshot` from `client`; after the first chunk, runs `whilePaused`
        /// before reading on (the server has to wait: the client's flow-control window is full).
        func backup(
            _ client: EtcdClient, whilePaused: () async throws -> Void = {}
        ) async throws -> (file: [UInt8], chunks: [(revision: Int64, remaining: UInt64)]) {
            try await client.connection.call("/etcdserverpb.Maintenance/Snapshot", timeout: .seconds(60)) { call in
                try await call.send(Etcdserverpb_SnapshotRequest(), isLast: true)
                var file: [UInt8] = []
                var chunks: [(revision: Int64, remaining: UInt64)] = []
                while let chunk = try await call.receive(Etcdserverpb_SnapshotResponse.self) {
                    file += chunk.blob
                    chunks.append((chunk.header.revision, chunk.remainingBytes))
                    if chunks.count == 1 { try await whilePaused() }
                }
                return (file, chunks)
            }
        }

        @Test("Hash, HashKV and Snapshot agree across members, the member serves while a backup waits, watches catch up")
        func maintenanceAgreesAcrossMembers() async throws {
            try await withCluster { cluster in
                let leader = try await cluster.client(try await cluster.waitForLeader())
                let revision = try await putMany(leader, prefix: "offloop/", 0..<3000, concurrency: 64)
                let clients = try await cluster.members.asyncMap { try await cluster.client($0) }

                // Every member answers Hash at the last write's revision once it has applied it.
                var hashes: [UInt32] = []
                for attempt in 1...100 {
                    hashes = []
                    var revisions: Set<Int64> = []
                    for client in clients {
                        let response: Etcdserverpb_HashResponse = try await client.connection.unary(
                            "/etcdserverpb.Maintenance/Hash", Etcdserverpb_HashRequest())
                        hashes.append(response.hash)
                        revisions.insert(response.header.revision)
                    }
                    if revisions == [revision] && Set(hashes).count == 1 { break }
                    if attempt < 100 { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(Set(hashes).count == 1, "Hash differs between members: \(hashes)")

                for at in [revision / 2, revision, 0] {
                    let answers = try await clients.asyncMap { try await $0.hashKV(revision: at) }
                    #expect(Set(answers.map(\.hash)).count == 1, "HashKV at \(at): \(answers.map(\.hash))")
                    #expect(answers.allSatisfy { $0.header.revision == revision && $0.compactRevision == -1 })
                }
                let future = await #expect(throws: GRPCCallError.self) { try await clients[0].hashKV(revision: revision + 1) }
                #expect(future?.message == "etcdserver: mvcc: required revision is a future revision")

                // A backup streams in chunks; while its reader pauses, the member reads and writes.
                let (file, chunks) = try await backup(clients[1]) {
                    let other = try await cluster.client(cluster.members[1])
                    #expect(try await other.value(of: workloadKey("offloop/", 7)) == workloadValue(7))
                    _ = try await leader.put("offloop/during-backup", "yes")
                    #expect(try await other.get("offloop/during-backup").kvs.count == 1)
                }
                #expect(chunks.count > 2, "3,000 keys make a backup of several chunks")
                #expect(chunks.allSatisfy { $0.revision == revision }, "the backup holds the state pinned at its start")
                #expect(chunks.map(\.remaining) == chunks.map(\.remaining).sorted(by: >))
                #expect(chunks.last?.remaining == 0)
                #expect(file.count % 512 == 32)
                #expect(Array(SHA256.hash(data: file.dropLast(32))) == Array(file.suffix(32)))

                // Two members' backups of the same state are the same file.
                let settled = try await leader.delete("offloop/during-backup").header.revision
                var backups: [[UInt8]] = []
                for client in [clients[0], clients[2]] {
                    for attempt in 1...100 {
                        if try await client.get("offloop/", serializable: true).header.revision == settled { break }
                        if attempt < 100 { try await Task.sleep(for: .milliseconds(100)) }
                    }
                    backups.append(try await backup(client).file)
                }
                #expect(backups[0].count == backups[1].count && backups[0] == backups[1], "backups of one state differ between members")

                // Watches from revision 1 catch up through several 1,000-revision windows: a
                // prefix watch gets every put in order, a one-key watch its one put near the end.
                var everything = Etcdserverpb_WatchCreateRequest()
                everything.key = Data("offloop/0".utf8)
                everything.rangeEnd = EtcdClient.prefixEnd(of: everything.key)
                everything.startRevision = 1
                let replayed = try await clients[1].watch(everything) { _, stream in try await stream.events(count: 3000) }
                #expect(replayed.count == 3000)
                #expect(replayed.map(\.kv.modRevision) == replayed.map(\.kv.modRevision).sorted())
                #expect(Set(replayed.map(\.kv.key)).count == 3000)
                var one = Etcdserverpb_WatchCreateRequest()
                one.key = Data(workloadKey("offloop/", 2999).utf8)
                one.startRevision = 1
                let late = try await clients[2].watch(one) { _, stream in
                    let history = try await stream.events(count: 1)
                    _ = try await leader.put(workloadKey("offloop/", 2999), "live")
                    return history + (try await stream.events(count: 1))
                }
                #expect(late.map { String(decoding: $0.kv.value, as: UTF8.self) } == [workloadValue(2999), "live"])

            }
        }
    }
}

extension Array {
    /// Maps the elements in order with an async transform.
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
