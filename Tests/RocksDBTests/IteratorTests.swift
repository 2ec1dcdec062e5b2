import Foundation
import RocksDB
import Testing

@Suite("Iteration")
struct IteratorTests {
    @Test func iteratesInUnsignedBytewiseOrderBothWays() throws {
        try withTemporaryDatabase { database, _ in
            let keys: [[UInt8]] = [[0xFF], [0x80], [0x01, 0x00], [0x01], [], [0x00], [0x7F, 0xFF]]
            for key in keys {
                try database.put(key, key, sync: false)
            }
            let expected: [[UInt8]] = [[], [0x00], [0x01], [0x01, 0x00], [0x7F, 0xFF], [0x80], [0xFF]]

            let iterator = try database.makeIterator()
            #expect(!iterator.isValid)
            iterator.seekToFirst()
            var forward: [[UInt8]] = []
            while iterator.isValid {
                #expect(iterator.value == iterator.key)
                forward.append(iterator.key)
                iterator.next()
            }
            try iterator.checkError()
            #expect(forward == expected)

            iterator.seekToLast()
            var backward: [[UInt8]] = []
            while iterator.isValid {
                backward.append(iterator.key)
                iterator.previous()
            }
            #expect(backward == expected.reversed())
        }
    }

    @Test func seekAndSeekForPrev() throws {
        try withTemporaryDatabase { database, _ in
            try database.put([("b", "1"), ("d", "2"), ("f", "3")])
            let iterator = try database.makeIterator()

            iterator.seek(to: bytes("c"))
            #expect(iterator.key == bytes("d"))
            iterator.seek(to: bytes("d"))
            #expect(iterator.key == bytes("d"))
            #expect(iterator.value == bytes("2"))
            iterator.seek(to: bytes("g"))
            #expect(!iterator.isValid)

            iterator.seekForPrev(bytes("e"))
            #expect(iterator.key == bytes("d"))
            iterator.seekForPrev(bytes("d"))
            #expect(iterator.key == bytes("d"))
            iterator.previous()
            #expect(iterator.key == bytes("b"))
            iterator.seekForPrev(bytes("a"))
            #expect(!iterator.isValid)
            iterator.seekForPrev(bytes("zzz"))
            #expect(iterator.key == bytes("f"))
        }
    }

    @Test func iteratorBoundsLimitTheVisibleKeys() throws {
        try withTemporaryDatabase { database, _ in
            try database.put(["a", "b", "c", "d", "e"].map { ($0, "v") })
            let iterator = try database.makeIterator(lowerBound: bytes("b"), upperBound: bytes("d"))
            iterator.seekToFirst()
            #expect(iterator.key == bytes("b"))
            iterator.seekToLast()
            #expect(iterator.key == bytes("c"))
            iterator.next()
            #expect(!iterator.isValid)
            iterator.seek(to: bytes("d"))
            #expect(!iterator.isValid)
        }
    }

    @Test func prefixScans() throws {
        try withTemporaryDatabase { database, _ in
            try database.put(["app", "apple", "apply", "apq", "ap", "b"].map { ($0, "v") })
            try database.put([0x01, 0xFF], [1], sync: false)
            try database.put([0x01, 0xFF, 0x00], [2], sync: false)
            try database.put([0x02], [3], sync: false)
            try database.put([0xFF, 0xFF, 0x01], [4], sync: false)

            #expect(keys(try database.scan(prefix: bytes("app"))) == ["app", "apple", "apply"])
            #expect(keys(try database.scan(prefix: bytes("app"), reverse: true)) == ["apply", "apple", "app"])
            #expect(keys(try database.scan(prefix: bytes("app"), limit: 2)) == ["app", "apple"])
            #expect(keys(try database.scan(prefix: bytes("appz"))) == [])
            // Prefixes ending in 0xFF must not stop early or leak into the next prefix.
            #expect(try database.scan(prefix: [0x01, 0xFF]).map(\.value) == [[1], [2]])
            #expect(try database.scan(prefix: [0xFF, 0xFF]).map(\.value) == [[4]])
            #expect(try database.scan(prefix: []).count == 10)

            var visited: [String] = []
            try database.scan(prefix: bytes("ap"), reverse: true) { key, _ in
                visited.append(String(decoding: key, as: UTF8.self))
                return visited.count < 3
            }
            #expect(visited == ["apq", "apply", "apple"])
        }
    }

    @Test func rangeScansForwardReverseAndLimits() throws {
        try withTemporaryDatabase { database, _ in
            try database.put((0..<10).map { ("k\($0)", "v\($0)") })

            let forward = try database.scan(from: bytes("k2"), to: bytes("k5"))
            #expect(keys(forward) == ["k2", "k3", "k4"])
            #expect(forward.first?.value == bytes("v2"))
            #expect(keys(try database.scan(from: bytes("k2"), to: bytes("k5"), reverse: true)) == ["k4", "k3", "k2"])
            #expect(keys(try database.scan(from: bytes("k7"))) == ["k7", "k8", "k9"])
            #expect(keys(try database.scan(to: bytes("k1"))) == ["k0"])
            #expect(keys(try database.scan(reverse: true, limit: 2)) == ["k9", "k8"])
            #expect(keys(try database.scan(from: bytes("k3"), reverse: true, limit: 2)) == ["k9", "k8"])
            #expect(keys(try database.scan(from: bytes("k2a"), to: bytes("k4a"))) == ["k3", "k4"])
            #expect(try database.scan(limit: 0).isEmpty)
            #expect(try database.scan(limit: 100).count == 10)
        }
    }

    @Test func emptyRangesReturnNothing() throws {
        try withTemporaryDatabase { database, _ in
            #expect(try database.scan().isEmpty)
            #expect(try database.scan(reverse: true).isEmpty)
            try database.put([("a", "1"), ("b", "2"), ("c", "3")])
            #expect(try database.scan(from: bytes("b"), to: bytes("b")).isEmpty)
            #expect(try database.scan(from: bytes("c"), to: bytes("a")).isEmpty)
            #expect(try database.scan(from: bytes("c"), to: bytes("a"), reverse: true).isEmpty)
            #expect(try database.scan(from: bytes("b0"), to: bytes("b9")).isEmpty)
            #expect(try database.scan(from: bytes("d")).isEmpty)
            #expect(try database.scan(prefix: bytes("z"), reverse: true).isEmpty)
        }
    }

    @Test func corruptionIsSurfacedByIteratorsAndGets() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/db"
            let options = Database.Options(compression: .none)
            do {
                let database = try Database(path: path, options: options)
                for index in 0..<2_000 {
                    try database.put(bytes(String(format: "key-%05d", index)), [UInt8](repeating: 0x42, count: 100), sync: false)
                }
                try database.flush()
            }
            // Data blocks come first in an SST file; overwrite part of the first one.
            let files = try FileManager.default.contentsOfDirectory(atPath: path)
            let sst = try #require(files.first { $0.hasSuffix(".sst") })
            let handle = try #require(FileHandle(forUpdatingAtPath: path + "/" + sst))
            try handle.seek(toOffset: 64)
            handle.write(Data(repeating: 0xEE, count: 64))
            try handle.close()

            let database = try Database(path: path, options: options)
            let iterator = try database.makeIterator()
            iterator.seekToFirst()
            #expect(!iterator.isValid)
            let error = #expect(throws: RocksDBError.self) { try iterator.checkError() }
            #expect(error?.message.hasPrefix("Corruption") == true)

            let getError = #expect(throws: RocksDBError.self) { try database.get(bytes("key-00000")) }
            #expect(getError?.message.hasPrefix("Corruption") == true)
            #expect(throws: RocksDBError.self) { try database.scan() }
        }
    }
}
