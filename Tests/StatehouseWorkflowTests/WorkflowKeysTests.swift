import Foundation
import StatehouseClient
import StatehouseWorkflow
import Testing

/// The workflow library's key layout, records and policies, without a cluster (the cluster
/// tests in `ClusterTests` run the library against real members).
@Suite("Workflow library, offline")
struct WorkflowKeysTests {
    /// A client that is never run: building keys and operations makes no call.
    private let client = try! StatehouseClient(configuration: StatehouseClientConfiguration(endpoints: ["127.0.0.1:1"]))

    @Test("Every kind of key has a prefix of its own")
    func keyLayout() {
        let store = WorkflowStore(client: client, prefix: "wf")
        #expect(store.prefix == "wf/")
        #expect(store.runKey("r1") == "wf/runs/r1")
        #expect(store.stepKey("r1", 7) == "wf/steps/r1/7")
        #expect(store.lockName("r1") == "wf/locks/r1")
        #expect(store.schedulerElection == "wf/scheduler")
        #expect(store.queue.prefix == "wf/queue/")
        #expect(store.queue.itemKey("r1") == "wf/queue/items/r1")
        #expect(store.queue.claimKey("r1") == "wf/queue/claims/r1")
        #expect(store.queue.doneKey("r1") == "wf/queue/done/r1")
        #expect(store.queue.deadKey("r1") == "wf/queue/dead/r1")
        #expect(store.events.prefix == "wf/events/")
        #expect(store.events.positionKey("m") == "wf/consumers/m")
        let keys = [
            store.runKey("a"), store.stepKey("a", 0), store.queue.itemKey("a"), store.queue.claimKey("a"), store.events.positionKey("a"),
        ]
        for (index, key) in keys.enumerated() {
            for other in keys[(index + 1)...] { #expect(!key.hasPrefix(other) && !other.hasPrefix(key), "\(key) and \(other)") }
        }
    }

    @Test("Run IDs are non-empty and contain no '/'")
    func invalidIDs() async {
        let store = WorkflowStore(client: client)
        for id in ["", "a/b", "/"] {
            let error = await #expect(throws: WorkflowError.self) { try await store.submit(id, steps: 1) }
            #expect(error?.code == .invalidID)
        }
    }

    @Test("Records decode from the JSON the executors write, with fields the kill tests read")
    func records() throws {
        let run = try JSONDecoder().decode(
            WorkflowRun.self,
            from: Data(#"{"id":"r","steps":3,"input":"","next":1,"state":"running","owner":"e1","token":42}"#.utf8))
        #expect(run.state == .running && run.next == 1 && run.finishedAt == nil)
        let encoded = String(
            decoding: try StatehouseJSON.makeEncoder().encode(StepRecord(executor: "e1", token: 42, output: nil)), as: UTF8.self)
        #expect(encoded == #"{"executor":"e1","token":42}"#)
        let item = WorkItem(id: "a", payload: Data([1, 2]), attempts: 0)
        #expect(try JSONDecoder().decode(WorkItem.self, from: StatehouseJSON.makeEncoder().encode(item)) == item)
    }

    @Test("Defaults: claims last 30 s, five attempts; finished runs kept a day, no compaction")
    func defaults() {
        #expect(WorkQueue.Configuration() == WorkQueue.Configuration(visibilityTimeout: 30, maxAttempts: 5))
        let policy = RetentionPolicy()
        #expect(policy.finishedRuns == .seconds(86_400) && policy.doneRecords == .seconds(604_800) && !policy.compactHistory)
    }
}
