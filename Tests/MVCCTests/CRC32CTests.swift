import RaftCore
import Testing

@testable import MVCC

@Suite struct CRC32CTests {
    @Test func standardCheckValue() {
        // The CRC-32C (Castagnoli) check value from the CRC catalogue.
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([]) == 0)
    }

    @Test func incrementalEqualsOneShot() {
        let data = Array("hello, statehouse".utf8)
        var crc = CRC32C()
        crc.update(Array(data.prefix(5)))
        crc.update(Array(data.dropFirst(5)))
        #expect(crc.value == CRC32C.checksum(data))
    }
}

@Suite struct KeyIndexTests {
    @Test func staysSortedAcrossSplitsAndRemovals() {
        var index = KeyIndex()
        var rng = SeededGenerator(seed: 7)
        var reference = Set<[UInt8]>()
        for _ in 0..<5000 {
            let key = Array("k\(Int.random(in: 0..<3000, using: &rng))".utf8)
            let p = index.lowerBound(key)
            if index.holds(key, at: p) {
                if Bool.random(using: &rng) {
                    index.remove(at: p)
                    reference.remove(key)
                }
            } else {
                let q = index.insert(KeyEntry(key: key, history: []), at: p)
                #expect(index[q].key == key)
                reference.insert(key)
            }
        }
        var walked: [[UInt8]] = []
        index.forEach(in: .from([0])) { entry in
            walked.append(entry.key)
            return true
        }
        #expect(walked == reference.sorted { $0.lexicographicallyPrecedes($1) })
        #expect(index.count == reference.count)
        #expect(index.chunks.allSatisfy { !$0.isEmpty && $0.count <= KeyIndex.maxChunkSize })
    }
}
