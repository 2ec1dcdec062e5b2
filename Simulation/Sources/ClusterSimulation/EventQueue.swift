/// A priority queue of timed events, ordered by (time, insertion sequence) so that events at the
/// same instant run in the order they were scheduled: the order never depends on anything but
/// the schedule, which keeps a simulation reproducible.
struct EventQueue<Event> {
    /// A scheduled event's place in the order, and the slot that holds the event. The heap
    /// moves only these plain values; an event stays in its slot until it is popped.
    private struct Key {
        var time: UInt64
        var sequence: UInt64
        var slot: Int
        func precedes(_ other: Key) -> Bool {
            time != other.time ? time < other.time : sequence < other.sequence
        }
    }

    private var heap: [Key] = []
    /// The scheduled events, by slot; `nil` in a free slot.
    private var slots: [Event?] = []
    /// Slots free for reuse.
    private var freeSlots: [Int] = []
    private var nextSequence: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var nextTime: UInt64? { heap.first?.time }

    mutating func schedule(_ event: Event, at time: UInt64) {
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            slots[slot] = event
        } else {
            slot = slots.count
            slots.append(event)
        }
        heap.append(Key(time: time, sequence: nextSequence, slot: slot))
        nextSequence += 1
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (time: UInt64, event: Event)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let key = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count && heap[left].precedes(heap[smallest]) { smallest = left }
            if right < heap.count && heap[right].precedes(heap[smallest]) { smallest = right }
            if smallest == parent { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        let event = slots[key.slot].take()!
        freeSlots.append(key.slot)
        return (key.time, event)
    }
}

/// FNV-1a over 64-bit words: the simulator's trace hash and its fingerprints of log entries.
public struct StableHasher: Sendable, Hashable {
    /// The hash so far.
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    /// Creates a hasher at the FNV offset basis.
    public init() {}

    /// Mixes in one 64-bit word, byte by byte.
    public mutating func combine(_ word: UInt64) {
        var w = word
        for _ in 0..<8 {
            value ^= w & 0xFF
            value = value &* 0x0000_0100_0000_01B3
            w >>= 8
        }
    }

    /// Mixes in bytes and their count.
    public mutating func combine(bytes: [UInt8]) {
        combine(UInt64(bytes.count))
        for byte in bytes {
            value ^= UInt64(byte)
            value = value &* 0x0000_0100_0000_01B3
        }
    }
}
