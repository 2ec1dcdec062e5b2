@_spi(Testing) import RaftCore

/// The result of one seeded run.
public struct RunResult: Sendable {
    /// The seed that reproduces the run.
    public var options: SimulationOptions
    /// The first broken property, if any.
    public var violation: Violation?
    /// The hash of the whole event trace.
    public var traceHash: UInt64
    /// Simulated time covered, in microseconds.
    public var simulatedTime: UInt64
    /// Events processed.
    public var events: Int
    /// Counters from the run.
    public var statistics: Simulation.Statistics
    /// The disk faults injected and detected.
    public var storageFaults = StorageFaultCounts()

    /// A one-line summary naming the seed, the outcome and the trace hash.
    public var summary: String {
        let hash = String(traceHash, radix: 16)
        let outcome = violation.map { "VIOLATION \($0)" } ?? "ok"
        let s = statistics
        return
            "seed \(options.seed) nodes \(options.nodeCount): \(outcome) | trace \(String(repeating: "0", count: 16 - hash.count))\(hash) | simulated \(formatTime(simulatedTime)) events \(events) | ops acked \(s.operationsAcknowledged) failed \(s.operationsFailed) history \(s.historyLength) snapshots installed \(s.snapshotsInstalled) | writes acked \(s.writesAcknowledged) failed \(s.writesFailed) unknown \(s.writesUnknown) reads \(s.readsServed) leaders \(s.leadersElected) crashes \(s.crashes) compactions \(s.compactions) auto \(s.autoCompactions) leases expired \(s.leasesExpired) fsync stalls \(s.fsyncStalls) clock jumps \(s.clockJumps) back \(s.clockStepsBack) retries \(s.clientRetries) session retries \(s.sessionRetries) member timeouts \(s.memberTimeouts) leader moves \(s.leaderMoves) forwards \(s.forwardMessagesSent) membership changes \(s.membershipChanges) via followers \(s.membershipChangesViaFollowers) applied \(s.membershipChangesApplied) operator moves \(s.operatorLeaderMoves) refused \(s.sessionRefusals) watch events \(s.watchEvents) windows read later \(s.watchWindowsReadLater) lock writes \(s.lockWrites) refused \(s.lockWritesRefused) pauses \(s.lockPauses) applied twice \(s.writesAppliedTwice)"
            + (storageFaults.isEmpty ? "" : " | \(storageFaults.summary)")
    }
}

/// Runs one seed through the randomized scenario (fault phase, heal, liveness phase).
/// - Parameters:
///   - seed: The seed; the same seed always gives the same result and trace hash.
///   - nodeCount: 3 or 5 members, or nil to draw it from the seed.
public func runSeed(_ seed: UInt64, nodeCount: Int? = nil) -> RunResult {
    run(SimulationOptions(seed: seed, nodeCount: nodeCount))
}

/// Runs the randomized scenario with explicit options.
/// - Parameters:
///   - options: The run's options.
///   - eventLog: Receives every traced event as a line (it cannot change the run).
public func run(_ options: SimulationOptions, eventLog: ((String) -> Void)? = nil) -> RunResult {
    let simulation = Simulation(options: options)
    simulation.eventLog = eventLog
    simulation.runScenario()
    return RunResult(
        options: options, violation: simulation.violation, traceHash: simulation.traceHash,
        simulatedTime: simulation.now, events: simulation.eventCount, statistics: simulation.statistics,
        storageFaults: simulation.storageFaultCounts)
}
