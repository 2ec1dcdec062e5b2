import Storage
import Testing

@Suite("StorageEngine contract, on both engines")
struct EngineTests {
    @Test(arguments: EngineKind.allCases)
    func putGetDelete(kind: EngineKind) throws {
        let fixture = try kind.make()
        let engine = fixture.engine
        #expect(try engine.get(bytes("k/a")) == nil)
        var batch = StorageBatch()
        batch.put(bytes("k/a"), bytes("1"))
        batch.put(bytes("k/b"), [])
        try engine.write(batch, sync: true)
        #expect(try engine.get(bytes("k/a")) == bytes("1"))
        #expect(try engine.get(bytes("k/b")) == [])
        var delete = StorageBatch()
        delete.delete(bytes("k/a"))
        delete.delete(bytes("k/missing"))
        try engine.write(delete, sync: false)
        #expect(try engine.get(bytes("k/a")) == nil)
        #expect(try engine.get(bytes("k/b")) == [])
    }

    @Test(arguments: EngineKind.allCases)
    func operationsApplyInOrder(kind: EngineKind) throws {
        let fixture = try kind.make()
        var batch = StorageBatch()
        batch.put(bytes("x"), bytes("1"))
        batch.delete(bytes("x"))
        batch.delete(bytes("y"))
        batch.put(bytes("y"), bytes("2"))
        batch.put(bytes("z"), bytes("3"))
        batch.deleteRange(from: bytes("z"), to: bytes("z\u{0}"))
        batch.put(bytes("w"), bytes("4"))
        batch.put(bytes("w"), bytes("5"))
        try fixture.engine.write(batch, sync: true)
        #expect(try fixture.engine.get(bytes("x")) == nil)
        #expect(try fixture.engine.get(bytes("y")) == bytes("2"))
        #expect(try fixture.engine.get(bytes("z")) == nil)
        #expect(try fixture.engine.get(bytes("w")) == bytes("5"))
    }

    @Test(arguments: EngineKind.allCases)
    func deleteRangeIsHalfOpen(kind: EngineKind) throws {
        let fixture = try kind.make()
        var batch = StorageBatch()
        for key in ["a", "b", "b\u{0}", "ba", "c", "d"] { batch.put(bytes(key), bytes(key)) }
        try fixture.engine.write(batch, sync: true)
        var range = StorageBatch()
        range.deleteRange(from: bytes("b"), to: bytes("c"))
        try fixture.engine.write(range, sync: true)
        let keys = try fixture.engine.scan(from: [], to: nil).map { String(decoding: $0.key, as: UTF8.self) }
        #expect(keys == ["a", "c", "d"])
    }

    @Test func emptyDeleteRangeIsDropped() {
        var batch = StorageBatch()
        batch.deleteRange(from: bytes("b"), to: bytes("b"))
        batch.deleteRange(from: bytes("c"), to: bytes("b"))
        #expect(batch.isEmpty)
        batch.append(.deleteRange(from: bytes("c"), to: bytes("a")))
        #expect(batch.isEmpty)
        batch.append(.deleteRange(from: bytes("a"), to: bytes("c")))
        #expect(batch.count == 1)
    }

    @Test(arguments: EngineKind.allCases)
    func scanIsBytewiseOrderedAndBounded(kind: EngineKind) throws {
        let fixture = try kind.make()
        let keys: [[UInt8]] = [[0x62], [0x61, 0xFF], [0x61], [0x61, 0x00], [0xFF, 0xFF], [0xFF], [0x00], [0x61, 0x80]]
        var batch = StorageBatch()
        for (offset, key) in keys.enumerated() { batch.put(key, [UInt8(offset)]) }
        try fixture.engine.write(batch, sync: false)
        let sorted: [[UInt8]] = [[0x00], [0x61], [0x61, 0x00], [0x61, 0x80], [0x61, 0xFF], [0x62], [0xFF], [0xFF, 0xFF]]
        #expect(try fixture.engine.scan(from: [], to: nil).map(\.key) == sorted)
        #expect(try fixture.engine.scan(from: [0x61], to: [0x62]).map(\.key) == Array(sorted[1...4]))
        #expect(try fixture.engine.scan(from: [0x61, 0x01], to: [0x62], limit: 2).map(\.key) == [[0x61, 0x80], [0x61, 0xFF]])
        #expect(
            try fixture.engine.scan(from: [0x61], to: [0x62], limit: 3, reverse: true).map(\.key)
                == [[0x61, 0xFF], [0x61, 0x80], [0x61, 0x00]])
        #expect(try fixture.engine.scan(prefix: [0x61]).map(\.key) == Array(sorted[1...4]))
        #expect(try fixture.engine.scan(prefix: [0xFF]).map(\.key) == [[0xFF], [0xFF, 0xFF]])
        #expect(try fixture.engine.scan(prefix: [0xFF], limit: 1, reverse: true).map(\.key) == [[0xFF, 0xFF]])
        #expect(try fixture.engine.scan(from: [0x62], to: [0x61]).isEmpty)
        #expect(try fixture.engine.scan(from: [], to: nil, limit: 0).isEmpty)
        let values = try fixture.engine.scan(prefix: [0x62]).map(\.value)
        #expect(values == [[0]])
    }

    @Test func keysAreDescribedReadably() {
        #expect(StorageError.describe(key: RaftLogStore.Keys.entry(258)) == "r/e/258")
        #expect(StorageError.describe(key: bytes("a/applied")) == "a/applied")
        #expect(StorageError.describe(key: [0x6B, 0x2F, 0x00, 0xFF, 0x5C]) == "k/\\x00\\xff\\x5c")
        let error = StorageError(.corruption, "bad", key: [0x01])
        #expect(error.description == "storage error (corruption) at key \\x01: bad")
    }

    @Test func keyAfterPrefixBoundsExactlyThePrefix() {
        #expect(keyAfterPrefix(bytes("r/e/")) == bytes("r/e0"))
        #expect(keyAfterPrefix([0x61, 0xFF, 0xFF]) == [0x62])
        #expect(keyAfterPrefix([0xFF, 0xFF]) == nil)
        #expect(keyAfterPrefix([]) == nil)
    }
}
