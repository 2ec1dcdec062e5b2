import Linearizability
import Testing

/// A crash leaves many writes unanswered; each may have taken effect at any time after its call.
/// The checker must stay exact while not trying every subset of them.
@Suite("Unanswered writes")
struct UnansweredWriteTests {
    /// `unanswered` writes whose values no one observes, then 20 acknowledged writes and a read
    /// of the last one whose version counts every write that took effect.
    private static func history(unanswered: Int, finalVersion: Int64) -> KVHistory {
        var h = KVHistory()
        var time: Int64 = 0
        for i in 0..<unanswered {
            h.appendUnknown(client: 100 + i, .put(key: "x", value: "lost-\(i)"), call: time)
            time += 1
        }
        // Acknowledged writes, then a read that names the value last written and the version.
        for i in 0..<20 {
            h.append(client: 1, .put(key: "x", value: "ok-\(i)"), call: time, return: time + 1, output: .ok)
            time += 2
        }
        h.append(client: 1, .get(key: "x"), call: time, return: time + 1, output: .value("ok-19", version: finalVersion))
        return h
    }

    @Test("sixty unanswered writes whose values no one reads: any number of them may have applied")
    func manyUnobservedWrites() {
        for applied in [0, 7, 60] {
            let h = Self.history(unanswered: 60, finalVersion: Int64(20 + applied))
            #expect(check(h.forgettingUnobservedValues(), budget: 200_000) == .ok, "\(applied) applied")
        }
        // More writes than were ever issued cannot explain the version.
        let impossible = Self.history(unanswered: 60, finalVersion: 81)
        #expect(check(impossible.forgettingUnobservedValues(), budget: 200_000).violation != nil)
    }

    @Test("without the placeholder the same history is beyond the budget, so the rewrite is what makes it checkable")
    func budgetNeedsThePlaceholder() {
        let h = Self.history(unanswered: 60, finalVersion: 27)
        #expect(check(h, budget: 200_000).isUnknown)
    }

    @Test("a value someone read is kept, and must have been written before the read")
    func observedValueIsKept() throws {
        var h = KVHistory()
        h.appendUnknown(client: 2, .put(key: "x", value: "seen"), call: 0)
        h.appendUnknown(client: 3, .put(key: "x", value: "unseen"), call: 1)
        h.append(client: 1, .get(key: "x"), call: 10, return: 11, output: .value("seen", version: 1))
        let rewritten = h.forgettingUnobservedValues()
        #expect(rewritten.operations[0].input == .put(key: "x", value: "seen"))
        #expect(rewritten.operations[1].input == .put(key: "x", value: KVHistory.unobservedValue))
        #expect(check(rewritten) == .ok)
        // A read of the seen value before its write was called is not linearizable.
        var early = KVHistory()
        early.append(client: 1, .get(key: "x"), call: 0, return: 1, output: .value("seen", version: 1))
        early.appendUnknown(client: 2, .put(key: "x", value: "seen"), call: 5)
        #expect(check(early.forgettingUnobservedValues()).violation != nil)
    }

    @Test("identical unanswered compare-and-swaps stand in for each other, and a second success is still refused")
    func twinCompareAndSwaps() {
        var h = KVHistory()
        h.append(client: 1, .put(key: "x", value: "a"), call: 0, return: 1, output: .ok)
        for i in 0..<40 {
            h.appendUnknown(client: 10 + i, .compareAndSwap(key: "x", expected: "a", new: "b-\(i)"), call: 2 + Int64(i))
        }
        // At most one of them can succeed: version 2 is possible, version 3 is not.
        var possible = h
        possible.append(
            client: 1, .compareVersionAndSwap(key: "x", expectedVersion: 2, new: "c"), call: 100, return: 101,
            output: .swapped(true))
        #expect(check(possible.forgettingUnobservedValues(), budget: 200_000) == .ok)
        var impossible = h
        impossible.append(
            client: 1, .compareVersionAndSwap(key: "x", expectedVersion: 3, new: "c"), call: 100, return: 101,
            output: .swapped(true))
        #expect(check(impossible.forgettingUnobservedValues(), budget: 200_000).violation != nil)
    }
}
