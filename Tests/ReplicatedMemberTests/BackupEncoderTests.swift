import BackupFormat
import Primitives
import ReplicatedMember
import Testing

/// The streamed backup is byte for byte the one-piece backup, whatever the chunk size.
@Suite struct BackupEncoderTests {
    func randomPairs(count: Int, seed: UInt64) -> [([UInt8], [UInt8])] {
        var rng = SeededGenerator(seed: seed)
        return (0..<count).map { i in
            let key = Array("k/\(i)".utf8)
            let value = (0..<Int.random(in: 0..<3000, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            return (key, value)
        }
    }

    func streamed(_ pairs: [([UInt8], [UInt8])], chunkSize: Int) throws -> (file: [UInt8], chunks: Int) {
        var size = BackupEncoder.Size()
        for (key, value) in pairs { size.add(key: key, value: value) }
        var encoder = BackupEncoder(size: size)
        var file: [UInt8] = []
        var chunks = 0
        var next = 0
        while !encoder.isComplete {
            while encoder.pendingBytes < chunkSize && next < pairs.count {
                encoder.add(key: pairs[next].0, value: pairs[next].1)
                next += 1
            }
            if next == pairs.count { try encoder.finish() }
            let chunk = encoder.take(upTo: chunkSize)
            #expect(chunk.count <= chunkSize)
            file += chunk
            chunks += 1
            #expect(encoder.takenBytes == file.count)
        }
        #expect(encoder.fileBytes == file.count)
        return (file, chunks)
    }

    @Test(arguments: [(0, 1), (1, 2), (40, 3), (300, 4)])
    func streamedEqualsInMemory(count: Int, seed: UInt64) throws {
        let pairs = randomPairs(count: count, seed: seed)
        let expected = BackupFile.encode(pairs: pairs)
        for chunkSize in [1, 100, 512, 4096, 64 << 10, 1 << 30] where chunkSize > 1 || count < 10 {
            let (file, chunks) = try streamed(pairs, chunkSize: chunkSize)
            let identical = file == expected
            #expect(identical, "\(count) pairs in chunks of \(chunkSize): \(file.count) bytes, expected \(expected.count)")
            #expect(chunks == (expected.count + chunkSize - 1) / chunkSize)
        }
        let decoded = try BackupFile.decode(try streamed(pairs, chunkSize: 4096).file)
        #expect(decoded.count == pairs.count && zip(decoded, pairs).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 })
    }

    @Test func pairsThatDifferFromTheSizeAreRefused() throws {
        let pairs = randomPairs(count: 5, seed: 9)
        var size = BackupEncoder.Size()
        for (key, value) in pairs { size.add(key: key, value: value) }
        var encoder = BackupEncoder(size: size)
        for (key, value) in pairs.dropLast() { encoder.add(key: key, value: value) }
        #expect(throws: BackupEncoder.SizeMismatch.self) { try encoder.finish() }
    }
}
