import EtcdWire
import Foundation
import Glibc
import TestSupport
import Testing

extension LocalClusterTests {
    /// `statehouse-workflow` (executor processes on the `StatehouseWorkflow` library) against a
    /// three-member cluster: executors that die or stall while owning a run are replaced, every
    /// step is recorded exactly once, and every queue item is done exactly once.
    @Suite("Workflow executors killed and stalled")
    struct WorkflowTests {
        /// How many steps each run has.
        private let stepCount = 20

        /// SIGKILL an executor while it owns a run mid-way: once the dead one's session and claim
        /// leases expire, the run's queue item is visible again and another executor claims it and
        /// takes the run over with a larger fencing token; every step of every run is recorded
        /// exactly once, tokens never go backwards within a run, every queue item is acknowledged
        /// exactly once (none lost, none done twice), a run submitted after the kill still runs, a
        /// scheduler is elected again if the dead one was it, and a monitor stopped and restarted
        /// part-way sees every event exactly once.
        @Test("A killed executor's run is taken over and every step is recorded once")
        func killedExecutorsRunIsTakenOverAndEveryStepIsRecordedOnce() async throws {
            let workflow = try workflowExecutable()
            try await withCluster { cluster in
                let endpoints = cluster.endpoints()
                let runs = ["r1", "r2", "r3", "r4"]
                for id in runs {
                    let output = try await runToCompletion(
                        cluster, workflow, ["submit", "--endpoints", endpoints, "--id", id, "--steps", "\(stepCount)"])
                    #expect(output.contains("queued \(id)"), "\(output)")
                }
                let again = try await runToCompletion(
                    cluster, workflow, ["submit", "--endpoints", endpoints, "--id", "r1", "--steps", "5"])
                #expect(again.contains("exists r1"), "submitting an existing run must do nothing: \(again)")

                let firstMonitor = try start(
                    cluster, workflow, "monitor-1", ["monitor", "--endpoints", endpoints, "--name", "m", "--max-events", "30"])
                let executors = try (1...3).map { index in
                    try start(
                        cluster, workflow, "e\(index)",
                        ["executor", "--endpoints", endpoints, "--name", "e\(index)", "--session-ttl", "2", "--step-delay-ms", "100"])
                }

                // An executor that owns a run and has executed at least 5 of its steps.
                let (victimIndex, victimRun, victimToken) = try await eventually(
                    "an executor to be mid-way through a run", timeout: .seconds(20)
                ) {
                    () -> (Int, String, Int64)? in
                    for (index, executor) in executors.enumerated() {
                        let lines = executor.output.split(separator: "\n")
                        for id in runs {
                            let steps = lines.filter { $0.hasPrefix("step \(id) ") }
                            if steps.count >= 5, !lines.contains(where: { $0.hasPrefix("finished \(id) ") }),
                                let token = steps.last.flatMap(token(in:))
                            {
                                return (index, id, token)
                            }
                        }
                    }
                    return nil
                }
                let victim = executors[victimIndex]
                let victimName = "e\(victimIndex + 1)"
                victim.send(SIGKILL)
                let victimStatus = try await victim.waitForExit()
                #expect(victimStatus == .signaled(SIGKILL))
                let printedByVictim = victim.output.split(separator: "\n").filter { $0.hasPrefix("step \(victimRun) ") }.count
                let reader = try await cluster.client(cluster.members[0])
                let killRevision = try await reader.get("workflows/").header.revision
                print(
                    "killed \(victimName) owning \(victimRun) (token \(victimToken)) after \(printedByVictim) steps, at revision \(killRevision)"
                )

                let late = try await runToCompletion(
                    cluster, workflow, ["submit", "--endpoints", endpoints, "--id", "r5", "--steps", "\(stepCount)"])
                #expect(late.contains("queued r5"), "\(late)")
                let allRuns = runs + ["r5"]

                // The first monitor stops after 30 events; a second one with the same name resumes.
                let firstMonitorStatus = try await firstMonitor.waitForExit(timeout: .seconds(30))
                #expect(firstMonitorStatus == .exited(0), "\(firstMonitor.errorOutput)")
                let secondMonitor = try start(cluster, workflow, "monitor-2", ["monitor", "--endpoints", endpoints, "--name", "m"])

                let finalRuns = try await eventually("every run to be done", timeout: .seconds(40)) { () -> [String: StoredRun]? in
                    let stored = try await reader.get(prefixed: "workflows/runs/").mapValues {
                        try JSONDecoder().decode(StoredRun.self, from: $0.value)
                    }
                    return stored.count == allRuns.count && stored.values.allSatisfy { $0.state == "done" } ? stored : nil
                }
                let total = allRuns.count * stepCount
                _ = try await secondMonitor.waitForOutput("the second monitor to see the remaining events", timeout: .seconds(10)) {
                    $0.split(separator: "\n").filter { $0.hasPrefix("event ") }.count >= total - 30
                }

                // Every run is done, and every step of every run has exactly one record, written once.
                var stepRevisions: [Int64: String] = [:]
                for id in allRuns {
                    #expect(finalRuns["workflows/runs/\(id)"]?.next == stepCount, "run \(id)")
                    let records = try await reader.get(prefixed: "workflows/steps/\(id)/")
                    #expect(Set(records.keys) == Set((0..<stepCount).map { "workflows/steps/\(id)/\($0)" }), "the step records of \(id)")
                    let events = try await reader.get(prefixed: "workflows/events/\(id)/")
                    #expect(events.count == stepCount, "the events of \(id)")
                    var previous: (token: Int64, revision: Int64)?
                    for number in 0..<stepCount {
                        guard let kv = records["workflows/steps/\(id)/\(number)"] else { continue }
                        #expect(kv.version == 1, "step \(number) of \(id) was written more than once")
                        let record = try JSONDecoder().decode(StoredStep.self, from: kv.value)
                        stepRevisions[kv.modRevision] = "\(id) \(number)"
                        if let previous {
                            #expect(record.token >= previous.token, "the token went backwards at step \(number) of \(id)")
                            #expect(kv.modRevision > previous.revision, "step \(number) of \(id) was recorded before step \(number - 1)")
                        }
                        previous = (record.token, kv.modRevision)
                        if record.executor == victimName {
                            #expect(kv.modRevision < killRevision, "step \(number) of \(id) was recorded by \(victimName) after its kill")
                        }
                    }
                }

                // The killed executor's run: its steps first, under its token; then another executor's,
                // under a larger token.
                let victimRecords = try await reader.get(prefixed: "workflows/steps/\(victimRun)/")
                let recordsInOrder = try (0..<stepCount).compactMap { number in
                    try victimRecords["workflows/steps/\(victimRun)/\(number)"].map {
                        try JSONDecoder().decode(StoredStep.self, from: $0.value)
                    }
                }
                let byVictim = recordsInOrder.prefix { $0.executor == victimName }
                #expect(byVictim.allSatisfy { $0.token == victimToken }, "\(victimName)'s steps of \(victimRun): \(byVictim)")
                // A write in flight when it was killed may have been applied without being printed.
                #expect((printedByVictim...printedByVictim + 1).contains(byVictim.count), "\(victimName) recorded \(byVictim.count) steps")
                let afterTakeover = recordsInOrder.dropFirst(byVictim.count)
                #expect(!afterTakeover.isEmpty, "\(victimName) finished \(victimRun) although it was killed")
                for record in afterTakeover {
                    #expect(record.executor != victimName)
                    #expect(record.token > victimToken, "a step after the takeover of \(victimRun) has an old token")
                }
                let survivors = executors.enumerated().filter { $0.offset != victimIndex }.map(\.element)
                let takeover = survivors.flatMap { $0.output.split(separator: "\n") }.filter {
                    $0.hasPrefix("owns \(victimRun) ") && $0.hasSuffix("previous=\(victimName) previous-token=\(victimToken)")
                }
                #expect(takeover.count == 1, "exactly one survivor takes \(victimRun) over from \(victimName)")

                // Every queue item, the late one included, was acknowledged exactly once with its last
                // step: none is left in the queue, none is dead, each has one done record written once,
                // and each run was finished once. Nobody met a conflict.
                let executorLines = executors.flatMap { $0.output.split(separator: "\n") }
                for id in allRuns {
                    let finishedLines = executorLines.filter { $0.hasPrefix("finished \(id) ") || $0 == "acknowledged \(id)" }
                    #expect(finishedLines.count == 1, "\(id) finished: \(finishedLines)")
                    let done = try await reader.get(prefixed: "workflows/queue/done/")["workflows/queue/done/\(id)"]
                    #expect(done?.version == 1, "the queue item \(id) is done exactly once")
                }
                #expect(try await reader.get(prefixed: "workflows/queue/items/").isEmpty, "a queue item was lost in the queue")
                #expect(try await reader.get(prefixed: "workflows/queue/dead/").isEmpty, "a queue item went to the dead letters")
                #expect(!executorLines.contains { $0.hasPrefix("conflict ") }, "\(executorLines.joined(separator: "\n"))")

                // One scheduler was elected at first; if it was the killed executor, a survivor was elected after it.
                #expect(executorLines.contains { $0.hasPrefix("scheduler elected ") })
                if victim.output.contains("scheduler elected ") {
                    #expect(
                        survivors.contains { $0.output.contains("scheduler elected ") },
                        "no scheduler was elected after the scheduler's kill")
                }
                for survivor in survivors { #expect(survivor.isRunning, "a surviving executor exited: \(survivor.errorOutput)") }

                // The monitors together saw every event once, in revision order, each at the revision of
                // its step record (the event and the record are written by the same transaction).
                let seen = try (firstMonitor.output + secondMonitor.output).split(separator: "\n").filter { $0.hasPrefix("event ") }.map(
                    MonitoredEvent.init)
                #expect(firstMonitor.output.split(separator: "\n").filter { $0.hasPrefix("event ") }.count == 30)
                #expect(seen.count == total, "events seen by the two monitors")
                #expect(seen.map(\.revision) == seen.map(\.revision).sorted(), "events out of revision order")
                #expect(Set(seen.map(\.revision)).count == seen.count, "an event was seen twice")
                for event in seen {
                    #expect(stepRevisions[event.revision] == "\(event.run) \(event.step)", "event at revision \(event.revision)")
                }
            }
        }

        /// SIGSTOP an executor while it owns a run, until its lease has expired and another executor
        /// has taken the run over, then SIGCONT it: the stalled executor writes nothing more (its
        /// writes are fenced), it notices the loss, and the run completes with every step once.
        @Test("A stalled executor is fenced off after a takeover")
        func stalledExecutorIsFencedOffAfterTakeover() async throws {
            let workflow = try workflowExecutable()
            try await withCluster { cluster in
                let endpoints = cluster.endpoints()
                _ = try await runToCompletion(
                    cluster, workflow, ["submit", "--endpoints", endpoints, "--id", "s1", "--steps", "\(stepCount)"])
                let executors = try (1...2).map { index in
                    try start(
                        cluster, workflow, "e\(index)",
                        ["executor", "--endpoints", endpoints, "--name", "e\(index)", "--session-ttl", "2", "--step-delay-ms", "100"])
                }
                let ownerIndex = try await eventually("an executor to be mid-way through s1", timeout: .seconds(20)) { () -> Int? in
                    executors.firstIndex { $0.output.split(separator: "\n").filter { $0.hasPrefix("step s1 ") }.count >= 3 }
                }
                let stalled = executors[ownerIndex]
                let other = executors[1 - ownerIndex]
                let stalledName = "e\(ownerIndex + 1)"
                stalled.send(SIGSTOP)
                _ = try await other.waitForOutput("the other executor to take s1 over", timeout: .seconds(15)) {
                    $0.contains("previous=\(stalledName) ")
                }
                stalled.send(SIGCONT)
                let reader = try await cluster.client(cluster.members[0])
                _ = try await eventually("s1 to be done", timeout: .seconds(30)) { () -> Bool? in
                    let run = try await reader.get(prefixed: "workflows/runs/")["workflows/runs/s1"]
                    return try run.map { try JSONDecoder().decode(StoredRun.self, from: $0.value).state == "done" } == true ? true : nil
                }
                _ = try await stalled.waitForOutput("the stalled executor to notice its loss", timeout: .seconds(10)) {
                    $0.contains("session lost") || $0.contains("lost s1 ")
                }

                let records = try await reader.get(prefixed: "workflows/steps/s1/")
                #expect(records.count == stepCount)
                var sequence: [(executor: String, token: Int64, revision: Int64)] = []
                for number in 0..<stepCount {
                    guard let kv = records["workflows/steps/s1/\(number)"] else {
                        Issue.record("step \(number) has no record")
                        continue
                    }
                    #expect(kv.version == 1)
                    let record = try JSONDecoder().decode(StoredStep.self, from: kv.value)
                    sequence.append((record.executor, record.token, kv.modRevision))
                }
                // The stalled executor's steps form a prefix: none of its writes landed after the takeover.
                let byStalled = sequence.prefix { $0.executor == stalledName }
                #expect(byStalled.count >= 3)
                #expect(byStalled.count < stepCount, "the stalled executor finished the run")
                #expect(!sequence.dropFirst(byStalled.count).contains { $0.executor == stalledName }, "\(sequence)")
                #expect(sequence.map(\.revision) == sequence.map(\.revision).sorted())
                #expect(sequence.map(\.token) == sequence.map(\.token).sorted())
            }
        }

        // MARK: - Helpers

        /// The `statehouse-workflow` executable built next to the test bundle.
        private func workflowExecutable() throws -> String {
            guard let executable = builtExecutable(named: "statehouse-workflow") else {
                try skipTest("statehouse-workflow was not built; build it with `swift build --build-tests`")
            }
            return executable.path
        }

        /// Starts `statehouse-workflow` with `arguments`, its output in the cluster's directory as
        /// `<label>.out` and `<label>.err`; the cluster kills it when the test ends if it still runs.
        private func start(_ cluster: LocalCluster, _ executable: String, _ label: String, _ arguments: [String]) throws -> ChildProcess {
            let root = cluster.root
            let child = try ChildProcess(
                executable: executable, arguments: arguments, outputPath: "\(root)/\(label).out", errorPath: "\(root)/\(label).err")
            return cluster.adopt(child)
        }

        /// Runs `statehouse-workflow` with `arguments` to completion and returns its output.
        private func runToCompletion(_ cluster: LocalCluster, _ executable: String, _ arguments: [String]) async throws -> String {
            let child = try start(cluster, executable, "\(arguments[0])-\(UUID().uuidString.prefix(8))", arguments)
            let status = try await child.waitForExit(timeout: .seconds(20))
            #expect(status == .exited(0), "statehouse-workflow \(arguments.joined(separator: " ")): \(child.errorOutput)")
            return child.output
        }
    }
}

/// The token in an executor's `step <id> <n> token=<t>` line.
private func token(in line: Substring) -> Int64? {
    line.split(separator: " ").last.flatMap { $0.hasPrefix("token=") ? Int64($0.dropFirst(6)) : nil }
}

/// A run as the executors store it (the fields the tests check).
private struct StoredRun: Decodable {
    var state: String
    var next: Int
}

/// A step record as the executors store it.
private struct StoredStep: Decodable, CustomStringConvertible {
    var executor: String
    var token: Int64

    var description: String { "\(executor)@\(token)" }
}

/// One `event <run> <step> executor=<e> token=<t> revision=<r>` line of a monitor.
private struct MonitoredEvent {
    var run: String
    var step: Int
    var revision: Int64

    init(_ line: Substring) throws {
        let fields = line.split(separator: " ")
        guard fields.count == 6, let step = Int(fields[2]), let revision = fields[5].split(separator: "=").last.flatMap({ Int64($0) })
        else { throw TimeoutError(description: "a malformed monitor line: \(line)") }
        run = String(fields[1])
        self.step = step
        self.revision = revision
    }
}

extension EtcdClient {
    /// The keys starting with `prefix`, by key.
    fileprivate func get(prefixed prefix: String) async throws -> [String: Mvccpb_KeyValue] {
        let response = try await get(prefix, prefix: true)
        return Dictionary(uniqueKeysWithValues: response.kvs.map { (String(decoding: $0.key, as: UTF8.self), $0) })
    }
}
