import LeaseClock
import Primitives
import RaftCore
import StateMachine
import TestSupport
import Testing

/// Randomized runs against a model of the replicated lease table, with lost revokes, delayed
/// checkpoints and elections.
@Suite("Randomized", .onOwnThreads)
struct LeaseClockPropertyTests {
    @Test("No lease is reported expired before its last grant or renewal + TTL", arguments: 1...24 as ClosedRange<UInt64>)
    func neverExpiresEarly(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        let configuration = LeaseClock.Configuration(
            minTTL: 2,
            checkpointInterval: Int64(random.next(below: 20_000)) + 500,
            maxCheckpointsPerBatch: Int(random.next(below: 8)) + 1,
            maxRevokesPerBatch: Int(random.next(below: 8)) + 1,
            retryAfter: Int64(random.next(below: 3000)) + 100
        )
        var clock = LeaseClock(configuration: configuration)
        var now: Int64 = 0
        clock.promote(leases: [], now: now, extend: 1000)

        var table: [Int64: Lease] = [:]  // The replicated lease table.
        var deadline: [Int64: Int64] = [:]  // Last grant or successful renewal + TTL.
        var inFlight: [[LeaseCheckpoint]] = []  // Proposed, not yet applied, in log order.
        var nextID: Int64 = 1
        var reports = 0
        var elections = 0

        func apply(_ batch: [LeaseCheckpoint]) {
            for checkpoint in batch { table[checkpoint.id]?.remainingTTL = checkpoint.remainingTTL }
            clock.checkpointed(batch)
        }

        for _ in 0..<4000 {
            switch random.next(below: 100) {
            case 0..<18:
                let lease = Lease(id: nextID, ttl: max(Int64(random.next(below: 20)) + 1, configuration.minTTL))
                nextID += 1
                table[lease.id] = lease
                deadline[lease.id] = now + lease.ttl * 1000
                clock.granted(lease, now: now)
            case 18..<45:
                let ids = table.keys.sorted()
                guard !ids.isEmpty else { break }
                let id = ids[Int(random.next(below: UInt64(ids.count)))]
                if let ttl = clock.renew(id: id, now: now) {
                    #expect(ttl == table[id]?.ttl)
                    deadline[id] = now + ttl * 1000
                } else {
                    #expect((clock.expiry(id: id) ?? Int64.max) <= now)
                }
            case 45..<75:
                now += Int64(random.next(below: 2500))
            case 75..<82:
                if !inFlight.isEmpty { apply(inFlight.removeFirst()) }
            case 82..<84:
                // Everything proposed by the old leader is applied before the new one takes over.
                while !inFlight.isEmpty { apply(inFlight.removeFirst()) }
                while case let batch = clock.checkpointsDue(now: now), !batch.isEmpty { apply(batch) }
                clock.demote()
                now += Int64(random.next(below: 3000))
                #expect(clock.expired(now: now).isEmpty)
                clock.promote(
                    leases: table.values.sorted { $0.id < $1.id },
                    now: now,
                    extend: Int64(random.next(below: 2000))
                )
                elections += 1
            default:
                break
            }

            for id in clock.expired(now: now) {
                reports += 1
                #expect(table[id] != nil)
                #expect(now >= deadline[id] ?? Int64.max, "lease \(id) expired early at \(now)")
                if random.chance(0.7) {
                    table[id] = nil
                    deadline[id] = nil
                    clock.revoked(id: id)
                }
            }
            let batch = clock.checkpointsDue(now: now)
            for checkpoint in batch where checkpoint.remainingTTL > 0 {
                // A checkpoint never shortens a lease.
                #expect(checkpoint.remainingTTL * 1000 >= (clock.expiry(id: checkpoint.id) ?? 0) - now)
            }
            if !batch.isEmpty {
                // Raft applies one leader's proposals in the order they were made.
                if inFlight.isEmpty && random.chance(0.5) { apply(batch) } else { inFlight.append(batch) }
            }
            for (id, due) in deadline.sorted(by: { $0.key < $1.key }) {
                let remaining = clock.remainingTTL(id: id, now: now) ?? -1
                #expect(remaining >= max(due - now, 0) / 1000)
            }
        }

        // Liveness: once time runs far enough ahead, every remaining lease is reported.
        now += 100_000_000
        var reported: Set<Int64> = []
        while case let batch = clock.expired(now: now), !batch.isEmpty {
            #expect(batch.count <= configuration.maxRevokesPerBatch)
            reported.formUnion(batch)
            for id in batch { clock.revoked(id: id) }
        }
        #expect(reported == Set(table.keys))
        #expect(clock.count == 0)
        #expect(reports > 0)
        #expect(elections > 0)
    }
}
