import Foundation
import RocksDB
import Testing

@Suite("WriteBatch")
struct WriteBatchTests {
    @Test func appliesAllOperationsOnlyWhenWritten() throws {
        try withTemporaryDatabase { database, _ in
            try database.put([("stale", "x"), ("keep", "k")])
            let batch = WriteBatch()
            batch.put(bytes("a"), bytes("1"))
            batch.put(bytes("b"), bytes("2"))
            batch.delete(bytes("stale"))
            batch.put(bytes("a"), bytes("1b"))  // Later operations win.
            #expect(batch.count == 4)

            #expect(try database.get(bytes("a")) == nil)
            #expect(try database.get(bytes("stale")) == bytes("x"))

            try database.write(batch, sync: true)
            #expect(try database.get(bytes("a")) == bytes("1b"))
            #expect(try database.get(bytes("b")) == bytes("2"))
            #expect(try database.get(bytes("stale")) == nil)
            #expect(try database.get(bytes("keep")) == bytes("k"))

            batch.clear()
            #expect(batch.count == 0)
            batch.delete(bytes("keep"))
            try database.write(batch, sync: false)
            #expect(try database.get(bytes("keep")) == nil)
            #expect(try database.get(bytes("a")) == bytes("1b"))
        }
    }

    @Test func deleteRangeRemovesOnlyTheHalfOpenRange() throws {
        try withTemporaryDatabase { database, _ in
            try database.put(["a", "b", "b1", "c", "c1", "d", "e"].map { ($0, "v") })
            try database.flush()  // The range tombstone must also hide data in SST files.
            try database.put([("b2", "memtable")])

            let batch = WriteBatch()
            batch.deleteRange(from: bytes("b"), to: bytes("d"))
            batch.deleteRange(from: bytes("e"), to: bytes("a"))  // Empty range: ignored.
            #expect(batch.count == 1)
            try database.write(batch, sync: false)

            #expect(keys(try database.scan()) == ["a", "d", "e"])
            try database.compactRange()
            #expect(keys(try database.scan()) == ["a", "d", "e"])
        }
    }

    @Test func concurrentReadersNeverSeeAPartialBatch() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let database = try Database(path: directory + "/db")
            let rounds = 300
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    let batch = WriteBatch()
                    for round in 1...rounds {
                        batch.clear()
                        batch.put(bytes("left"), bytes("\(round)"))
                        batch.put(bytes("right"), bytes("\(round)"))
                        try database.write(batch, sync: false)
                    }
                }
                group.addTask {
                    var sawFinal = false
                    while !sawFinal {
                        try Task.checkCancellation()
                        let snapshot = try database.snapshot()
                        let left = try database.get(bytes("left"), snapshot: snapshot)
                        let right = try database.get(bytes("right"), snapshot: snapshot)
                        #expect(left == right)
                        sawFinal = left == bytes("\(rounds)")
                    }
                }
                try await group.waitForAll()
            }
        }
    }
}
