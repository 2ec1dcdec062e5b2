import ArgumentParser
import Foundation
import StatehouseClient

/// `monitor`: prints progress events as they happen, resuming after a restart from the
/// revision it checkpointed in the store.
struct Monitor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prints progress events; checkpoints the last revision under workflows/monitors/<name> and resumes after it.",
        discussion: """
            Each event is printed, then its revision is checkpointed. A monitor that exits on its own \
            (--max-events) resumes exactly after the last event it printed; one killed between printing \
            and checkpointing prints that one event again when restarted (at least once).
            """
    )

    @OptionGroup var cluster: ClusterOptions

    @Option(help: "The monitor's name: its checkpoint is workflows/monitors/<name>.")
    var name: String = "monitor"

    @Option(help: "Start from this revision instead of the checkpoint (default: after the checkpoint, or revision 1).")
    var fromRevision: Int64?

    @Option(help: "Exit after this many events (each checkpointed).")
    var maxEvents: Int?

    func validate() throws {
        guard WorkflowKeys.isValidID(name) else { throw ValidationError("a monitor name must be non-empty and contain no '/'") }
    }

    func run() async throws {
        let name = self.name
        let fromRevision = self.fromRevision
        let maxEvents = self.maxEvents
        try await withStatehouseClient(configuration: cluster.clientConfiguration(), logger: cluster.logger("workflow.monitor")) {
            client in
            var start: Int64 = 1
            if let fromRevision {
                start = fromRevision
            } else if let checkpoint = try await client.get(WorkflowKeys.monitor(name)), let revision = Int64(checkpoint.valueString) {
                start = revision + 1
            }
            report("monitor \(name) from revision \(start)")
            var seen = 0
            while true {
                do {
                    let events = client.watch(prefix: WorkflowKeys.events, options: WatchOptions(startRevision: start))
                    for try await event in events {
                        if event.kind == .put, let progress = try? WorkflowJSON.decode(ProgressEvent.self, from: event.kv.value) {
                            report(
                                "event \(progress.run) \(progress.step) executor=\(progress.executor) token=\(progress.token) "
                                    + "revision=\(event.revision)")
                            seen += 1
                        }
                        // Each step writes one event, so one revision holds at most one event here:
                        // resuming after it neither skips nor repeats one.
                        try await client.put(WorkflowKeys.monitor(name), String(event.revision))
                        start = event.revision + 1
                        if let maxEvents, seen >= maxEvents { return }
                    }
                    return
                } catch let error as StatehouseError where error.code == .compacted {
                    let oldest = error.compactRevision ?? start
                    report("gap: events before revision \(oldest) were compacted")
                    start = oldest
                }
            }
        }
    }
}
