import StateMachine
import Storage
import Testing

@testable import RaftCore
@testable import ReplicatedMember

@Suite("Resident values")
struct ResidentValueTests {
    @Test("a member holding 20,000 keys of 1 KiB keeps only the values of the batch being written in memory, and none after a restart")
    func valuesLeaveMemoryOnceWritten() throws {
        let engine = MemoryEngine()
        let storage = try MemberStorage(engine: engine)
        try storage.bootstrap(voters: [1])
        var member = Member(configuration: MemberConfiguration(id: 1), recovered: try storage.recover())
        var mostResident = 0
        func settle() throws {
            while member.hasBatch {
                let ready = member.startBatch()
                try storage.persist(ready)
                try storage.write(member.finishBatch())
                mostResident = max(mostResident, member.store.residentValueBytes)
                member.stateWritten()
            }
        }
        try settle()
        for _ in 0..<30 where member.raft.role != .leader {
            member.tick()
            try settle()
        }
        #expect(member.raft.role == .leader)

        func key(_ n: Int) -> [UInt8] { Array("key/\(n)".utf8) }
        func value(_ n: Int) -> [UInt8] { Array(repeating: UInt8(truncatingIfNeeded: n), count: 1024) }
        let perBatch = 100
        for batch in 0..<200 {
            for i in 0..<perBatch {
                let n = batch * perBatch + i
                let answer = member.submit(.write(.put(PutRequest(key: key(n), value: value(n)))), id: RequestID(n + 1))
                #expect(answer == nil, "put \(n) was refused")
            }
            try settle()
        }
        #expect(member.store.keyCount == 20_000)
        #expect(member.store.residentValueBytes == 0)
        #expect(mostResident <= perBatch * 1024, "at most one batch of values was ever resident")

        // Overwrite one key: reads at the current and the previous revision come from storage.
        let revisionBefore = member.store.currentRevision
        #expect(member.submit(.write(.put(PutRequest(key: key(7), value: value(8)))), id: 100_000) == nil)
        try settle()
        #expect(try member.store.range(RangeRequest(key: key(7))).kvs.first?.value == value(8))
        #expect(try member.store.range(RangeRequest(key: key(7), revision: revisionBefore)).kvs.first?.value == value(7))

        // A restart reads the key index back; the values stay on disk.
        let restarted = try MemberStorage(engine: engine).recover()
        #expect(restarted.store.residentValueBytes == 0)
        #expect(restarted.store.keyCount == 20_000)
        #expect(try restarted.store.range(RangeRequest(key: key(19_999))).kvs.first?.value == value(19_999))
        #expect(restarted.store.digest() == member.store.digest())
    }
}
