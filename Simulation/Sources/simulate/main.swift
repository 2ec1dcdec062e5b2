import ArgumentParser
@_spi(Testing) import ClusterSimulation
@_spi(Testing) import RaftCore
@_spi(Testing) import ReplicatedMember

@main
struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Runs Statehouse members in the deterministic simulator.",
        discussion: """
            Each seed runs a 3- or 5-member Statehouse group (drawn from the seed unless --nodes is \
            given): every member is the real Raft core, MVCC state machine and lease clock over storage \
            that loses unsynced writes when it crashes. Faults drawn from the seed: message loss, \
            duplication, delay and reordering, symmetric and asymmetric partitions, crashes and quick \
            restarts, process pauses, clock skew and jumps (forward and back) and, for some seeds, \
            membership changes (asked of the leader or of a member that forwards them); for about a \
            third of the seeds, disk faults too (torn writes, failed fsyncs, full disks; in five-member \
            groups, on one member also bit flips, lost and misdirected writes, after which it stays down \
            and must never have served a damaged record). Clients issue puts, linearizable gets, deletes, \
            compare-and-swaps and compactions, and keep a lease alive; three watchers follow the changes \
            through the server's watch delivery rule, stalling and reconnecting, and must see every \
            committed event in their range once and in order. Safety is checked after every \
            event; at the end everything heals, the group must converge, and the client history must be \
            linearizable. The same seed always prints the same trace hash.
            """)

    @Option(help: "Run one seed and print its trace hash.")
    var seed: UInt64?

    @Option(help: "Run a range of seeds, e.g. 1..500 (inclusive).")
    var seeds: String?

    @Option(help: "Number of members (3 or 5); drawn from each seed when omitted.")
    var nodes: Int?

    @Option(help: "Break one rule on purpose to show the checker catches it: \(mutationNames.joined(separator: ", ")).")
    var mutation: String?

    @Flag(help: "Print every run, not only failures.")
    var verbose = false

    @Flag(help: "Print every traced event of the run (with --seed).")
    var trace = false

    @Flag(help: "Print the names --mutation accepts, one per line, and exit.")
    var listMutations = false

    func validate() throws {
        if listMutations { return }
        if seed == nil && seeds == nil { throw ValidationError("give --seed S or --seeds A..B") }
        if let nodes, nodes != 3 && nodes != 5 { throw ValidationError("--nodes must be 3 or 5, got \(nodes)") }
        if let seeds, parseRange(seeds) == nil { throw ValidationError("--seeds must look like A..B with A <= B, got '\(seeds)'") }
        if let mutation, !mutationNames.contains(mutation) {
            throw ValidationError("--mutation must be one of \(mutationNames.joined(separator: ", ")), got '\(mutation)'")
        }
    }

    func run() throws {
        if listMutations {
            for name in mutationNames { print(name) }
            return
        }
        let range = seed.map { $0...$0 } ?? parseRange(seeds!)!
        let clock = ContinuousClock()
        let started = clock.now
        var failures = 0
        var simulated: UInt64 = 0
        var totals = WorkloadTotals()
        for value in range {
            var options = SimulationOptions(seed: value, nodeCount: nodes)
            options.mutation = mutation.flatMap(RaftMutation.init(rawValue:))
            options.memberMutation = mutation.flatMap(MemberMutation.init(rawValue:))
            options.clientMutation = mutation.flatMap(ClientMutation.init(rawValue:))
            let result = ClusterSimulation.run(options, eventLog: trace ? { print($0) } : nil)
            simulated += result.simulatedTime
            totals.add(result.statistics)
            if result.violation != nil { failures += 1 }
            if verbose || seed != nil || result.violation != nil { print(result.summary) }
            if verbose || result.violation != nil { print("  \(options.knobs)") }
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
        if count > 1 { print(totals.summary(seeds: count)) }
        if failures > 0 { throw ExitCode(1) }
    }

    private func format(_ value: Double) -> String {
        let scaled = (value * 10).rounded() / 10
        return "\(scaled)"
    }
}

/// The names `--mutation` accepts: the Raft core's and the member's deliberate breakages.
let mutationNames =
    RaftMutation.allCases.map(\.rawValue) + MemberMutation.allCases.map(\.rawValue) + ClientMutation.allCases.map(\.rawValue)

func parseRange(_ text: String) -> ClosedRange<UInt64>? {
    let parts = text.split(separator: ".", omittingEmptySubsequences: true)
    guard text.contains(".."), parts.count == 2, let low = UInt64(parts[0]), let high = UInt64(parts[1]), low <= high else { return nil }
    return low...high
}

/// The workload's totals over a sweep: acknowledged and failed key/value operations, history
/// lengths and the seeds that installed a snapshot.
struct WorkloadTotals {
    var acknowledged: [Int] = []
    var failed = 0
    var unknownWrites = 0
    var memberTimeouts = 0
    var history = 0
    var seedsWithSnapshots = 0
    var snapshots = 0

    mutating func add(_ statistics: Simulation.Statistics) {
        acknowledged.append(statistics.operationsAcknowledged)
        failed += statistics.operationsFailed
        unknownWrites += statistics.writesUnknown
        memberTimeouts += statistics.memberTimeouts
        history += statistics.historyLength
        snapshots += statistics.snapshotsInstalled
        if statistics.snapshotsInstalled > 0 { seedsWithSnapshots += 1 }
    }

    func summary(seeds: Int) -> String {
        let sorted = acknowledged.sorted()
        let total = sorted.reduce(0, +)
        return
            "workload: ops acked \(total) (per seed min \(sorted.first ?? 0) median \(sorted[sorted.count / 2]) max \(sorted.last ?? 0) mean \(total / max(seeds, 1))) failed \(failed) unknown writes \(unknownWrites) member timeouts \(memberTimeouts) history \(history) | snapshots installed \(snapshots) in \(seedsWithSnapshots) of \(seeds) seeds"
    }
}
