/// A deadline for one lease: a time in milliseconds and the lease ID, ordered by time, then ID.
///
/// The order is total, so the sequence of entries popped from a ``DeadlineHeap`` depends only on the
/// entries it holds, never on the order they were pushed in.
struct Deadline: Comparable, Hashable, Sendable {
    /// The time in milliseconds.
    var time: Int64
    /// The lease ID.
    var id: Int64

    static func < (lhs: Deadline, rhs: Deadline) -> Bool {
        lhs.time != rhs.time ? lhs.time < rhs.time : lhs.id < rhs.id
    }
}

/// A binary min-heap of ``Deadline``s: O(log n) push and pop, O(1) peek.
///
/// The owner uses lazy deletion: an entry is stale when it no longer matches the lease's current
/// deadline, and is dropped when it reaches the top.
struct DeadlineHeap: Sendable {
    private(set) var entries: [Deadline] = []

    /// The number of entries, stale ones included.
    var count: Int { entries.count }

    /// The smallest entry, if any.
    var min: Deadline? { entries.first }

    /// Adds an entry. O(log n).
    mutating func push(_ entry: Deadline) {
        entries.append(entry)
        siftUp(from: entries.count - 1)
    }

    /// Removes and returns the smallest entry. O(log n).
    @discardableResult
    mutating func popMin() -> Deadline? {
        guard let first = entries.first else { return nil }
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            siftDown(from: 0)
        }
        return first
    }

    /// Replaces the contents with `newEntries` in O(n) (Floyd's heap construction).
    mutating func rebuild(from newEntries: [Deadline]) {
        entries = newEntries
        var index = entries.count / 2
        while index > 0 {
            index -= 1
            siftDown(from: index)
        }
    }

    /// Removes every entry.
    mutating func removeAll() {
        entries.removeAll()
    }

    private mutating func siftUp(from start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child] < entries[parent] else { return }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(from start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < entries.count else { return }
            var smallest = left
            let right = left + 1
            if right < entries.count && entries[right] < entries[left] { smallest = right }
            guard entries[smallest] < entries[parent] else { return }
            entries.swapAt(smallest, parent)
            parent = smallest
        }
    }
}
