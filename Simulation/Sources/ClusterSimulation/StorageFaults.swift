import Primitives
import RaftCore
import ReplicatedMember
import Storage

/// How often the simulator damages members' disks, drawn from the seed for some seeds (see
/// ``draw(seed:)``). Rates are probabilities per opportunity.
public struct StorageFaultRates: Sendable, Hashable {
    /// Per crash of any member with unsynced batches: the next batch is torn (a prefix of its
    /// operations reaches the log), which recovery must drop whole.
    public var tornBatch = 0.7
    /// Per fault action: the next synced write of a random running member fails its fsync.
    public var fsyncError = 0.15
    /// Per fault action: a random running member's disk fills up until it restarts.
    public var diskFull = 0.1
    /// Per crash of the damaged member: a bit flips in one of its stored records.
    public var bitFlip = 0.3
    /// Per crash of the damaged member: the disk loses the last write it reported synced.
    public var lostSyncedWrite = 0.2
    /// Per fault action: the damaged member's next write lands under another key.
    public var misdirectedWrite = 0.1

    /// Creates the default rates.
    public init() {}

    /// The rates for `seed`: storage faults for about a third of the seeds, none otherwise.
    /// Drawn from a generator of their own, so the seed's other choices do not move.
    public static func draw(seed: UInt64) -> StorageFaultRates? {
        var rng = SeededGenerator(seed: seed ^ 0xD15C_FA17)
        return rng.chance(1.0 / 3) ? StorageFaultRates() : nil
    }
}

/// Counts of the disk faults injected in a run and of what the members made of them.
public struct StorageFaultCounts: Sendable, Hashable {
    /// Torn batches that recovery dropped.
    public var tornBatches = 0
    /// Failed fsyncs that stopped a member.
    public var fsyncErrors = 0
    /// Writes refused for lack of space that stopped a member.
    public var diskFullStops = 0
    /// Bits flipped in stored records.
    public var bitFlips = 0
    /// Synced writes the disk lost.
    public var lostSyncedWrites = 0
    /// Writes that landed under another key.
    public var misdirectedWrites = 0
    /// Restarts refused because the member found its storage corrupt.
    public var corruptionDetected = 0
    /// Restarts of the damaged member that found nothing wrong (a lost or misdirected write
    /// no record shows, or a flipped bit in a log entry recovery does not read): it is kept
    /// down all the same.
    public var keptDown = 0

    /// Whether any fault was injected.
    public var isEmpty: Bool { self == StorageFaultCounts() }

    /// The counts in one line, for the run summary.
    public var summary: String {
        "disk: torn \(tornBatches) fsync errors \(fsyncErrors) full \(diskFullStops) bit flips \(bitFlips) "
            + "lost synced \(lostSyncedWrites) misdirected \(misdirectedWrites) corruption detected \(corruptionDetected) kept down \(keptDown)"
    }
}

/// The simulator's disk-fault state: its own generator (so runs without storage faults draw
/// exactly what they drew before), the one member whose disk may lose or damage data, and what
/// was done to it.
struct StorageFaultState {
    var rng: SeededGenerator
    let rates: StorageFaultRates?
    /// The one member of a five-member group whose disk may rot, lose synced writes or
    /// misdirect writes. Once it took such a fault it never serves again: it stays down, as an operator
    /// would replace it.
    let damagedMember: Int?
    /// Set when the damaged member's disk lost or misdirected a write (or a bit flipped in it):
    /// it must not start again. Bit flips keep the flipped key, which recovery must refuse.
    var damage: [UInt8]?
    var isDamaged = false
    var counts = StorageFaultCounts()

    init(options: SimulationOptions) {
        rng = SeededGenerator(seed: options.seed ^ 0xB17_F11B)
        rates = options.storageFaults
        // Five members, which still tolerate a crash once it is down for good; a three-member group
        // would spend the rest of the run one crash away from losing its quorum.
        damagedMember = rates == nil || options.nodeCount < 5 ? nil : Int(rng.next(below: UInt64(options.nodeCount)))
    }
}

extension Simulation {
    /// Arms the damaged member's engine to remember what each synced write replaced, so that a
    /// crash can lose it.
    func prepareStorageFaults() {
        guard let damaged = storageFaults.damagedMember else { return }
        members[damaged].engine.faults.recordsLostWrites = true
    }

    /// At a fault action: may arm a failing fsync or a full disk on a running member, or a
    /// misdirected write on the damaged one.
    func injectStorageFault() {
        guard let rates = storageFaults.rates else { return }
        let running = members.indices.filter { members[$0].isRunning && !members[$0].isRetired }
        guard !running.isEmpty else { return }
        let victim = running[Int(storageFaults.rng.next(below: UInt64(running.count)))]
        if storageFaults.rng.chance(rates.fsyncError) { members[victim].engine.faults.failNextSync = true }
        if storageFaults.rng.chance(rates.diskFull) { members[victim].engine.faults.diskFull = true }
        if let damaged = storageFaults.damagedMember, members[damaged].isRunning, storageFaults.rng.chance(rates.misdirectedWrite) {
            members[damaged].engine.faults.misdirectNextWrite = Int(storageFaults.rng.next(below: 1 << 20))
        }
    }

    /// Crashes a member's disk: a prefix of its unsynced batches survives, the next one may be
    /// torn, and the damaged member's disk may lose its last synced write or rot a bit.
    func crashDisk(_ index: Int) {
        let engine = members[index].engine
        let kept = Int(rng.next(below: UInt64(engine.unsyncedBatchCount + 1)))
        members[index].storage = nil
        guard let rates = storageFaults.rates else {
            engine.crash(keepingUnsyncedBatches: kept)
            return
        }
        if index == storageFaults.damagedMember, storageFaults.rng.chance(rates.lostSyncedWrite),
            engine.crashLosingLastSyncedWrite()
        {
            storageFaults.counts.lostSyncedWrites += 1
            storageFaults.isDamaged = true
        } else {
            let tear = storageFaults.rng.chance(rates.tornBatch) ? 1 + Int(storageFaults.rng.next(below: 8)) : 0
            if engine.crash(keepingUnsyncedBatches: kept, tornOperations: tear) { storageFaults.counts.tornBatches += 1 }
        }
        if engine.faults.misdirectedWrites > 0 && index == storageFaults.damagedMember && !storageFaults.isDamaged {
            storageFaults.counts.misdirectedWrites += engine.faults.misdirectedWrites
            storageFaults.isDamaged = true
        }
        if index == storageFaults.damagedMember, storageFaults.rng.chance(rates.bitFlip) {
            let records = engine.durableSnapshot
            if !records.isEmpty {
                let key = records[Int(storageFaults.rng.next(below: UInt64(records.count)))].key
                engine.flipBit(ofValueAt: key, bit: Int(storageFaults.rng.next(below: 1 << 16)))
                storageFaults.counts.bitFlips += 1
                storageFaults.damage = key
                storageFaults.isDamaged = true
            }
        }
    }

    /// Opens the member's storage for a start (the disk is no longer full: an operator freed
    /// space; an fsync failure armed for the old process is gone with it), or returns `nil` if
    /// the member refuses to start, having stopped it.
    func openStorage(_ index: Int) -> MemberStorage? {
        members[index].engine.faults.diskFull = false
        members[index].engine.faults.failNextSync = false
        if let storage = members[index].storage { return storage }
        do {
            let storage = try makeStorage(on: members[index].engine)
            members[index].storage = storage
            return storage
        } catch {
            _ = refusesToStart(index, error)
            return nil
        }
    }

    /// Called when a member could not recover from its storage: whether that is the expected
    /// refusal of a damaged member (which then stays down for good); otherwise records a
    /// violation.
    @discardableResult
    func refusesToStart(_ index: Int, _ error: any Error) -> Bool {
        let corrupt = (error as? StorageError)?.kind == .corruption || (error as? StorageError)?.kind == .missingEntry
        guard corrupt, index == storageFaults.damagedMember, storageFaults.isDamaged else {
            fail("recovery", "member \(members[index].id) could not recover from its storage: \(error)")
            return false
        }
        storageFaults.counts.corruptionDetected += 1
        members[index].isRetired = true
        return true
    }

    /// Called once a member recovered from its storage: a damaged member must not be running.
    /// A bit flip is always found (every record read at recovery carries a checksum), unless
    /// it hit a log entry the snapshot covers, which recovery does not read; a lost or
    /// misdirected write may go unnoticed, so the damaged member is stopped for good anyway.
    /// Returns whether the member may run.
    func mayRunAfterRecovery(_ index: Int, snapshotIndex: LogIndex) -> Bool {
        guard index == storageFaults.damagedMember, storageFaults.isDamaged else { return true }
        if let key = storageFaults.damage {
            let covered = RaftLogStore.Keys.index(fromEntryKey: key).map { $0 <= snapshotIndex } ?? false
            if !covered {
                fail(
                    "storage corruption",
                    "member \(members[index].id) started from storage with a flipped bit at \(StorageError.describe(key: key))")
                return false
            }
        }
        storageFaults.counts.keptDown += 1
        members[index].isRetired = true
        return false
    }

    /// Called when a member's write failed: an injected fsync error or full disk stops the
    /// member (it crashes and restarts later, as a supervisor restarts a process that exited);
    /// anything else is a violation. Nothing the member did not make durable was acknowledged.
    func writeFailed(_ index: Int, _ error: StorageError, what: String) {
        let engine = members[index].engine
        guard error.message.hasSuffix("(injected)") else {
            fail("storage", "member \(members[index].id) could not \(what): \(error)")
            return
        }
        if engine.faults.diskFull { storageFaults.counts.diskFullStops += 1 } else { storageFaults.counts.fsyncErrors += 1 }
        crash(index: index)
        queue.schedule(.restart(node: index), at: now + 1_000 + storageFaults.rng.next(below: 30_000))
    }

    /// The disk faults injected so far.
    public var storageFaultCounts: StorageFaultCounts { storageFaults.counts }

    /// When the faults heal: no more disk faults are armed.
    func disarmStorageFaults() {
        for index in members.indices {
            members[index].engine.faults.failNextSync = false
            members[index].engine.faults.diskFull = false
            members[index].engine.faults.misdirectNextWrite = nil
        }
    }
}
