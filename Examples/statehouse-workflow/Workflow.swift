import ArgumentParser
import Foundation
import Logging
import StatehouseClient
import StatehouseWorkflow

/// A command-line workflow platform over the `StatehouseWorkflow` library: executors that share
/// workflow runs through Statehouse.
@main
struct Workflow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "statehouse-workflow",
        abstract: "Workflow runs shared by executor processes through Statehouse (the StatehouseWorkflow library): a work "
            + "queue, a DistributedMutex per run, fenced step records, an elected scheduler and a resumable event monitor.",
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

/// `submit`: queues a run.
struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Queues a run. Does nothing if a run with that ID exists, is queued, done or dead.")

    @OptionGroup var cluster: ClusterOptions

    @Option(help: "The run's ID (no '/').")
    var id: String

    @Option(help: "How many steps the run has.")
    var steps: Int

    func validate() throws {
        guard !id.isEmpty, !id.contains("/") else { throw ValidationError("a run ID must be non-empty and contain no '/'") }
        guard steps > 0 else { throw ValidationError("a run needs at least one step") }
    }

    func run() async throws {
        let (id, steps) = (id, steps)
        let queued = try await withStatehouseClient(
            configuration: cluster.clientConfiguration(), logger: cluster.logger("workflow.submit")
        ) { client in
            try await WorkflowStore(client: client).submit(id, steps: steps)
        }
        report(queued ? "queued \(id) steps=\(steps)" : "exists \(id)")
    }
}

/// `status`: prints the queue and the runs.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Prints the queued and dead runs, and every run started.")

    @OptionGroup var cluster: ClusterOptions

    func run() async throws {
        try await withStatehouseClient(configuration: cluster.clientConfiguration(), logger: cluster.logger("workflow.status")) {
            client in
            let store = WorkflowStore(client: client)
            for item in try await store.queue.items() { report("\(item.id) queued attempts=\(item.attempts)") }
            for item in try await store.queue.deadLetters() { report("\(item.id) dead attempts=\(item.attempts)") }
            for run in try await store.runs() {
                report("\(run.id) \(run.state.rawValue) \(run.next)/\(run.steps) owner=\(run.owner) token=\(run.token)")
            }
        }
    }
}

/// Writes one line to standard output at once (unbuffered), so that a reader of a redirected
/// output sees each line as soon as it is written.
func report(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
