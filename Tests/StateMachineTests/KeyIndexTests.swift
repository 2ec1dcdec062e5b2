import Primitives
import RaftCore
import Testing

@testable import StateMachine

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
