import Foundation
import StatehouseClient
import StatehouseWorkflow
import Testing

extension LocalClusterTests {
    /// The `StatehouseWorkflow` library in this process against a real three-member cluster: the
    /// work queue, the event log, retention, the elected scheduler and executors. The kill tests
    /// with executor processes are in `WorkflowTests`.
    @Suite("Workflow library")
    struct WorkflowLibraryTests {
        @Test("Work queue: idempotent enqueue, claim, visibility timeout, ack, dead letters")
        func workQueue() async throws {
            try await withClusterClient(.statehouse) { _, client in
                let queue = WorkQueue(
                    client: client, prefix: "jobs", configuration: WorkQueue.Configuration(visibilityTimeout: 1, maxAttempts: 2))
                #expect(try await queue.enqueue("a", payload: Data("first".utf8)))
                #expect(try await !queue.enqueue("a", payload: Data("again".utf8)), "an ID is enqueued once")
                #expect(try await queue.enqueue("b"))
                await #expect(throws: WorkflowError.self) { try await queue.enqueue("bad/id") }

                // Claims go oldest first, one claimer per item.
                let first = try #require(try await queue.claim(owner: "w1"))
                #expect(first.item.id == "a" && first.item.payload == Data("first".utf8) && first.item.attempts == 1)
                let second = try #require(try await queue.claim(owner: "w2"))
                #expect(second.item.id == "b")
                #expect(try await queue.claim(owner: "w3") == nil, "both items are claimed")

                // w1 acknowledges; the item is done and cannot be enqueued again.
                try await queue.extend(first)
                try await queue.ack(first)
                #expect(try await queue.isDone("a"))
                #expect(try await !queue.enqueue("a"))
                #expect(try await queue.items().map(\.id) == ["b"])

                // w2 neither renews nor acknowledges: after the visibility timeout b is visible again.
                let reclaimed = try await eventually("b to be visible again", timeout: .seconds(10), interval: .milliseconds(200)) {
                    try await queue.claim(owner: "w3")
                }
                #expect(reclaimed.item.id == "b" && reclaimed.item.attempts == 2 && reclaimed.revision > second.revision)
                let late = await #expect(throws: StatehouseError.self) { try await queue.ack(second) }
                #expect(late?.code == .notHeld, "an expired claim cannot acknowledge")

                // b has had its two attempts: released once more, it goes to the dead letters.
                try await queue.release(reclaimed)
                #expect(try await queue.claim(owner: "w4") == nil)
                #expect(try await queue.deadLetters().map(\.id) == ["b"])
                #expect(try await queue.items().isEmpty)
                #expect(try await !queue.enqueue("b"), "a dead ID is not enqueued again")
            }
        }

        @Test("Event log: read from a revision, consumers resume from their stored position")
        func eventLog() async throws {
            try await withClusterClient(.statehouse) { cluster, client in
                let log = EventLog(client: client, prefix: "log/events", positionsPrefix: "log/consumers")
                var revisions: [Int64] = []
                for number in 0..<4 {
                    let result = try await client.txn().then(try log.append("e\(number)", encoding: number)).commit()
                    revisions.append(result.header.revision)
                }
                // Read from the third event's revision.
                var read: [String] = []
                for try await event in log.events(from: revisions[2]) {
                    read.append(event.name)
                    if read.count == 2 { break }
                }
                #expect(read == ["e2", "e3"])

                // A consumer stops after two events, with its writes committed with its position.
                try await log.consume(as: "c") { event in
                    ([.put("log/seen/" + event.name, String(event.revision))], event.name != "e1")
                }
                #expect(try await log.position(of: "c") == revisions[1])
                #expect(try await client.get(.prefix("log/seen/")).kvs.map(\.keyString) == ["log/seen/e0", "log/seen/e1"])

                // Restarted, it goes on from e2; meanwhile the member it reads from is killed.
                let consumed = NSLockedValue<[String]>([])
                do {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            try await log.consume(as: "c") { event in
                                consumed.mutate { $0.append(event.name) }
                                return ([], consumed.value.count < 6)
                            }
                        }
                        try await eventually("e2 and e3 to be consumed") { consumed.value.count >= 2 ? () : nil }
                        try await cluster.stop(cluster.members[0])
                        for number in 4..<8 {
                            // Until the cluster has settled after the kill; a create, so a retry appends once.
                            let append = try log.append("e\(number)", encoding: number)
                            _ = try await eventually("e\(number) to be appended", timeout: .seconds(20)) {
                                try? await client.txn().when(.version("log/events/e\(number)") == 0).then(append).commit()
                            }
                        }
                        try await group.waitForAll()
                    }
                }
                #expect(consumed.value == ["e2", "e3", "e4", "e5", "e6", "e7"], "each event once, in order")
                #expect(try await log.positions()["c"] != nil)

                // Two processes consuming as the same name do not both commit an event.
                let position = try #require(try await log.position(of: "c"))
                try await client.put(log.positionKey("c"), String(position - 1))
                let conflict = await #expect(throws: StatehouseError.self) {
                    try await log.consume(as: "c") { _ in
                        try await client.put(log.positionKey("c"), "1")  // another consumer moves it
                        return ([], true)
                    }
                }
                #expect(conflict?.code == .conflict)
            }
        }

        @Test("Elected scheduler: one leader works; when its session ends another takes over")
        func electedScheduler() async throws {
            try await withClusterClient(.statehouse) { _, client in
                let sessions = [try await client.makeSession(ttl: 2), try await client.makeSession(ttl: 2)]
                let elected = NSLockedValue<[Int]>([])
                let leaderships = NSLockedValue<[Int: Leadership]>([:])
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (index, session) in sessions.enumerated() {
                        let scheduler = ElectedScheduler(
                            session: session, election: "sched/election", candidate: "s\(index)", interval: .milliseconds(100),
                            observer: { event in if case .elected = event { elected.mutate { $0.append(index) } } },
                            work: { leadership in
                                leaderships.mutate { $0[index] = leadership }
                                _ = try await leadership.guardedTxn(Txn().then(.put("sched/worker", "s\(index)")))
                            })
                        group.addTask { try? await scheduler.run() }
                    }
                    let first = try await eventually("a scheduler to be elected") { elected.value.first }
                    try await Task.sleep(for: .milliseconds(500))
                    #expect(elected.value == [first], "one scheduler at a time")
                    #expect(try await client.get("sched/worker")?.valueString == "s\(first)")

                    // The leader's session ends (as when its process dies): the other is elected.
                    sessions[first].orphan()
                    try await client.revokeLease(sessions[first].lease)
                    let second = try await eventually("the other scheduler to be elected", timeout: .seconds(10)) {
                        elected.value.count == 2 ? elected.value[1] : nil
                    }
                    #expect(second == 1 - first)
                    try await eventually("the new scheduler to work") {
                        try await client.get("sched/worker")?.valueString == "s\(second)" ? () : nil
                    }
                    // The old leader's fenced writes are refused.
                    let stale = try #require(leaderships.value[first])
                    let refused = await #expect(throws: StatehouseError.self) {
                        try await stale.guardedTxn(Txn().then(.put("sched/worker", "stale")))
                    }
                    #expect(refused?.code == .notHeld)
                    group.cancelAll()
                }
            }
        }

        @Test("Executors: runs finish, each step recorded once, each queue item done once; retention removes them")
        func executorsAndRetention() async throws {
            try await withClusterClient(.statehouse) { _, client in
                let store = WorkflowStore(client: client, prefix: "wf", queue: WorkQueue.Configuration(visibilityTimeout: 2))
                let runs = ["a", "b", "c"]
                for id in runs { #expect(try await store.submit(id, steps: 4, input: Data(id.utf8))) }
                #expect(try await !store.submit("a", steps: 4), "submitting twice submits once")
                let executed = NSLockedValue<[String]>([])
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for name in ["x1", "x2"] {
                        let session = try await client.makeSession(ttl: 2)
                        let executor = WorkflowExecutor(
                            store: store, session: session,
                            configuration: WorkflowExecutor.Configuration(name: name, poll: .milliseconds(50))
                        ) { context in
                            executed.mutate { $0.append("\(context.run)/\(context.step)") }
                            return Data("\(context.run)-\(context.step)-\(String(decoding: context.input, as: UTF8.self))".utf8)
                        }
                        group.addTask { try? await executor.run() }
                    }
                    try await eventually("every run to be done", timeout: .seconds(20)) {
                        try await store.runs().filter { $0.state == .done }.count == runs.count ? () : nil
                    }
                    group.cancelAll()
                }
                for id in runs {
                    let steps = try await store.steps(of: id)
                    #expect(steps.keys.sorted() == [0, 1, 2, 3])
                    #expect(steps[3]?.output == Data("\(id)-3-\(id)".utf8))
                    #expect(try await client.get(store.queue.doneKey(id))?.version == 1, "\(id) acknowledged once")
                }
                #expect(Set(executed.value).count == executed.value.count, "no step's work done twice")
                #expect(try await store.queue.items().isEmpty)

                // A consumer has read the first events only; retention keeps what it still needs.
                let events = try await client.get(.prefix(store.events.prefix), options: GetOptions(sort: SortOrder(.modRevision)))
                let consumed = try #require(events.kvs.first?.modRevision)
                try await client.put(store.events.positionKey("slow"), String(consumed))
                let report = try await store.applyRetention(
                    RetentionPolicy(finishedRuns: .zero, doneRecords: .zero, compactHistory: true))
                #expect(Set(report.deletedRuns) == Set(runs))
                #expect(report.deletedDoneRecords == runs.count)
                #expect(report.compactedTo == consumed + 1)
                #expect(try await store.runs().isEmpty)
                #expect(try await client.get(.prefix("wf/steps/")).count == 0)
                #expect(try await client.get(.prefix("wf/events/")).count == 0)
                #expect(try await client.get(.prefix("wf/queue/")).count == 0)
                #expect(try await store.submit("a", steps: 1), "a deleted ID can be submitted again")
            }
        }
    }
}
