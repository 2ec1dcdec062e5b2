import LeaseClock
import Primitives
import RaftCore
import StateMachine
import TestSupport
import Testing

/// A clock that is already the primary, with no leases.
private func primaryClock(_ configuration: LeaseClock.Configuration = .init()) -> LeaseClock {
    var clock = LeaseClock(configuration: configuration)
    clock.promote(leases: [], now: 0, extend: 0)
    return clock
}

@Suite("Expiry")
struct ExpiryTests {
    @Test("A lease expires exactly at grant + TTL, not a millisecond before")
    func expiresExactlyAtTTL() {
        var clock = primaryClock()
        clock.granted(Lease(id: 7, ttl: 10), now: 1000)
        #expect(clock.expiry(id: 7) == 11_000)
        #expect(clock.expired(now: 10_999).isEmpty)
        #expect(clock.expired(now: 11_000) == [7])
    }

    @Test("A TTL below the minimum is raised to it")
    func minimumTTL() {
        var clock = primaryClock(.init(minTTL: 5))
        clock.granted(Lease(id: 1, ttl: 1), now: 0)
        #expect(clock.expired(now: 4999).isEmpty)
        #expect(clock.expired(now: 5000) == [1])
    }

    @Test("Renewing restarts the TTL from now and returns the granted TTL")
    func renewExtends() {
        var clock = primaryClock()
        clock.granted(Lease(id: 1, ttl: 10), now: 0)
        #expect(clock.renew(id: 1, now: 5000) == 10)
        #expect(clock.expiry(id: 1) == 15_000)
        #expect(clock.expired(now: 14_999).isEmpty)
        #expect(clock.expired(now: 15_000) == [1])
    }

    @Test("Renewing an unknown, expired or revoked lease returns nil")
    func renewUnknown() {
        var clock = primaryClock()
        #expect(clock.renew(id: 42, now: 0) == nil)
        clock.granted(Lease(id: 1, ttl: 10), now: 0)
        #expect(clock.renew(id: 1, now: 10_000) == nil)  // Expired: a revoke may be on its way.
        #expect(clock.expiry(id: 1) == 10_000)  // And the failed renewal did not extend it.
        clock.granted(Lease(id: 2, ttl: 10), now: 0)
        clock.revoked(id: 2)
        #expect(clock.renew(id: 2, now: 1) == nil)
    }

    @Test("Promotion starts from the full TTL, or the checkpointed remaining TTL, plus the extension")
    func promoteExtends() {
        var clock = LeaseClock(configuration: .init(retryAfter: 100_000))
        clock.promote(
            leases: [Lease(id: 1, ttl: 10), Lease(id: 2, ttl: 60, remainingTTL: 7)],
            now: 100,
            extend: 1000
        )
        #expect(clock.isPrimary)
        #expect(clock.count == 2)
        #expect(clock.expiry(id: 1) == 11_100)
        #expect(clock.expiry(id: 2) == 8100)
        #expect(clock.expired(now: 8099).isEmpty)
        #expect(clock.expired(now: 8100) == [2])
        #expect(clock.expired(now: 11_099).isEmpty)
        #expect(clock.expired(now: 11_100) == [1])
    }

    @Test("Promotion discards the previous term's state")
    func promoteReplacesState() {
        var clock = primaryClock()
        clock.granted(Lease(id: 1, ttl: 10), now: 0)
        clock.promote(leases: [Lease(id: 2, ttl: 10)], now: 0, extend: 0)
        #expect(clock.expiry(id: 1) == nil)
        #expect(clock.expired(now: 100_000) == [2])
    }

    @Test("A follower tracks and expires nothing")
    func demotedExpiresNothing() {
        var clock = primaryClock()
        clock.granted(Lease(id: 1, ttl: 2), now: 0)
        clock.demote()
        #expect(!clock.isPrimary)
        #expect(clock.count == 0)
        #expect(clock.expired(now: 1_000_000).isEmpty)
        clock.granted(Lease(id: 2, ttl: 2), now: 0)
        #expect(clock.count == 0)
        #expect(clock.renew(id: 1, now: 1) == nil)
        #expect(clock.remainingTTL(id: 1, now: 1) == nil)
        #expect(clock.expired(now: 2_000_000).isEmpty)
        #expect(clock.checkpointsDue(now: 2_000_000).isEmpty)
        var fresh = LeaseClock()
        #expect(fresh.expired(now: Int64.max).isEmpty)
    }
}

@Suite("Revoke batches")
struct RevokeBatchTests {
    @Test("Expired IDs come earliest first, then by ID, in bounded batches, and retry after a delay")
    func batchingOrderRetry() {
        var clock = primaryClock(.init(maxRevokesPerBatch: 2, retryAfter: 500))
        clock.granted(Lease(id: 5, ttl: 3), now: 0)
        clock.granted(Lease(id: 3, ttl: 3), now: 0)
        clock.granted(Lease(id: 9, ttl: 2), now: 0)
        clock.granted(Lease(id: 1, ttl: 4), now: 0)
        clock.granted(Lease(id: 8, ttl: 60), now: 0)
        #expect(clock.expired(now: 5000) == [9, 3])
        #expect(clock.expired(now: 5000) == [5, 1])
        #expect(clock.expired(now: 5000).isEmpty)
        #expect(clock.expired(now: 5499).isEmpty)
        clock.revoked(id: 3)
        // All four were reported at 5000, so all are due again at 5500; 3 is gone.
        #expect(clock.expired(now: 5500) == [1, 5])
        #expect(clock.expired(now: 5500) == [9])
        clock.revoked(id: 1)
        clock.revoked(id: 5)
        clock.revoked(id: 9)
        #expect(clock.expired(now: 59_999).isEmpty)
        #expect(clock.count == 1)
    }

    @Test("A revoked lease is never reported")
    func revokedNotReported() {
        var clock = primaryClock()
        clock.granted(Lease(id: 1, ttl: 2), now: 0)
        clock.revoked(id: 1)
        #expect(clock.expired(now: 1_000_000).isEmpty)
    }

    @Test("A stale expiry left by a renewal is not reported")
    func renewedNotReportedEarly() {
        var clock = primaryClock()
        clock.granted(Lease(id: 1, ttl: 10), now: 0)
        #expect(clock.renew(id: 1, now: 9000) == 10)
        #expect(clock.expired(now: 10_000).isEmpty)
        #expect(clock.expired(now: 18_999).isEmpty)
        #expect(clock.expired(now: 19_000) == [1])
    }
}

@Suite("Checkpoints")
struct CheckpointTests {
    private let configuration = LeaseClock.Configuration(checkpointInterval: 10_000)

    @Test("Each lease is checkpointed every interval with its remaining TTL rounded up")
    func cadenceAndContents() {
        var clock = primaryClock(configuration)
        clock.granted(Lease(id: 1, ttl: 60), now: 0)
        #expect(clock.checkpointsDue(now: 9999).isEmpty)
        #expect(clock.checkpointsDue(now: 10_000) == [LeaseCheckpoint(id: 1, remainingTTL: 50)])
        #expect(clock.checkpointsDue(now: 10_000).isEmpty)
        #expect(clock.checkpointsDue(now: 19_999).isEmpty)
        #expect(clock.checkpointsDue(now: 20_500) == [LeaseCheckpoint(id: 1, remainingTTL: 40)])  // 39.5 s.
        #expect(clock.checkpointsDue(now: 30_499).isEmpty)
        #expect(clock.checkpointsDue(now: 30_500) == [LeaseCheckpoint(id: 1, remainingTTL: 30)])
    }

    @Test("A checkpoint that would not lower the TTL is skipped but the lease stays scheduled")
    func fullTTLSkipped() {
        var clock = primaryClock(configuration)
        clock.granted(Lease(id: 1, ttl: 60), now: 0)
        #expect(clock.renew(id: 1, now: 10_000) == 60)
        #expect(clock.checkpointsDue(now: 10_000).isEmpty)
        #expect(clock.checkpointsDue(now: 20_000) == [LeaseCheckpoint(id: 1, remainingTTL: 50)])
    }

    @Test("Expired leases are not checkpointed")
    func expiredNotCheckpointed() {
        var clock = primaryClock(configuration)
        clock.granted(Lease(id: 1, ttl: 5), now: 0)
        #expect(clock.checkpointsDue(now: 10_000).isEmpty)
        #expect(clock.checkpointsDue(now: 100_000).isEmpty)
    }

    @Test("Batches are bounded and ordered by due time, then ID")
    func batching() {
        var clock = primaryClock(.init(checkpointInterval: 10_000, maxCheckpointsPerBatch: 2))
        clock.granted(Lease(id: 9, ttl: 60), now: 0)
        clock.granted(Lease(id: 4, ttl: 60), now: 0)
        clock.granted(Lease(id: 2, ttl: 60), now: 1000)
        #expect(
            clock.checkpointsDue(now: 12_000) == [
                LeaseCheckpoint(id: 4, remainingTTL: 48), LeaseCheckpoint(id: 9, remainingTTL: 48),
            ]
        )
        #expect(clock.checkpointsDue(now: 12_000) == [LeaseCheckpoint(id: 2, remainingTTL: 49)])
        #expect(clock.checkpointsDue(now: 12_000).isEmpty)
    }

    @Test("Renewing a lease with a replicated remaining TTL queues a clearing checkpoint at once")
    func renewClearsCheckpoint() {
        var clock = LeaseClock(configuration: configuration)
        clock.promote(leases: [Lease(id: 1, ttl: 60, remainingTTL: 7), Lease(id: 2, ttl: 60)], now: 0, extend: 0)
        #expect(clock.renew(id: 2, now: 1000) == 60)
        #expect(!clock.needsCheckpointClear(id: 2))
        #expect(clock.renew(id: 1, now: 1000) == 60)
        #expect(clock.needsCheckpointClear(id: 1))
        #expect(clock.checkpointsDue(now: 1000) == [LeaseCheckpoint(id: 1, remainingTTL: 0)])
        #expect(!clock.needsCheckpointClear(id: 1))
        #expect(clock.checkpointsDue(now: 1000).isEmpty)
        clock.checkpointed([LeaseCheckpoint(id: 1, remainingTTL: 0)])
        #expect(clock.renew(id: 1, now: 2000) == 60)
        #expect(clock.checkpointsDue(now: 2000).isEmpty)
    }

    @Test("A due periodic checkpoint replaces the queued clear of the same lease")
    func periodicReplacesClear() {
        var clock = LeaseClock(configuration: configuration)
        clock.promote(leases: [Lease(id: 1, ttl: 60, remainingTTL: 30)], now: 0, extend: 0)
        #expect(clock.renew(id: 1, now: 9500) == 60)
        #expect(clock.checkpointsDue(now: 11_000) == [LeaseCheckpoint(id: 1, remainingTTL: 59)])  // 58.5 s.
    }

    @Test("A checkpoint that crossed a renewal in flight is cleared")
    func staleCheckpointCleared() {
        var clock = primaryClock(configuration)
        clock.granted(Lease(id: 1, ttl: 60), now: 0)
        let batch = clock.checkpointsDue(now: 10_000)
        #expect(batch == [LeaseCheckpoint(id: 1, remainingTTL: 50)])
        #expect(clock.renew(id: 1, now: 11_000) == 60)
        #expect(!clock.needsCheckpointClear(id: 1))  // Nothing replicated yet.
        clock.checkpointed(batch)  // Applied after the renewal: stale.
        #expect(clock.needsCheckpointClear(id: 1))
        #expect(clock.checkpointsDue(now: 11_000) == [LeaseCheckpoint(id: 1, remainingTTL: 0)])
        // A checkpoint returned after the renewal is not stale.
        clock.checkpointed([LeaseCheckpoint(id: 1, remainingTTL: 0)])
        let next = clock.checkpointsDue(now: 20_000)
        #expect(next == [LeaseCheckpoint(id: 1, remainingTTL: 51)])
        clock.checkpointed(next)
        #expect(!clock.needsCheckpointClear(id: 1))
    }

    @Test("Checkpoints for unknown leases are ignored; revoked leases lose their queued clear")
    func unknownAndRevoked() {
        var clock = LeaseClock(configuration: configuration)
        clock.promote(leases: [Lease(id: 1, ttl: 60, remainingTTL: 7)], now: 0, extend: 0)
        clock.checkpointed([LeaseCheckpoint(id: 99, remainingTTL: 5)])
        #expect(clock.count == 1)
        #expect(clock.renew(id: 1, now: 0) == 60)
        clock.revoked(id: 1)
        #expect(!clock.needsCheckpointClear(id: 1))
        #expect(clock.checkpointsDue(now: 1_000_000).isEmpty)
    }
}

@Suite("TimeToLive")
struct RemainingTTLTests {
    @Test("The remaining TTL is rounded down and never negative")
    func values() {
        var clock = primaryClock()
        clock.granted(Lease(id: 1, ttl: 10), now: 0)
        #expect(clock.remainingTTL(id: 1, now: 0) == 10)
        #expect(clock.remainingTTL(id: 1, now: 1) == 9)
        #expect(clock.remainingTTL(id: 1, now: 9000) == 1)
        #expect(clock.remainingTTL(id: 1, now: 9001) == 0)
        #expect(clock.remainingTTL(id: 1, now: 10_000) == 0)
        #expect(clock.remainingTTL(id: 1, now: 20_000) == 0)  // Expired, revoke pending.
        #expect(clock.remainingTTL(id: 2, now: 0) == nil)
        clock.revoked(id: 1)
        #expect(clock.remainingTTL(id: 1, now: 0) == nil)
    }

    @Test("After promotion the remaining TTL includes the extension")
    func afterPromotion() {
        var clock = LeaseClock()
        clock.promote(leases: [Lease(id: 1, ttl: 60, remainingTTL: 20)], now: 5000, extend: 1000)
        #expect(clock.remainingTTL(id: 1, now: 5000) == 21)
    }
}

@Suite("Scale and determinism", .onOwnThreads)
struct ScaleTests {
    @Test("100k leases drain in bounded, ordered batches")
    func hundredThousandLeases() {
        var generator = SeededGenerator(seed: 1)
        let leases = (1...100_000).map { Lease(id: Int64($0), ttl: Int64(generator.next(below: 3600)) + 2) }
        var clock = LeaseClock(configuration: .init(maxRevokesPerBatch: 1000))
        clock.promote(leases: leases, now: 0, extend: 0)
        var previous = Deadline(time: Int64.min, id: Int64.min)
        var total = 0
        while true {
            let batch = clock.expired(now: 3_602_000)
            if batch.isEmpty { break }
            #expect(batch.count <= 1000)
            for id in batch {
                let current = Deadline(time: clock.expiry(id: id) ?? -1, id: id)
                #expect(previous < current)
                previous = current
                clock.revoked(id: id)
            }
            total += batch.count
        }
        #expect(total == 100_000)
        #expect(clock.count == 0)
    }

    @Test("Outputs do not depend on the order of the promoted leases")
    func promotionOrderIrrelevant() {
        var generator = SeededGenerator(seed: 99)
        let leases = (1...2000).map {
            Lease(id: Int64($0) * 7919 % 100_003, ttl: Int64(generator.next(below: 50)) + 2)
        }
        var shuffled = leases
        shuffled.shuffle(using: &generator)
        var first = LeaseClock(configuration: .init(checkpointInterval: 3000, maxRevokesPerBatch: 37))
        var second = first
        first.promote(leases: leases, now: 0, extend: 500)
        second.promote(leases: shuffled, now: 0, extend: 500)
        for now in stride(from: Int64(0), through: 60_000, by: 700) {
            #expect(first.expired(now: now) == second.expired(now: now))
            #expect(first.checkpointsDue(now: now) == second.checkpointsDue(now: now))
        }
    }

    private struct Deadline: Comparable {
        var time: Int64
        var id: Int64
        static func < (lhs: Self, rhs: Self) -> Bool {
            lhs.time != rhs.time ? lhs.time < rhs.time : lhs.id < rhs.id
        }
    }
}

@Suite("Heap compaction")
struct CompactionTests {
    @Test("Many renewals leave stale entries that never surface")
    func manyRenewals() {
        var clock = primaryClock(.init(checkpointInterval: 2000))
        for id in Int64(1)...3 { clock.granted(Lease(id: id, ttl: 10), now: 0) }
        var now: Int64 = 0
        for _ in 0..<5000 {
            now += 1
            for id in Int64(1)...3 { #expect(clock.renew(id: id, now: now) == 10) }
            #expect(clock.expired(now: now).isEmpty)
            #expect(clock.checkpointsDue(now: now).isEmpty)  // Just renewed: nothing to lower.
        }
        #expect(clock.expired(now: now + 9999).isEmpty)
        #expect(clock.checkpointsDue(now: now + 5000).map(\.remainingTTL) == [5, 5, 5])
        #expect(clock.expired(now: now + 10_000) == [1, 2, 3])
        #expect(clock.expired(now: now + 10_000).isEmpty)
    }
}
