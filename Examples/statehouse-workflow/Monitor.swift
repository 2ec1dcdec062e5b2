import ArgumentParser
import Foundation
import StatehouseClient
import StatehouseWorkflow

/// `monitor`: prints step events as they happen, as a named consumer of the event log whose
/// position is kept in the store.
struct Monitor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prints step events as the consumer <name> of the event log, resuming after its stored position.",
        discussion: """
            Each event is printed, then the consumer's position is stored. A monitor that exits on its own \
            (--max-events) resumes exactly after the last event it printed; one killed between printing \
            and storing prints that one event again when restarted (at least once).
            """
    )

    @OptionGroup var cluster: ClusterOptions

    @Option(help: "The monitor's name: its position is workflows/consumers/<name>.")
    var name: String = "monitor"

    @Option(help: "Where a monitor without a stored position starts (default: revision 1).")
    var fromRevision: Int64 = 1

    @Option(help: "Exit after this many events.")
    var maxEvents: Int?

    func validate() throws {
        guard !name.isEmpty, !name.contains("/") else { throw ValidationError("a monitor name must be non-empty and contain no '/'") }
    }

    func run() async throws {
        let (name, fromRevision, maxEvents) = (name, fromRevision, maxEvents)
        try await withStatehouseClient(configuration: cluster.clientConfiguration(), logger: cluster.logger("workflow.monitor")) {
            client in
            let events = WorkflowStore(client: client).events
            let position = try await events.position(of: name)
            report("monitor \(name) from revision \(position.map { $0 + 1 } ?? fromRevision)")
            var seen = 0
            try await events.consume(as: name, from: fromRevision, onGap: { report("gap: events before revision \($0) were compacted") }) {
                event in
                if let step = try? event.decode(StepEvent.self) {
                    report("event \(step.run) \(step.step) executor=\(step.executor) token=\(step.token) revision=\(event.revision)")
                    seen += 1
                }
                return ([], maxEvents.map { seen < $0 } ?? true)
            }
        }
    }
}
