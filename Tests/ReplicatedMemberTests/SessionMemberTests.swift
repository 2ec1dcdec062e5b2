import Foundation
import RaftCore
import StateMachine
import Storage
import StorageRocksDB
import Testing

@_spi(Testing) @testable import ReplicatedMember

/// Exactly-once writes through members: the session table is replicated, travels in snapshots
/// and survives restarts.
@Suite struct SessionMemberTests {
    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    private func put(_ value: String, sequence: UInt64, session: Int64 = 7) -> ClientRequest {
        .write(
            .put(PutRequest(key: bytes("k"), value: bytes(value))),
            session: SessionStamp(session: session, sequence: sequence, acknowledged: sequence))
    }

    private func version(_ member: Member) -> Int64? {
        try? member.store.range(RangeRequest(key: bytes("k"))).kvs.first?.version
    }

    @Test("a retried write in a session returns the original answer and applies nothing, on every member")
    func retryAppliesOnce() {
        var harness = MemberHarness(voters: [1, 2, 3])
        harness.elect(1)
        _ = harness.call(.write(.leaseGrant(LeaseGrantRequest(ttl: 60, id: 7))), at: 1)
        let first = harness.call(put("a", sequence: 1), at: 1)
        // The same write again, as a client retrying on another member after losing the answer.
        let retried = harness.call(put("a", sequence: 1), at: 2)
        #expect(first != nil && retried == first)
        for id in [NodeID(1), 2, 3] { #expect(version(harness.members[id]!) == 1) }
        let digests = Set([NodeID(1), 2, 3].map { harness.members[$0]!.store.digest() })
        #expect(digests.count == 1)

        // Unknown session: refused, nothing applied.
        #expect(harness.call(put("b", sequence: 1, session: 8), at: 1) == .failure(.state(.sessionExpired)))
        // The lease ends the session: a retry after that is refused rather than applied again.
        _ = harness.call(.write(.leaseRevoke(LeaseRevokeRequest(id: 7))), at: 1)
        #expect(harness.call(put("a", sequence: 1), at: 1) == .failure(.state(.sessionExpired)))
        #expect(version(harness.members[1]!) == 1)
    }

    @Test("with deduplication switched off (a mutation), the retried write applies twice")
    func mutationAppliesTwice() {
        var harness = MemberHarness(voters: [1]) { $0.mutation = .applySessionWritesWithoutDeduplication }
        harness.elect(1)
        _ = harness.call(.write(.leaseGrant(LeaseGrantRequest(ttl: 60, id: 7))), at: 1)
        _ = harness.call(put("a", sequence: 1), at: 1)
        _ = harness.call(put("a", sequence: 1), at: 1)
        #expect(version(harness.members[1]!) == 2)
    }

    @Test("a member that catches up from a snapshot has the session table")
    func snapshotCarriesTheTable() {
        var harness = MemberHarness(voters: [1, 2, 3]) {
            $0.snapshotCount = 5
            $0.retainedEntries = 0
        }
        harness.elect(1)
        let lagging = harness.members.removeValue(forKey: 3)!
        _ = harness.call(.write(.leaseGrant(LeaseGrantRequest(ttl: 60, id: 7))), at: 1)
        let first = harness.call(put("a", sequence: 1), at: 1)
        for value in 0..<12 { _ = harness.call(.write(.put(PutRequest(key: bytes("other"), value: [UInt8(value)]))), at: 1) }
        #expect(harness.members[1]!.raft.firstIndex > lagging.appliedIndex + 1)
        harness.members[3] = lagging
        harness.tick(3)
        #expect(harness.members[3]!.appliedIndex == harness.members[1]!.appliedIndex)
        #expect(harness.members[3]!.store.session(7) == harness.members[1]!.store.session(7))
        #expect(harness.members[3]!.store.digest() == harness.members[1]!.store.digest())
        // The caught-up member leads now: the retry is still answered from the table.
        harness.members[1]!.transferLeadership(to: 3)
        harness.tick(30)
        #expect(harness.members[3]!.raft.role == .leader)
        #expect(harness.call(put("a", sequence: 1), at: 3) == first)
        #expect(version(harness.members[3]!) == 1)
    }

    @Test("the session table survives a restart on RocksDB")
    func tableSurvivesRestart() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sessions-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.path + "/db"

        func run(_ member: inout Member, _ storage: MemberStorage) throws -> [RequestID: ClientResponse] {
            var answers: [RequestID: ClientResponse] = [:]
            for _ in 0..<20 where member.hasBatch {
                let ready = member.startBatch()
                try storage.persist(ready)
                let output = member.finishBatch()
                try storage.write(output)
                for (id, response) in output.responses { answers[id] = response }
            }
            return answers
        }
        func start(_ engine: RocksDBEngine, incarnation: UInt64) throws -> (Member, MemberStorage) {
            let storage = try MemberStorage(engine: engine)
            if storage.isEmpty { try storage.bootstrap(voters: [1]) }
            var configuration = MemberConfiguration(id: 1)
            configuration.incarnation = incarnation
            var member = Member(configuration: configuration, recovered: try storage.recover())
            _ = try run(&member, storage)
            member.campaign()
            _ = try run(&member, storage)
            return (member, storage)
        }

        var engine = try RocksDBEngine(path: path)
        var (member, storage) = try start(engine, incarnation: 1)
        #expect(member.submit(.write(.leaseGrant(LeaseGrantRequest(ttl: 60, id: 7))), id: 1) == nil)
        #expect(member.submit(put("a", sequence: 1), id: 2) == nil)
        let first = try run(&member, storage)[2]
        #expect(first != nil)
        try engine.close()

        engine = try RocksDBEngine(path: path)
        (member, storage) = try start(engine, incarnation: 2)
        #expect(member.store.session(7)?.results[1] != nil)
        #expect(member.submit(put("a", sequence: 1), id: 1) == nil)
        #expect(try run(&member, storage)[1] == first)
        #expect(version(member) == 1)
        try engine.close()
    }

    @Test("session envelopes round-trip, and envelopes without a session keep format 1")
    func envelopeFormats() {
        let plain = Envelope(origin: 3, incarnation: 5, request: 99, body: .put(PutRequest(key: bytes("a"), value: bytes("b"))))
        #expect(plain.encoded().first == 1)
        let stamped = Envelope(
            origin: 3, incarnation: 5, request: 99, session: SessionStamp(session: 7, sequence: 9, acknowledged: 4),
            body: .put(PutRequest(key: bytes("a"), value: bytes("b"))))
        #expect(stamped.encoded().first == 2)
        #expect(Envelope(decoding: stamped.encoded()) == stamped)
        #expect(Envelope(decoding: Array(stamped.encoded().prefix(40))) == nil)
    }
}
