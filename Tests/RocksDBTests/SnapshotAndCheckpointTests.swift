import Foundation
import RocksDB
import Testing

@Suite("Snapshots and checkpoints")
struct SnapshotAndCheckpointTests {
    @Test func snapshotHidesLaterWrites() throws {
        try withTemporaryDatabase { database, _ in
            try database.put([("a", "1"), ("b", "2"), ("c", "3")])
            let snapshot = try database.snapshot()

            try database.put([("a", "changed"), ("d", "new")])
            try database.delete(bytes("b"), sync: false)
            let batch = WriteBatch()
            batch.deleteRange(from: bytes("c"), to: bytes("z"))
            try database.write(batch, sync: false)
            try database.flush()

            #expect(try database.get(bytes("a"), snapshot: snapshot) == bytes("1"))
            #expect(try database.get(bytes("b"), snapshot: snapshot) == bytes("2"))
            #expect(try database.get(bytes("d"), snapshot: snapshot) == nil)
            #expect(keys(try database.scan(snapshot: snapshot)) == ["a", "b", "c"])
            #expect(keys(try database.scan(reverse: true, snapshot: snapshot)) == ["c", "b", "a"])

            let iterator = try database.makeIterator(snapshot: snapshot)
            iterator.seek(to: bytes("b"))
            #expect(iterator.value == bytes("2"))

            // Without the snapshot, the latest state is visible.
            #expect(try database.get(bytes("a")) == bytes("changed"))
            #expect(keys(try database.scan()) == ["a"])
        }
    }

    @Test func iteratorWithoutSnapshotReadsStateAtCreation() throws {
        try withTemporaryDatabase { database, _ in
            try database.put([("a", "1")])
            let iterator = try database.makeIterator()
            try database.put([("b", "2")])
            iterator.seekToFirst()
            iterator.next()
            #expect(!iterator.isValid)
        }
    }

    @Test func checkpointOpensAsSeparateDatabaseWithSameContents() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/db"
            let checkpointPath = directory + "/checkpoint"
            let database = try Database(path: path)
            try database.put((0..<500).map { (String(format: "key-%03d", $0), "value-\($0)") })
            try database.flush()
            try database.put([("memtable-only", "x")])
            try database.delete(bytes("key-010"), sync: false)
            let original = try database.scan()

            try database.createCheckpoint(at: checkpointPath)
            try database.put([("after-checkpoint", "y")])

            let copy = try Database(path: checkpointPath, options: Database.Options(createIfMissing: false))
            #expect(try copy.scan() == original)
            #expect(try copy.get(bytes("after-checkpoint")) == nil)
            try copy.put(bytes("only-in-copy"), bytes("z"), sync: true)
            #expect(try database.get(bytes("only-in-copy")) == nil)

            let error = #expect(throws: RocksDBError.self) { try database.createCheckpoint(at: checkpointPath) }
            #expect(error?.message.isEmpty == false)
        }
    }
}
