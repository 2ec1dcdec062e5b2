import ArgumentParser
import Foundation
import Logging
import StatehouseClient
import StatehouseWorkflow

/// `executor`: a ``WorkflowExecutor`` and an ``ElectedScheduler`` (which applies retention)
/// under one session, printing what they do.
struct Executor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Executes runs (each owned through its mutex) and campaigns to be the scheduler that applies retention.")

    @OptionGroup var cluster: ClusterOptions

    @Option(help: "The executor's name, recorded with every step it executes.")
    var name: String

    @Option(help: "The session's and claims' lease TTL in seconds: how long a dead executor keeps its runs.")
    var sessionTTL: Int64 = 2

    @Option(help: "How long each step's work takes, in milliseconds.")
    var stepDelayMs: Int = 100

    @Option(help: "How often to look for work and to run the scheduler, in milliseconds.")
    var pollMs: Int = 200

    @Option(help: "How long finished runs are kept, in seconds.")
    var keepFinishedSeconds: Int = 86_400

    func validate() throws {
        guard !name.isEmpty else { throw ValidationError("an executor needs a name") }
        guard sessionTTL > 0, stepDelayMs >= 0, pollMs > 0, keepFinishedSeconds >= 0 else {
            throw ValidationError("the TTL, delays and retention must be positive")
        }
    }

    func run() async throws {
        let logger = cluster.logger("workflow.executor")
        let (name, ttl, stepDelay, poll) = (name, sessionTTL, Duration.milliseconds(stepDelayMs), Duration.milliseconds(pollMs))
        let retention = RetentionPolicy(finishedRuns: .seconds(keepFinishedSeconds))
        try await withStatehouseClient(configuration: cluster.clientConfiguration(), logger: logger) { client in
            let store = WorkflowStore(client: client, queue: WorkQueue.Configuration(visibilityTimeout: ttl))
            let session = try await client.makeSession(ttl: ttl)
            report("executor \(name) session lease=\(session.lease) ttl=\(session.ttl)")
            let executor = WorkflowExecutor(
                store: store, session: session, configuration: WorkflowExecutor.Configuration(name: name, poll: poll), logger: logger,
                observer: { report(line(for: $0)) },
                step: { _ in
                    try await Task.sleep(for: stepDelay)  // The step's work.
                    return nil
                })
            let scheduler = ElectedScheduler(
                session: session, election: store.schedulerElection, candidate: name, interval: poll, logger: logger,
                observer: { event in
                    switch event {
                    case .elected(let token): report("scheduler elected token=\(token)")
                    case .lost(let token): report("scheduler lost token=\(token)")
                    }
                },
                work: { _ in
                    let removed = try await store.applyRetention(retention)
                    for id in removed.deletedRuns { report("retention deleted \(id)") }
                })
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await executor.run() }
                    group.addTask { try await scheduler.run() }
                    try await group.next()
                    group.cancelAll()
                }
            } catch let error as StatehouseError where error.code == .sessionLost {
                report("session lost (\(session.lost.map { "\($0)" } ?? "unknown"))")
                throw error
            }
        }
    }
}

/// The line an executor prints for `event`.
private func line(for event: ExecutorEvent) -> String {
    switch event {
    case .owned(let run, let token, let next, let previousOwner, let previousToken):
        "owns \(run) token=\(token) next=\(next) previous=\(previousOwner ?? "-") previous-token=\(previousToken)"
    case .stepRecorded(let run, let step, let token): "step \(run) \(step) token=\(token)"
    case .finished(let run, let token): "finished \(run) token=\(token)"
    case .acknowledged(let run): "acknowledged \(run)"
    case .lost(let run, let token): "lost \(run) token=\(token)"
    case .conflict(let run, let step): "conflict \(run)" + (step.map { " step=\($0)" } ?? " taking over")
    }
}
