import Foundation
import Glibc
import RocksDB
import TestSupport
import Testing

@Suite("Crash recovery", .onOwnThreads)
struct CrashTests {

    @Test func syncedWritesSurviveSIGKILL() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/db"
            let process = Process()
            let writer: URL = try #require(builtExecutable(named: "rocksdb-crash-writer"), "build rocksdb-crash-writer first")
            process.executableURL = writer
            process.arguments = [path, "1000000"]
            let output = Pipe()
            process.standardOutput = output
            try process.run()

            // Let the writer acknowledge some writes, then kill it mid-stream.
            let reader = output.fileHandleForReading
            var received = Data()
            while received.count(where: { $0 == UInt8(ascii: "\n") }) < 300 {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                received.append(chunk)
            }
            #expect(kill(process.processIdentifier, SIGKILL) == 0)
            received.append(reader.readDataToEndOfFile())
            process.waitUntilExit()
            #expect(process.terminationReason == .uncaughtSignal)
            #expect(process.terminationStatus == SIGKILL)

            // Only newline-terminated lines are acknowledged writes.
            var acknowledged = received.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            acknowledged.removeLast()
            #expect(acknowledged.count >= 300)

            let database = try Database(path: path, options: Database.Options(createIfMissing: false))
            for line in acknowledged {
                let key = String(decoding: line, as: UTF8.self)
                let index = try #require(Int(key.dropFirst("key-".count)))
                #expect(try database.get(Array(line)) == bytes("value-\(index)"), "lost \(key)")
            }
            // Every key present was written in order, so the keys form a prefix of 0, 1, 2, ….
            let stored = try database.scan().count
            #expect(stored >= acknowledged.count && stored <= acknowledged.count + 1)
        }
    }
}
