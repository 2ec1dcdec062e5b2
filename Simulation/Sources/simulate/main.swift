import ArgumentParser
@_spi(Testing) import RaftCore
@_spi(Testing) import RaftSimulation

@main
struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Runs Statehouse's Raft core in the deterministic simulator.",
        discussion: """
            Each seed runs a 3- or 5-member group (drawn from the seed unless --nodes is given) under \
            seeded message loss, duplication, delay and reordering, symmetric and asymmetric partitions, \
            crashes that lose unsynced writes, process pauses and clock skew, with a client workload of \
            writes and linearizable reads. After the fault phase everything heals and the group must \
            converge. The same seed always prints the same trace hash.
            """)

    @Option(help: "Run one seed and print its trace hash.")
    var seed: UInt64?

    @Option(help: "Run a range of seeds, e.g. 1..500 (inclusive).")
    var seeds: String?

    @Option(help: "Number of members (3 or 5); drawn from each seed when omitted.")
    var nodes: Int?

    @Option(
        help:
            "Break one Raft rule on purpose to show the checker catches it: \(RaftMutation.allCases.map(\.rawValue).joined(separator: ", "))."
    )
    var mutation: String?

    @Flag(help: "Print every run, not only failures.")
    var verbose = false

    func validate() throws {
        if seed == nil && seeds == nil { throw ValidationError("give --seed S or --seeds A..B") }
        if let nodes, nodes != 3 && nodes != 5 { throw ValidationError("--nodes must be 3 or 5, got \(nodes)") }
        if let seeds, parseRange(seeds) == nil { throw ValidationError("--seeds must look like A..B with A <= B, got '\(seeds)'") }
        if let mutation, RaftMutation(rawValue: mutation) == nil {
            throw ValidationError(
                "--mutation must be one of \(RaftMutation.allCases.map(\.rawValue).joined(separator: ", ")), got '\(mutation)'")
        }
    }

    func run() throws {
        let broken = mutation.flatMap(RaftMutation.init(rawValue:))
        let range = seed.map { $0...$0 } ?? parseRange(seeds!)!
        let clock = ContinuousClock()
        let started = clock.now
        var failures = 0
        var simulated: UInt64 = 0
        for value in range {
            let result = runSeed(value, nodeCount: nodes, mutation: broken)
            simulated += result.simulatedTime
            if result.violation != nil { failures += 1 }
            if verbose || seed != nil || result.violation != nil { print(result.summary) }
            if let violation = result.violation {
                print(
                    "  replay: swift run simulate --seed \(value)\(nodes.map { " --nodes \($0)" } ?? "")\(mutation.map { " --mutation \($0)" } ?? "")"
                )
                print("  last events:")
                for line in violation.traceTail { print("    \(line)") }
            }
        }
        let elapsed = clock.now - started
        let wall = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let count = range.count
        print(
            "\(count) seeds, \(failures) failed | wall \(format(wall))s, \(format(Double(count) / max(wall, 1e-9))) seeds/s | simulated \(format(Double(simulated) / 1e6))s, \(format(Double(simulated) / 1e6 / max(wall, 1e-9)))x real time"
        )
        if failures > 0 { throw ExitCode(1) }
    }

    private func format(_ value: Double) -> String {
        let scaled = (value * 10).rounded() / 10
        return "\(scaled)"
    }
}

func parseRange(_ text: String) -> ClosedRange<UInt64>? {
    let parts = text.split(separator: ".", omittingEmptySubsequences: true)
    guard text.contains(".."), parts.count == 2, let low = UInt64(parts[0]), let high = UInt64(parts[1]), low <= high else { return nil }
    return low...high
}
