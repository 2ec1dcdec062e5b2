import Primitives

/// One stored version of a key: a put or a tombstone at a revision.
///
/// The metadata always stays in memory; the value only while it is resident (``value`` is
/// `nil` once the store released it to its backend, see ``StateStore/releaseDurableValues()``).
struct VersionRecord: Hashable, Sendable {
    var revision: Revision
    var createRevision: Int64
    var version: Int64
    var lease: Int64
    /// The value if it is in memory; `nil` if it must be read from the backend. A tombstone's
    /// value is always the resident empty value.
    var value: [UInt8]?
    var isTombstone: Bool

    static func tombstone(at revision: Revision) -> VersionRecord {
        VersionRecord(revision: revision, createRevision: 0, version: 0, lease: 0, value: [], isTombstone: true)
    }

    /// The bytes of the value held in memory (0 when it is not resident).
    var residentBytes: Int { value?.count ?? 0 }

    /// The key-value of this version with `value` (the caller has it, resident or read back).
    func keyValue(key: [UInt8], value: [UInt8]) -> KeyValue {
        KeyValue(
            key: key,
            createRevision: createRevision,
            modRevision: revision.main,
            version: version,
            value: value,
            lease: lease
        )
    }
}

/// A key with every retained version, oldest first.
struct KeyEntry: Sendable {
    var key: [UInt8]
    var history: [VersionRecord]

    /// The version an event for version `i` carries as `prevKV`, as etcd's watch gives it: the
    /// one visible at the previous main revision (before the whole write request), unless it is
    /// a tombstone or no longer retained.
    func previousVersion(before i: Int) -> Int? {
        var j = i - 1
        while j >= 0 && history[j].revision.main == history[i].revision.main { j -= 1 }
        return j >= 0 && !history[j].isTombstone ? j : nil
    }

    /// The latest version if it is not a tombstone.
    var live: VersionRecord? {
        guard let last = history.last, !last.isTombstone else { return nil }
        return last
    }

    /// The index of the version visible at `revision` (the latest with main revision at or
    /// below it), or nil if there is none or it is a tombstone.
    func visibleIndex(at revision: Int64) -> Int? {
        let count = history.count
        guard count > 0 else { return nil }
        var i: Int
        if history[count - 1].revision.main <= revision {
            i = count - 1
        } else {
            var lo = 0
            var hi = count
            while lo < hi {
                let mid = (lo + hi) >> 1
                if history[mid].revision.main <= revision { lo = mid + 1 } else { hi = mid }
            }
            guard lo > 0 else { return nil }
            i = lo - 1
        }
        return history[i].isTombstone ? nil : i
    }

    /// The index of the version stored at exactly `revision`.
    func index(of revision: Revision) -> Int? {
        Self.index(of: revision, in: history)
    }

    /// The index of the version stored at exactly `revision` in `history` (oldest first).
    static func index(of revision: Revision, in history: [VersionRecord]) -> Int? {
        var lo = 0
        var hi = history.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if history[mid].revision < revision { lo = mid + 1 } else { hi = mid }
        }
        return lo < history.count && history[lo].revision == revision ? lo : nil
    }
}

/// A sorted map from key to ``KeyEntry``: a list of sorted chunks (a flat, two-level B-tree).
///
/// Lookups and inserts cost O(log n + chunk size); iteration in key order is sequential.
struct KeyIndex: Sendable {
    /// The maximum number of entries in one chunk before it is split.
    static let maxChunkSize = 512

    struct Position: Hashable, Sendable {
        var chunk: Int
        var index: Int
    }

    private(set) var chunks: [[KeyEntry]] = []
    private(set) var count = 0

    init() {}

    /// Builds an index from entries already sorted by key, without duplicates.
    init(sortedEntries: [KeyEntry]) {
        var start = 0
        let fill = Self.maxChunkSize * 3 / 4
        while start < sortedEntries.count {
            let end = Swift.min(start + fill, sortedEntries.count)
            chunks.append(Array(sortedEntries[start..<end]))
            start = end
        }
        count = sortedEntries.count
    }

    /// The first position whose key is `>= key`; `chunk == chunks.count` if there is none.
    func lowerBound(_ key: [UInt8]) -> Position {
        var lo = 0
        var hi = chunks.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            let chunk = chunks[mid]
            if compareBytes(chunk[chunk.count - 1].key, key) < 0 { lo = mid + 1 } else { hi = mid }
        }
        guard lo < chunks.count else { return Position(chunk: lo, index: 0) }
        let chunk = chunks[lo]
        var a = 0
        var b = chunk.count
        while a < b {
            let mid = (a + b) >> 1
            if compareBytes(chunk[mid].key, key) < 0 { a = mid + 1 } else { b = mid }
        }
        return Position(chunk: lo, index: a)
    }

    /// Returns whether `position` holds exactly `key`.
    func holds(_ key: [UInt8], at position: Position) -> Bool {
        position.chunk < chunks.count && chunks[position.chunk][position.index].key == key
    }

    /// The position of `key`, if present.
    func find(_ key: [UInt8]) -> Position? {
        let p = lowerBound(key)
        return holds(key, at: p) ? p : nil
    }

    /// The entry for `key`, if present.
    func entry(for key: [UInt8]) -> KeyEntry? {
        find(key).map { chunks[$0.chunk][$0.index] }
    }

    subscript(position: Position) -> KeyEntry {
        chunks[position.chunk][position.index]
    }

    /// Runs `body` on the history at `position`, in place.
    mutating func modifyHistory<R>(at position: Position, _ body: (inout [VersionRecord]) -> R) -> R {
        body(&chunks[position.chunk][position.index].history)
    }

    /// Inserts `entry` at `position`, which must come from `lowerBound(entry.key)` with no
    /// mutation in between, and returns the entry's position afterwards.
    mutating func insert(_ entry: KeyEntry, at position: Position) -> Position {
        count += 1
        if chunks.isEmpty {
            chunks.append([entry])
            return Position(chunk: 0, index: 0)
        }
        var c = position.chunk
        var i = position.index
        if c == chunks.count {
            c -= 1
            i = chunks[c].count
        }
        chunks[c].insert(entry, at: i)
        let size = chunks[c].count
        guard size > Self.maxChunkSize else { return Position(chunk: c, index: i) }
        // Appending at the very end (sequential keys): start a fresh chunk so chunks stay full.
        let splitAt = (c == chunks.count - 1 && i == size - 1) ? size - 1 : size / 2
        let tail = Array(chunks[c][splitAt...])
        chunks[c].removeSubrange(splitAt...)
        chunks.insert(tail, at: c + 1)
        return i < splitAt ? Position(chunk: c, index: i) : Position(chunk: c + 1, index: i - splitAt)
    }

    /// Removes the entry at `position`.
    mutating func remove(at position: Position) {
        count -= 1
        chunks[position.chunk].remove(at: position.index)
        if chunks[position.chunk].isEmpty {
            chunks.remove(at: position.chunk)
        }
    }

    /// Calls `body` for each entry in `range`, in key order, until it returns false.
    func forEach(in range: KeyRange, _ body: (KeyEntry) -> Bool) {
        if case .single(let key) = range {
            if let e = entry(for: key) { _ = body(e) }
            return
        }
        var p = lowerBound(range.lowerBound)
        while p.chunk < chunks.count {
            let chunk = chunks[p.chunk]
            while p.index < chunk.count {
                let e = chunk[p.index]
                if range.isPastEnd(e.key) { return }
                if !body(e) { return }
                p.index += 1
            }
            p.chunk += 1
            p.index = 0
        }
    }
}
