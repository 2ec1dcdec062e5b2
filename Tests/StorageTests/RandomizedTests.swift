import Primitives
import RaftCore
import Storage
import TestSupport
import Testing

/// What the stored log logically holds, computed without any engine.
private struct ModelLog: Equatable {
    var hardState = HardState()
    var snapshot: Snapshot?
    /// Stored entries, contiguous and ascending (including ones retained below the snapshot).
    var stored: [LogEntry] = []

    var snapshotIndex: LogIndex { snapshot?.metadata.index ?? 0 }
    var lastIndex: LogIndex { max(stored.last?.index ?? 0, snapshotIndex) }

    func term(at index: LogIndex) -> Term {
        if index == snapshotIndex { return snapshot?.metadata.term ?? 0 }
        return stored.first { $0.index == index }?.term ?? 0
    }

    /// What a restart must read back.
    func expected(appliedIndex: LogIndex) -> PersistentState {
        PersistentState(
            hardState: hardState, snapshot: snapshot, entries: stored.filter { $0.index > snapshotIndex },
            appliedIndex: appliedIndex)
    }

    var expectedBounds: RaftLogStore.Bounds {
        RaftLogStore.Bounds(
            snapshot: snapshot?.metadata, storedEntries: stored.isEmpty ? nil : stored.first!.index...stored.last!.index)
    }
}

/// One logical write, as the model applies it.
private enum ModelWrite {
    case append(entries: [LogEntry], hardState: HardState?, snapshot: Snapshot?)
    case saveSnapshot(Snapshot)
    case compact(LogIndex)
    case applied(LogIndex)
    /// Several logical writes in one engine batch.
    case combined([ModelWrite])

    func apply(to log: inout ModelLog, applied: inout LogIndex) {
        switch self {
        case .append(let entries, let hardState, let snapshot):
            if let snapshot {
                log.snapshot = snapshot
                log.stored = []
            }
            if let first = entries.first {
                log.stored.removeAll { $0.index >= first.index }
                log.stored.append(contentsOf: entries)
            }
            if let hardState { log.hardState = hardState }
        case .saveSnapshot(let snapshot):
            log.snapshot = snapshot
        case .compact(let index):
            log.stored.removeAll { $0.index <= index }
        case .applied(let index):
            applied = index
        case .combined(let writes):
            for write in writes { write.apply(to: &log, applied: &applied) }
        }
    }
}

/// The model of the engine: the visible and durable logical states, and the unsynced writes.
private struct Model {
    var visible = ModelLog()
    var visibleApplied: LogIndex = 0
    var durable = ModelLog()
    var durableApplied: LogIndex = 0
    var unsynced: [ModelWrite] = []

    mutating func record(_ write: ModelWrite, sync: Bool) {
        write.apply(to: &visible, applied: &visibleApplied)
        if sync {
            durable = visible
            durableApplied = visibleApplied
            unsynced = []
        } else {
            unsynced.append(write)
        }
    }

    mutating func crash(keeping count: Int) {
        for write in unsynced.prefix(count) { write.apply(to: &durable, applied: &durableApplied) }
        unsynced = []
        visible = durable
        visibleApplied = durableApplied
    }
}

@Suite("Randomized log operations and crashes against a model", .onOwnThreads)
struct RandomizedTests {
    static let seeds: [UInt64] = [1, 2, 3, 42, 1234, 0xDEAD_BEEF]

    @Test(arguments: seeds)
    func memoryEngineMatchesModelAcrossCrashes(seed: UInt64) throws {
        let engine = MemoryEngine()
        let stats = try run(seed: seed, steps: 600, engine: engine) { rng in
            let keep = Int(rng.next(below: UInt64(engine.unsyncedBatchCount + 2)))
            engine.crash(keepingUnsyncedBatches: keep)
            return keep
        } reopen: {
            engine
        }
        #expect(stats.crashes > 20)
        #expect(stats.appends > 100)
        #expect(stats.snapshots > 10)
        #expect(stats.compactions > 10)
        #expect(stats.lostWrites > 0)
    }

    @Test(arguments: seeds.prefix(2))
    func rocksDBMatchesModelAcrossReopens(seed: UInt64) throws {
        let fixture = try EngineKind.rocksDB.make()
        _ = try run(seed: seed, steps: 200, engine: fixture.engine) { _ in
            // A clean close keeps every write, synced or not.
            try fixture.reopen()
            return .max
        } reopen: {
            fixture.engine
        }
    }

    struct Stats {
        var crashes = 0
        var appends = 0
        var snapshots = 0
        var compactions = 0
        var lostWrites = 0
    }

    /// Drives `steps` random operations through a ``RaftLogStore``; `restart` crashes or reopens
    /// the engine and returns how many unsynced writes survive; after each restart the reloaded
    /// state must equal the model's durable state.
    private func run(
        seed: UInt64, steps: Int, engine initial: any StorageEngine,
        restart: (inout SeededGenerator) throws -> Int, reopen: () -> any StorageEngine
    ) throws -> Stats {
        var rng = SeededGenerator(seed: seed)
        var model = Model()
        var store = try RaftLogStore(engine: initial)
        var term: Term = 1
        var stats = Stats()

        func check(_ log: ModelLog, applied: LogIndex, _ context: String) throws {
            let loaded = try store.load()
            let expected = log.expected(appliedIndex: applied)
            #expect(loaded.hardState == expected.hardState, "seed \(seed): \(context)")
            #expect(loaded.snapshot == expected.snapshot, "seed \(seed): \(context)")
            #expect(loaded.entries == expected.entries, "seed \(seed): \(context)")
            #expect(loaded.appliedIndex == expected.appliedIndex, "seed \(seed): \(context)")
            #expect(store.bounds == log.expectedBounds, "seed \(seed): \(context)")
            #expect(store.lastIndex == log.lastIndex, "seed \(seed): \(context)")
        }

        for step in 0..<steps {
            let context = "step \(step)"
            let sync = rng.chance(0.7)
            switch rng.next(below: 100) {
            case 0..<40:
                // Append, possibly overwriting a tail; the term never decreases along the log.
                let base = model.visible.snapshotIndex
                let last = model.visible.lastIndex
                let first = rng.chance(0.6) ? last + 1 : base + 1 + rng.next(below: last - base + 1)
                if rng.chance(0.2) { term += 1 }
                let count = 1 + rng.next(below: 4)
                let newEntries = (first..<(first + count)).map { index in
                    LogEntry(
                        term: term, index: index, kind: rng.chance(0.1) ? .confChange : .normal,
                        data: (0..<rng.next(below: 6)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
                }
                let hardState =
                    rng.chance(0.5)
                    ? HardState(term: term, vote: rng.next(below: 4), commit: rng.next(below: first + count)) : nil
                try store.write(store.prepareAppend(entries: newEntries, hardState: hardState), sync: sync)
                model.record(.append(entries: newEntries, hardState: hardState, snapshot: nil), sync: sync)
                stats.appends += 1
            case 40..<48:
                // Install a leader's snapshot, possibly with entries after it.
                term += rng.next(below: 2)
                let index = model.visible.snapshotIndex + 1 + rng.next(below: model.visible.lastIndex - model.visible.snapshotIndex + 5)
                let installed = Snapshot(
                    metadata: SnapshotMetadata(index: index, term: term, confState: ConfState(voters: [1, 2, rng.next(below: 8) + 3])),
                    data: (0..<rng.next(below: 10)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
                let following = rng.chance(0.5) ? entries((index + 1)...(index + 1 + rng.next(below: 3)), term: term) : []
                let hardState = HardState(term: term, vote: 0, commit: index)
                var update = try store.prepareAppend(entries: following, hardState: hardState, snapshot: installed)
                AppliedIndex.put(index, into: &update.batch)
                try store.write(update, sync: sync)
                model.record(
                    .combined([.append(entries: following, hardState: hardState, snapshot: installed), .applied(index)]),
                    sync: sync)
                stats.snapshots += 1
            case 48..<58:
                // Save a snapshot of our own state machine at or below the last index.
                let base = model.visible.snapshotIndex
                let last = model.visible.lastIndex
                guard last > base else { continue }
                let index = base + 1 + rng.next(below: last - base)
                let own = Snapshot(
                    metadata: SnapshotMetadata(index: index, term: model.visible.term(at: index), confState: ConfState(voters: [1])),
                    data: [UInt8(truncatingIfNeeded: index)])
                try store.write(store.prepareSaveSnapshot(own), sync: sync)
                model.record(.saveSnapshot(own), sync: sync)
                stats.snapshots += 1
            case 58..<70:
                // Compact through a random index no later than the snapshot.
                let base = model.visible.snapshotIndex
                guard base > 0 else { continue }
                let index = rng.next(below: base + 1)
                try store.compact(through: index, sync: sync)
                model.record(.compact(index), sync: sync)
                stats.compactions += 1
            case 70..<78:
                // The state machine applies something and records its applied index.
                var batch = StorageBatch()
                batch.put(bytes("k/\(rng.next(below: 10))"), bytes("\(step)"))
                let applied = rng.next(below: model.visible.lastIndex + 1)
                AppliedIndex.put(applied, into: &batch)
                try engine(store).write(batch, sync: sync)
                model.record(.applied(applied), sync: sync)
            case 78..<82:
                // Invalid requests are refused and change nothing.
                let before = try engine(store).scan(from: [], to: nil)
                if rng.chance(0.5) {
                    let gap = model.visible.lastIndex + 2
                    #expect(throws: StorageError.self, "seed \(seed): \(context)") {
                        try store.append(entries: entries(gap...gap, term: term), hardState: nil)
                    }
                } else {
                    let beyond = model.visible.snapshotIndex + 1
                    #expect(throws: StorageError.self, "seed \(seed): \(context)") { try store.compact(through: beyond) }
                }
                #expect(try engine(store).scan(from: [], to: nil) == before, "seed \(seed): \(context)")
            case 82..<92:
                try check(model.visible, applied: model.visibleApplied, "\(context), no crash")
            default:
                let pending = model.unsynced.count
                let kept = try restart(&rng)
                stats.lostWrites += max(0, pending - kept)
                model.crash(keeping: kept)
                store = try RaftLogStore(engine: reopen())
                stats.crashes += 1
                try check(model.durable, applied: model.durableApplied, "\(context), after restart keeping \(kept) of \(pending)")
            }
        }
        return stats
    }

    private func engine(_ store: RaftLogStore) -> any StorageEngine { store.engine }
}
