import ClusterSimulation
import Foundation
import TestSupport
import Testing

/// Swift seeds its hashing per process, so a run that (wrongly) depended on dictionary order
/// would still replay within one process. These tests replay seeds in separate processes.
@Suite("Replay across processes", .onOwnThreads)
struct ReplayTests {
    /// The `simulate` executable built next to the test bundle.
    static var simulateExecutable: URL? { builtExecutable(named: "simulate") }

    static func traceHash(ofSeed seed: UInt64, executable: URL) throws -> String? {
        let process = Process()
        process.executableURL = executable
        process.arguments = ["--seed", String(seed)]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard let range = text.range(of: "trace ") else { return nil }
        return String(text[range.upperBound...].prefix(16))
    }

    @Test("`simulate --seed S` prints the same trace hash in every process, equal to an in-process run")
    func replayAcrossProcesses() throws {
        let executable = try #require(Self.simulateExecutable, "build the simulate product first (make test does)")
        for seed: UInt64 in [3, 77, 404] {
            let first = try Self.traceHash(ofSeed: seed, executable: executable)
            let second = try Self.traceHash(ofSeed: seed, executable: executable)
            let hash = String(runSeed(seed).traceHash, radix: 16)
            let expected = String(repeating: "0", count: 16 - hash.count) + hash
            #expect(
                first == expected && second == expected,
                "seed \(seed): \(String(describing: first)), \(String(describing: second)), in-process \(expected)")
        }
    }
}
