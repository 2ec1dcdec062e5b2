import Foundation
import RocksDB
import Testing

@Suite("Database")
struct DatabaseTests {
    @Test func putGetDeleteRoundTrip() throws {
        try withTemporaryDatabase { database, _ in
            try database.put(bytes("alpha"), bytes("1"), sync: false)
            try database.put(bytes("beta"), bytes("2"), sync: true)
            #expect(try database.get(bytes("alpha")) == bytes("1"))
            #expect(try database.get(bytes("beta")) == bytes("2"))

            try database.put(bytes("alpha"), bytes("one"), sync: false)
            #expect(try database.get(bytes("alpha")) == bytes("one"))

            try database.delete(bytes("alpha"), sync: false)
            #expect(try database.get(bytes("alpha")) == nil)
            #expect(try database.get(bytes("beta")) == bytes("2"))
        }
    }

    @Test func missingKeysReturnNil() throws {
        try withTemporaryDatabase { database, _ in
            #expect(try database.get(bytes("absent")) == nil)
            try database.delete(bytes("absent"), sync: false)
            #expect(try database.get(bytes("absent")) == nil)
        }
    }

    @Test func binaryKeysAndValuesWithZeroBytes() throws {
        try withTemporaryDatabase { database, _ in
            let key: [UInt8] = [0, 1, 0, 0xFF, 0]
            let prefixOfKey: [UInt8] = [0, 1]
            let value: [UInt8] = [0, 0, 0xFE, 0]
            try database.put(key, value, sync: false)
            try database.put(prefixOfKey, [7], sync: false)
            try database.put([], [], sync: false)

            #expect(try database.get(key) == value)
            #expect(try database.get(prefixOfKey) == [7])
            #expect(try database.get([0, 1, 0]) == nil)
            // The empty key is a real key, and an empty value is distinct from a missing one.
            #expect(try database.get([]) == [])
            try database.delete([], sync: false)
            #expect(try database.get([]) == nil)
        }
    }

    @Test func reopenAfterCloseKeepsSyncedData() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/db"
            let database = try Database(path: path)
            for index in 0..<100 {
                try database.put(bytes("key-\(index)"), bytes("value-\(index)"), sync: true)
            }
            try database.delete(bytes("key-7"), sync: true)
            try database.close()

            let reopened = try Database(path: path, options: Database.Options(createIfMissing: false))
            #expect(try reopened.get(bytes("key-0")) == bytes("value-0"))
            #expect(try reopened.get(bytes("key-99")) == bytes("value-99"))
            #expect(try reopened.get(bytes("key-7")) == nil)
            #expect(try reopened.scan().count == 99)
        }
    }

    @Test func operationsOnClosedDatabaseThrow() throws {
        try withTemporaryDatabase { database, path in
            try database.close()
            try database.close()  // Closing twice is allowed.
            let error = #expect(throws: RocksDBError.self) { try database.get(bytes("k")) }
            #expect(error?.message.contains("closed") == true)
            #expect(throws: RocksDBError.self) { try database.put(bytes("k"), bytes("v"), sync: false) }
            #expect(throws: RocksDBError.self) { try database.makeIterator() }
            #expect(throws: RocksDBError.self) { try database.snapshot() }
            // The lock file was released, so the path can be opened again.
            let reopened = try Database(path: path)
            #expect(try reopened.get(bytes("k")) == nil)
        }
    }

    @Test func closeFailsWhileIteratorsOrSnapshotsAreAlive() throws {
        try withTemporaryDatabase { database, _ in
            try database.put(bytes("k"), bytes("v"), sync: false)
            var iterator: Database.Iterator? = try database.makeIterator()
            var snapshot: Snapshot? = try database.snapshot()
            #expect(iterator != nil && snapshot != nil)

            let error = #expect(throws: RocksDBError.self) { try database.close() }
            #expect(error?.message.contains("2 iterator(s) or snapshot(s)") == true)
            #expect(try database.get(bytes("k")) == bytes("v"))

            iterator = nil
            #expect(throws: RocksDBError.self) { try database.close() }
            snapshot = nil
            try database.close()
            #expect(throws: RocksDBError.self) { try database.get(bytes("k")) }
        }
    }

    @Test(arguments: Database.Compression.allCases)
    func everyCompressionRoundTripsThroughSSTFiles(compression: Database.Compression) throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/db"
            let options = Database.Options(
                compression: compression, writeBufferSize: 1 << 20, maxOpenFiles: 64)
            let value = [UInt8](repeating: 0x61, count: 1_000)
            do {
                let database = try Database(path: path, options: options)
                for index in 0..<200 {
                    try database.put(bytes("key-\(index)"), value, sync: false)
                }
                try database.flush()
                #expect(try database.property("rocksdb.num-files-at-level0") == "1")
            }
            let reopened = try Database(path: path, options: options)
            #expect(try reopened.get(bytes("key-123")) == value)
        }
    }

    @Test func propertiesApproximateSizeAndCompaction() throws {
        try withTemporaryDatabase(options: Database.Options(compression: .none)) { database, _ in
            #expect(try database.property("rocksdb.no-such-property") == nil)
            #expect(try database.property("rocksdb.total-sst-files-size") == "0")

            let value = [UInt8](repeating: 0x5A, count: 1_024)
            for index in 0..<1_000 {
                try database.put(bytes(String(format: "key-%04d", index)), value, sync: false)
            }
            #expect(try database.approximateSize(from: bytes("key-"), to: bytes("key.")) == 0)
            try database.flush()

            let sstSize = try #require(UInt64(database.property("rocksdb.total-sst-files-size") ?? ""))
            #expect(sstSize > 1_000 * 1_024)
            let liveSize = try #require(UInt64(database.property("rocksdb.estimate-live-data-size") ?? ""))
            #expect(liveSize > 0)
            let all = try database.approximateSize(from: bytes("key-"), to: bytes("key."))
            let half = try database.approximateSize(from: bytes("key-0000"), to: bytes("key-0500"))
            #expect(all > 900 * 1_024)
            #expect(half > 0 && half < all)
            #expect(try database.approximateSize(from: bytes("zzz"), to: bytes("zzzz")) == 0)

            for index in 0..<1_000 {
                try database.delete(bytes(String(format: "key-%04d", index)), sync: false)
            }
            try database.compactRange()
            #expect(try database.property("rocksdb.total-sst-files-size") == "0")
            #expect(try database.scan().isEmpty)
        }
    }
}
