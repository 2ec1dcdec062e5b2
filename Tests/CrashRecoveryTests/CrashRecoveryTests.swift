import Foundation
import Glibc
import TestSupport
import Testing

/// Kills a single-member node (`crash-member`) with SIGKILL while it writes, restarts
/// it, and checks that every put it acknowledged survived, in order, with nothing after a gap.
@Suite("Crash recovery of a member on RocksDB", .serialized, .onOwnThreads)
struct CrashRecoveryTests {
    /// The `crash-member` executable built next to the test bundle.
    static var nodeExecutable: URL? { builtExecutable(named: "crash-member") }

    /// What one `write` run printed before it was killed.
    struct WriteRun {
        /// The first index it wrote (`start S`).
        var start: Int
        /// The acknowledged puts, in order.
        var acked: [Int]
    }

    /// What `verify` printed.
    struct Verified {
        var values: [String: String] = [:]
        var keys: [String] = []
        var applied: UInt64 = 0
        var revision: Int64 = 0
    }

    /// Runs `write DIR 100000`, kills it with SIGKILL once it acknowledged `killAfter` puts
    /// (past 10,000 the member has taken a snapshot and compacted its log),
    /// and returns what it acknowledged (every complete line it printed).
    static func writeAndKill(_ executable: URL, directory: String, killAfter: Int) throws -> WriteRun {
        let process = Process()
        process.executableURL = executable
        process.arguments = ["write", directory, "100000"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()

        let reader = output.fileHandleForReading
        var received = Data()
        var acks = 0
        while acks < killAfter {
            let chunk = reader.availableData
            if chunk.isEmpty { break }  // the node exited early; the checks below report it
            received.append(chunk)
            acks = countAcks(received)
        }
        #expect(kill(process.processIdentifier, SIGKILL) == 0)
        received.append(reader.readDataToEndOfFile())
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal, "the node exited on its own")
        #expect(process.terminationStatus == SIGKILL)

        // Only newline-terminated lines were printed whole.
        var lines = received.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        lines.removeLast()
        var run = WriteRun(start: -1, acked: [])
        for line in lines.map({ String(decoding: $0, as: UTF8.self) }) {
            if line.hasPrefix("start "), let start = Int(line.dropFirst(6)) {
                run.start = start
            } else if line.hasPrefix("acked "), let index = Int(line.dropFirst(6)) {
                run.acked.append(index)
            } else {
                Issue.record("unexpected output line \(line)")
            }
        }
        #expect(run.start >= 0, "no start line")
        #expect(run.acked.count >= killAfter, "the node acknowledged only \(run.acked.count) puts")
        #expect(run.acked == Array(run.start..<run.start + run.acked.count), "acknowledgements out of order")
        return run
    }

    static func countAcks(_ data: Data) -> Int {
        var count = 0
        var lineStart = data.startIndex
        for index in data.indices where data[index] == UInt8(ascii: "\n") {
            if data[lineStart] == UInt8(ascii: "a") { count += 1 }
            lineStart = index + 1
        }
        return count
    }

    /// Runs `verify DIR` and parses its output.
    static func verify(_ executable: URL, directory: String) throws -> Verified {
        let process = Process()
        process.executableURL = executable
        process.arguments = ["verify", directory]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 0, "verify failed")
        var verified = Verified()
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init) {
            if let equals = line.firstIndex(of: "=") {
                let key = String(line[..<equals])
                verified.keys.append(key)
                verified.values[key] = String(line[line.index(after: equals)...])
            } else if line.hasPrefix("applied ") {
                verified.applied = UInt64(line.dropFirst(8)) ?? 0
            } else if line.hasPrefix("revision ") {
                verified.revision = Int64(line.dropFirst(9)) ?? 0
            } else if !line.hasPrefix("recovered ") {
                Issue.record("unexpected verify line \(line)")
            }
        }
        return verified
    }

    /// Checks that every acknowledged put survived and that the keys are exactly 0..<M, M ≥ the
    /// acknowledged ones (puts apply in order, so nothing follows a gap); returns M.
    @discardableResult
    static func checkRecovered(_ verified: Verified, acked: [Int]) -> Int {
        for index in acked {
            let value = verified.values["key-\(index)"]
            guard value == "value-\(index)" else {
                Issue.record("acknowledged put \(index) lost or wrong after the crash: \(String(describing: value))")
                return 0
            }
        }
        let count = verified.values.count
        #expect(count == verified.keys.count, "a key was listed twice")
        #expect(count >= (acked.max().map { $0 + 1 } ?? 0))
        let missing = (0..<count).filter { verified.values["key-\($0)"] != "value-\($0)" }
        #expect(missing.isEmpty, "keys are not exactly 0..<\(count): e.g. \(missing.prefix(5)) missing or wrong")
        // An empty store is at revision 1 and every put takes one revision.
        #expect(verified.revision == Int64(count) + 1)
        return count
    }

    static func withTemporaryDirectory(_ body: (String) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("statehouse-crash-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try body(directory.appendingPathComponent("member").path)
    }

    @Test("acknowledged puts survive SIGKILL", arguments: [500, 2_000, 5_000, 25_000])
    func acknowledgedPutsSurviveKill(killAfter: Int) throws {
        let executable = try #require(Self.nodeExecutable, "build the crash-member product first")
        try Self.withTemporaryDirectory { directory in
            let run = try Self.writeAndKill(executable, directory: directory, killAfter: killAfter)
            #expect(run.start == 0)
            let verified = try Self.verify(executable, directory: directory)
            Self.checkRecovered(verified, acked: run.acked)
            // Verifying again (after verify itself wrote) changes nothing.
            let again = try Self.verify(executable, directory: directory)
            #expect(again.values == verified.values && again.revision == verified.revision && again.applied == verified.applied)
        }
    }

    @Test("a restarted member keeps writing, and survives a second SIGKILL")
    func killRestartKill() throws {
        let executable = try #require(Self.nodeExecutable, "build the crash-member product first")
        try Self.withTemporaryDirectory { directory in
            let first = try Self.writeAndKill(executable, directory: directory, killAfter: 1_500)
            let afterFirst = Self.checkRecovered(try Self.verify(executable, directory: directory), acked: first.acked)

            // The restarted member continues after every key it holds (its election may apply
            // puts that were durable in the log but not yet acknowledged).
            let second = try Self.writeAndKill(executable, directory: directory, killAfter: 1_500)
            #expect(second.start >= afterFirst)
            let verified = try Self.verify(executable, directory: directory)
            let count = Self.checkRecovered(verified, acked: first.acked + second.acked)
            #expect(count >= second.start + second.acked.count)
        }
    }

    @Test("a write run that completes leaves exactly its puts")
    func cleanRun() throws {
        let executable = try #require(Self.nodeExecutable, "build the crash-member product first")
        try Self.withTemporaryDirectory { directory in
            for (start, count) in [(0, 300), (300, 200)] {
                let process = Process()
                process.executableURL = executable
                process.arguments = ["write", directory, String(count)]
                let output = Pipe()
                process.standardOutput = output
                try process.run()
                let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                process.waitUntilExit()
                #expect(process.terminationReason == .exit && process.terminationStatus == 0)
                let expected = ["start \(start)"] + (start..<start + count).map { "acked \($0)" }
                #expect(text.split(separator: "\n").map(String.init) == expected)
            }
            let verified = try Self.verify(executable, directory: directory)
            #expect(Self.checkRecovered(verified, acked: Array(0..<500)) == 500)
            let inKeyOrder = verified.keys == (0..<500).map { "key-\($0)" }.sorted()
            #expect(inKeyOrder, "verify did not list exactly the 500 keys in key order")
        }
    }
}
