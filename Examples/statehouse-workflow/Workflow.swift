import ArgumentParser
import Foundation
import Logging
import StatehouseClient

/// The workflow recipe: executors that share workflow runs through Statehouse.
@main
struct Workflow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "statehouse-workflow",
        abstract: "Workflow runs shared by executor processes through Statehouse: a Mutex per run, fenced writes, "
            + "an elected scheduler and a resumable event monitor.",
        subcommands: [Executor.self, Submit.self, Monitor.self, Status.self]
    )
}

/// The options every subcommand takes.
struct ClusterOptions: ParsableArguments {
    @Option(help: "The cluster's client endpoints, comma-separated (host:port or http://host:port).")
    var endpoints: String = "127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379"

    @Option(help: "The log level (trace, debug, info, notice, warning, error, critical).")
    var logLevel: String = "info"

    /// A logger labelled `label` at the chosen level, writing to standard error.
    func logger(_ label: String) -> Logger {
        var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        return logger
    }

    /// The client configuration for ``endpoints``.
    func clientConfiguration() throws -> StatehouseClientConfiguration {
        try StatehouseClientConfiguration(endpoints: [endpoints])
    }
}

/// `submit`: queues a run for the scheduler to admit.
struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Queues a run; the elected scheduler admits it. Does nothing if the run exists or is queued.")

    @OptionGroup var cluster: ClusterOptions

    @Option(help: "The run's ID (no '/').")
    var id: String

    @Option(help: "How many steps the run has.")
    var steps: Int

    func validate() throws {
        guard WorkflowKeys.isValidID(id) else { throw ValidationError("a run ID must be non-empty and contain no '/'") }
        guard steps > 0 else { throw ValidationError("a run needs at least one step") }
    }

    func run() async throws {
        let queued = try WorkflowJSON.encode(QueuedRun(steps: steps))
        let id = self.id
        let created = try await withStatehouseClient(
            configuration: cluster.clientConfiguration(), logger: cluster.logger("workflow.submit")
        ) { client in
            // Created only if absent: neither admitted nor already queued.
            try await client.txn()
                .when(.version(WorkflowKeys.run(id)) == 0, .version(WorkflowKeys.queued(id)) == 0)
                .then(.put(WorkflowKeys.queued(id), queued))
                .commit()
                .succeeded
        }
        report(created ? "queued \(id) steps=\(steps)" : "exists \(id)")
    }
}

/// `status`: prints every run.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Prints the queued and admitted runs.")

    @OptionGroup var cluster: ClusterOptions

    func run() async throws {
        try await withStatehouseClient(configuration: cluster.clientConfiguration(), logger: cluster.logger("workflow.status")) {
            client in
            let queued = try await client.get(.prefix(WorkflowKeys.queue))
            for kv in queued.kvs {
                report("\(kv.keyString.dropFirst(WorkflowKeys.queue.count)) queued")
            }
            let runs = try await client.get(.prefix(WorkflowKeys.runs))
            for kv in runs.kvs {
                let run = try WorkflowJSON.decode(Run.self, from: kv.value)
                let owner = run.owner.isEmpty ? "-" : run.owner
                report("\(run.id) \(run.state.rawValue) \(run.next)/\(run.steps) owner=\(owner) token=\(run.token)")
            }
        }
    }
}
