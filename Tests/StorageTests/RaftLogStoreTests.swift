import Primitives
import RaftCore
import Storage
import Testing

@Suite("RaftLogStore, on both engines")
struct RaftLogStoreTests {
    typealias Keys = RaftLogStore.Keys

    @Test func entryKeysSortInIndexOrder() {
        #expect(Keys.entry(0x0102_0304_0506_0708) == bytes("r/e/") + [1, 2, 3, 4, 5, 6, 7, 8])
        let indexes: [LogIndex] = [0, 1, 255, 256, 65_535, 1 << 32, .max - 1, .max]
        for (low, high) in zip(indexes, indexes.dropFirst()) {
            #expect(Keys.entry(low).lexicographicallyPrecedes(Keys.entry(high)))
        }
        for index in indexes { #expect(Keys.index(fromEntryKey: Keys.entry(index)) == index) }
        #expect(Keys.index(fromEntryKey: bytes("r/e/1234567")) == nil)
        #expect(Keys.index(fromEntryKey: bytes("r/x/12345678")) == nil)
        #expect(Keys.entry(.max).lexicographicallyPrecedes(Keys.entryPrefixEnd))
    }

    @Test(arguments: EngineKind.allCases)
    func emptyStoreLoadsDefaults(kind: EngineKind) throws {
        let fixture = try kind.make()
        let store = try RaftLogStore(engine: fixture.engine)
        #expect(store.lastIndex == 0)
        #expect(store.firstIndex == 1)
        expectEqual(try store.load(), PersistentState())
    }

    @Test(arguments: EngineKind.allCases)
    func roundTrip(kind: EngineKind) throws {
        let fixture = try kind.make()
        let store = try RaftLogStore(engine: fixture.engine)
        let bootstrap = PersistentState.bootstrap(voters: [3, 1, 2])
        try store.append(entries: bootstrap.entries, hardState: bootstrap.hardState)
        let more = entries(4...9, term: 2) + [LogEntry(term: 2, index: 10, kind: .normal, data: [])]
        let hardState = HardState(term: 2, vote: 3, commit: 7)
        try store.append(entries: more, hardState: hardState)
        #expect(store.lastIndex == 10)

        try fixture.reopen()
        let reopened = try RaftLogStore(engine: fixture.engine)
        #expect(reopened.bounds == store.bounds)
        #expect(reopened.lastIndex == 10)
        #expect(reopened.firstIndex == 1)
        let loaded = try reopened.load(appliedIndex: 5)
        expectEqual(loaded, PersistentState(hardState: hardState, entries: bootstrap.entries + more, appliedIndex: 5))
    }

    @Test(arguments: EngineKind.allCases)
    func hardStateOnlyAndEntriesOnlyWrites(kind: EngineKind) throws {
        let fixture = try kind.make()
        let store = try RaftLogStore(engine: fixture.engine)
        try store.append(entries: entries(1...3, term: 1), hardState: HardState(term: 1, vote: 2, commit: 0))
        try store.append(entries: [], hardState: HardState(term: 2, vote: 0, commit: 1))
        try store.append(entries: entries(4...4, term: 2), hardState: nil)
        let loaded = try RaftLogStore(engine: fixture.engine).load(appliedIndex: 0)
        #expect(loaded.hardState == HardState(term: 2, vote: 0, commit: 1))
        #expect(loaded.entries == entries(1...3, term: 1) + entries(4...4, term: 2))
    }

    @Test(arguments: EngineKind.allCases)
    func conflictingTailIsOverwritten(kind: EngineKind) throws {
        let fixture = try kind.make()
        let store = try RaftLogStore(engine: fixture.engine)
        try store.append(entries: entries(1...8, term: 1), hardState: HardState(term: 1, vote: 1, commit: 2))
        // A new leader's shorter log replaces everything from index 4 on, including 6...8.
        try store.append(entries: entries(4...5, term: 3), hardState: HardState(term: 3, vote: 0, commit: 2))
        #expect(store.lastIndex == 5)
        #expect(try storedEntryIndexes(fixture.engine) == [1, 2, 3, 4, 5])
        try fixture.reopen()
        let reopened = try RaftLogStore(engine: fixture.engine)
        #expect(reopened.lastIndex == 5)
        let loaded = try reopened.load(appliedIndex: 2)
        #expect(loaded.entries == entries(1...3, term: 1) + entries(4...5, term: 3))
        #expect(loaded.hardState == HardState(term: 3, vote: 0, commit: 2))
    }

    @Test func onlyAConflictingSuffixIsDeleted() throws {
        let fixture = try EngineKind.memory.make()
        let store = try RaftLogStore(engine: fixture.engine)
        try store.append(entries: entries(1...3, term: 1), hardState: nil)
        // Appending past the last entry writes no range deletion (RocksDB replays every one it
        // holds when it opens, so one per append would make restarts slow).
        let appended = try store.prepareAppend(entries: entries(4...6, term: 1), hardState: nil)
        #expect(appended.batch.operations.count == 3)
        #expect(!appended.batch.operations.contains { if case .deleteRange = $0 { true } else { false } })
        // Overwriting from index 2 deletes exactly the stored entries from 2 on.
        let overwritten = try store.prepareAppend(entries: entries(2...2, term: 2), hardState: nil)
        #expect(overwritten.batch.operations.first == .deleteRange(from: Keys.entry(2), to: Keys.entry(4)))
    }

    @Test(arguments: EngineKind.allCases)
    func snapshotInstallReplacesTheLog(kind: EngineKind) throws {
        let fixture = try kind.make()
        let store = try RaftLogStore(engine: fixture.engine)
        try store.append(entries: entries(1...10, term: 1), hardState: HardState(term: 1, vote: 1, commit: 3))
        // A leader's snapshot at 7 in term 2: entries 1...7 are covered, and 8...10 (term 1)
        // conflict with the leader's log, so the whole stored log goes.
        let installed = snapshot(index: 7, term: 2)
        try store.append(entries: [], hardState: HardState(term: 2, vote: 0, commit: 7), snapshot: installed)
        #expect(try storedEntryIndexes(fixture.engine).isEmpty)
        #expect(store.lastIndex == 7)
        #expect(store.firstIndex == 8)
        try fixture.reopen()
        let reopened = try RaftLogStore(engine: fixture.engine)
        #expect(reopened.lastIndex == 7)
        expectEqual(
            try reopened.load(appliedIndex: 7),
            PersistentState(hardState: HardState(term: 2, vote: 0, commit: 7), snapshot: installed, appliedIndex: 7))
    }

    @Test(arguments: EngineKind.allCases)
    func snapshotInstallWithFollowingEntriesInOneBatch(kind: EngineKind) throws {
        let fixture = try kind.make()
        let store = try RaftLogStore(engine: fixture.engine)
        try store.append(entries: entries(1...4, term: 1), hardState: HardState(term: 1, vote: 0, commit: 4))
        let installed = snapshot(index: 20, term: 3)
        let before = (fixture.engine as? MemoryEngine)?.syncedWriteCount
        try store.append(entries: entries(21...23, term: 3), hardState: HardState(term: 3, vote: 0, commit: 20), snapshot: installed)
        if let memory = fixture.engine as? MemoryEngine { #expect(memory.syncedWriteCount == before! + 1) }
        #expect(try storedEntryIndexes(fixture.engine) == [21, 22, 23])
        #expect(store.lastIndex == 23)
        let loaded = try RaftLogStore(engine: fixture.engine).load(appliedIndex: 20)
        #expect(loaded.snapshot == installed)
        #expect(loaded.entries == entries(21...23, term: 3))
    }

    @Test(arguments: EngineKind.allCases)
    func compactionAfterOwnSnapshot(kind: EngineKind) throws {
        let fixture = try kind.make()
        let store = try RaftLogStore(engine: fixture.engine)
        try store.append(entries: entries(1...10, term: 2), hardState: HardState(term: 2, vote: 1, commit: 9))
        let own = snapshot(index: 6, term: 2)
        try store.saveSnapshot(own)
        // Saving a snapshot keeps the entries; load returns only those after it.
        #expect(try storedEntryIndexes(fixture.engine) == Array(1...10))
        #expect(try store.load(appliedIndex: 6).entries == entries(7...10, term: 2))

        // Keep two entries before the snapshot for lagging followers.
        try store.compact(through: 4)
        #expect(try storedEntryIndexes(fixture.engine) == [5, 6, 7, 8, 9, 10])
        #expect(store.bounds.storedEntries == 5...10)
        #expect(store.firstIndex == 7)
        #expect(store.lastIndex == 10)

        try fixture.reopen()
        let reopened = try RaftLogStore(engine: fixture.engine)
        #expect(reopened.bounds == store.bounds)
        expectEqual(
            try reopened.load(appliedIndex: 8),
            PersistentState(
                hardState: HardState(term: 2, vote: 1, commit: 9), snapshot: own, entries: entries(7...10, term: 2),
                appliedIndex: 8))

        // Compacting past the snapshot would leave a gap: refused, nothing deleted.
        #expect(throws: StorageError.self) { try reopened.compact(through: 7) }
        #expect(try storedEntryIndexes(fixture.engine) == [5, 6, 7, 8, 9, 10])
        try reopened.compact(through: 6)
        #expect(reopened.bounds.storedEntries == 7...10)
        // Appending after compaction continues the log.
        try reopened.append(entries: entries(11...11, term: 3), hardState: nil)
        #expect(
            try RaftLogStore(engine: fixture.engine).load(appliedIndex: 0).entries == entries(7...10, term: 2) + entries(11...11, term: 3))
    }

    @Test(arguments: EngineKind.allCases)
    func compactingEverythingKeepsTheSnapshotPosition(kind: EngineKind) throws {
        let fixture = try kind.make()
        let store = try RaftLogStore(engine: fixture.engine)
        try store.append(entries: entries(1...5, term: 1), hardState: HardState(term: 1, vote: 0, commit: 5))
        try store.saveSnapshot(snapshot(index: 5, term: 1))
        try store.compact(through: 5)
        #expect(store.bounds.storedEntries == nil)
        let reopened = try RaftLogStore(engine: fixture.engine)
        #expect(reopened.lastIndex == 5)
        #expect(reopened.firstIndex == 6)
        #expect(try reopened.load(appliedIndex: 5).entries.isEmpty)
    }

    @Test(arguments: EngineKind.allCases)
    func invalidAppendsAreRefusedAndWriteNothing(kind: EngineKind) throws {
        let fixture = try kind.make()
        let store = try RaftLogStore(engine: fixture.engine)
        try store.append(entries: entries(1...3, term: 1), hardState: HardState(term: 1, vote: 0, commit: 1))
        let before = try fixture.engine.scan(from: [], to: nil)
        var gap: StorageError?
        do { try store.append(entries: entries(5...6, term: 1), hardState: HardState(term: 9, vote: 0, commit: 1)) } catch {
            gap = error
        }
        #expect(gap?.kind == .invalidOperation)
        #expect(throws: StorageError.self) {
            try store.append(entries: [LogEntry(term: 1, index: 4), LogEntry(term: 1, index: 6)], hardState: nil)
        }
        try store.saveSnapshot(snapshot(index: 2, term: 1))
        let afterSnapshot = try fixture.engine.scan(from: [], to: nil)
        #expect(throws: StorageError.self) { try store.append(entries: entries(2...4, term: 1), hardState: nil) }
        #expect(throws: StorageError.self) { try store.saveSnapshot(snapshot(index: 1, term: 1)) }
        #expect(throws: StorageError.self) { try store.saveSnapshot(snapshot(index: 4, term: 1)) }
        #expect(try fixture.engine.scan(from: [], to: nil) == afterSnapshot)
        #expect(afterSnapshot.count == before.count + 1)
        #expect(store.lastIndex == 3)
    }

    @Test(arguments: EngineKind.allCases)
    func updateCombinesStateMachineWritesAndLeavesOtherPrefixesAlone(kind: EngineKind) throws {
        let fixture = try kind.make()
        var foreign = StorageBatch()
        for key in ["k/x", "l/1", "m/meta", "a/other", "q", "r", "r/", "r/e", "r/e0", "s"] { foreign.put(bytes(key), bytes("keep")) }
        try fixture.engine.write(foreign, sync: true)

        let store = try RaftLogStore(engine: fixture.engine)
        var update = try store.prepareAppend(entries: entries(1...4, term: 1), hardState: HardState(term: 1, vote: 0, commit: 2))
        update.batch.put(bytes("k/applied-value"), bytes("v"))
        AppliedIndex.put(2, into: &update.batch)
        try store.write(update)
        #expect(store.lastIndex == 4)
        #expect(try AppliedIndex.read(from: fixture.engine) == 2)
        #expect(try fixture.engine.get(bytes("k/applied-value")) == bytes("v"))

        // A caller that writes the batch itself reports it with didWrite.
        let install = try store.prepareAppend(
            entries: [], hardState: HardState(term: 2, vote: 0, commit: 9), snapshot: snapshot(index: 9, term: 2))
        #expect(store.lastIndex == 4)
        var combined = install.batch
        AppliedIndex.put(9, into: &combined)
        try fixture.engine.write(combined, sync: true)
        store.didWrite(install)
        #expect(store.lastIndex == 9)
        try store.compact(through: 9)

        try fixture.reopen()
        let loaded = try RaftLogStore(engine: fixture.engine).load()
        #expect(loaded.appliedIndex == 9)
        #expect(loaded.snapshot?.metadata.index == 9)
        for key in ["k/x", "l/1", "m/meta", "a/other", "q", "r", "r/", "r/e", "r/e0", "s"] {
            #expect(try fixture.engine.get(bytes(key)) == bytes("keep"), "\(key) was touched")
        }
    }

    @Test(arguments: EngineKind.allCases)
    func appliedIndexRoundTripAndCorruption(kind: EngineKind) throws {
        let fixture = try kind.make()
        #expect(try AppliedIndex.read(from: fixture.engine) == 0)
        var batch = StorageBatch()
        AppliedIndex.put(0x1_0000_0001, into: &batch)
        try fixture.engine.write(batch, sync: true)
        #expect(try AppliedIndex.read(from: fixture.engine) == 0x1_0000_0001)
        var garbage = StorageBatch()
        garbage.put(AppliedIndex.key, [1, 2, 3])
        try fixture.engine.write(garbage, sync: true)
        let error = #expect(throws: StorageError.self) { try AppliedIndex.read(from: fixture.engine) }
        #expect(error?.kind == .corruption)
        #expect(error?.key == AppliedIndex.key)
    }
}

@Suite("RaftLogStore reports damaged storage, on both engines")
struct RaftLogStoreCorruptionTests {
    typealias Keys = RaftLogStore.Keys

    /// A store with entries 1...5 (term 1) and a hard state, written to a fresh engine.
    private func populated(_ kind: EngineKind) throws -> EngineFixture {
        let fixture = try kind.make()
        let store = try RaftLogStore(engine: fixture.engine)
        try store.append(entries: entries(1...5, term: 1), hardState: HardState(term: 1, vote: 1, commit: 5))
        return fixture
    }

    private func overwrite(_ fixture: EngineFixture, _ key: [UInt8], with value: [UInt8]?) throws {
        var batch = StorageBatch()
        if let value { batch.put(key, value) } else { batch.delete(key) }
        try fixture.engine.write(batch, sync: true)
        try fixture.reopen()
    }

    private func loadError(_ fixture: EngineFixture) throws -> StorageError? {
        #expect(throws: StorageError.self) { try RaftLogStore(engine: fixture.engine).load(appliedIndex: 0) }
    }

    @Test(arguments: EngineKind.allCases)
    func garbageEntryIsNamed(kind: EngineKind) throws {
        let fixture = try populated(kind)
        try overwrite(fixture, Keys.entry(3), with: bytes("garbage"))
        let error = try loadError(fixture)
        #expect(error?.kind == .corruption)
        #expect(error?.key == Keys.entry(3))
        #expect(error?.description.contains("r/e/3") == true)
    }

    @Test(arguments: EngineKind.allCases)
    func entryWithTrailingBytesIsCorrupt(kind: EngineKind) throws {
        let fixture = try populated(kind)
        var out: [UInt8] = []
        LogEntry(term: 1, index: 4).encode(into: &out)
        try overwrite(fixture, Keys.entry(4), with: out + [0])
        let error = try loadError(fixture)
        #expect(error?.kind == .corruption)
        #expect(error?.key == Keys.entry(4))
    }

    @Test(arguments: EngineKind.allCases)
    func entryUnderTheWrongKeyIsCorrupt(kind: EngineKind) throws {
        let fixture = try populated(kind)
        var out: [UInt8] = []
        LogEntry(term: 1, index: 2).encode(into: &out)
        try overwrite(fixture, Keys.entry(4), with: out)
        let error = try loadError(fixture)
        #expect(error?.kind == .corruption)
        #expect(error?.key == Keys.entry(4))
    }

    @Test(arguments: EngineKind.allCases)
    func decreasingTermIsCorrupt(kind: EngineKind) throws {
        let fixture = try populated(kind)
        var out: [UInt8] = []
        LogEntry(term: 0, index: 5).encode(into: &out)
        try overwrite(fixture, Keys.entry(5), with: out)
        let error = try loadError(fixture)
        #expect(error?.kind == .corruption)
        #expect(error?.key == Keys.entry(5))
    }

    @Test(arguments: EngineKind.allCases)
    func gapIsNamed(kind: EngineKind) throws {
        let fixture = try populated(kind)
        try overwrite(fixture, Keys.entry(3), with: nil)
        let error = try loadError(fixture)
        #expect(error?.kind == .missingEntry)
        #expect(error?.key == Keys.entry(3))
        #expect(error?.description.contains("r/e/3") == true)
    }

    @Test(arguments: EngineKind.allCases)
    func gapAfterSnapshotIsNamed(kind: EngineKind) throws {
        let fixture = try populated(kind)
        let store = try RaftLogStore(engine: fixture.engine)
        try store.saveSnapshot(snapshot(index: 2, term: 1))
        try overwrite(fixture, Keys.entry(3), with: nil)
        let error = try loadError(fixture)
        #expect(error?.kind == .missingEntry)
        #expect(error?.key == Keys.entry(3))
    }

    @Test(arguments: EngineKind.allCases)
    func malformedEntryKeyIsNamed(kind: EngineKind) throws {
        let fixture = try populated(kind)
        let key = Keys.entry(6) + [0]
        try overwrite(fixture, key, with: bytes("x"))
        let error = try loadError(fixture)
        #expect(error?.kind == .corruption)
        #expect(error?.key == key)
    }

    @Test(arguments: EngineKind.allCases)
    func garbageHardStateIsNamed(kind: EngineKind) throws {
        let fixture = try populated(kind)
        try overwrite(fixture, Keys.hardState, with: [1, 2, 3])
        let error = try loadError(fixture)
        #expect(error?.kind == .corruption)
        #expect(error?.key == Keys.hardState)
        #expect(error?.description.contains("r/h") == true)
    }

    @Test(arguments: EngineKind.allCases)
    func garbageSnapshotIsNamedWhenOpening(kind: EngineKind) throws {
        let fixture = try populated(kind)
        try overwrite(fixture, Keys.snapshot, with: [9])
        let error = #expect(throws: StorageError.self) { try RaftLogStore(engine: fixture.engine) }
        #expect(error?.kind == .corruption)
        #expect(error?.key == Keys.snapshot)
    }
}
