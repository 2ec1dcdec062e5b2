import Linearizability
import Testing

typealias KVHistory = History<KeyValueModel>

func check(_ history: KVHistory, budget: Int = 5_000_000) -> LinearizabilityResult {
    LinearizabilityChecker(model: KeyValueModel(), stepBudget: budget).check(history)
}

@Suite("Key/value histories")
struct KeyValueCheckerTests {
    @Test func emptyHistoryIsLinearizable() {
        #expect(check(KVHistory()) == .ok)
    }

    @Test func sequentialHistoryIsAccepted() {
        var h = KVHistory()
        h.append(client: 1, .get(key: "x"), call: 0, return: 1, output: .value(nil, version: 0))
        h.append(client: 1, .put(key: "x", value: "a"), call: 2, return: 3, output: .ok)
        h.append(client: 2, .get(key: "x"), call: 4, return: 5, output: .value("a", version: 1))
        h.append(client: 2, .compareAndSwap(key: "x", expected: "a", new: "b"), call: 6, return: 7, output: .swapped(true))
        h.append(client: 1, .compareAndSwap(key: "x", expected: "a", new: "c"), call: 8, return: 9, output: .swapped(false))
        h.append(client: 1, .compareVersionAndSwap(key: "x", expectedVersion: 2, new: "d"), call: 10, return: 11, output: .swapped(true))
        h.append(client: 2, .get(key: "x"), call: 12, return: 13, output: .value("d"))
        h.append(client: 2, .delete(key: "x"), call: 14, return: 15, output: .deleted(1))
        h.append(client: 1, .delete(key: "x"), call: 16, return: 17, output: .deleted(0))
        h.append(client: 1, .compareAndSwap(key: "x", expected: nil, new: "e"), call: 18, return: 19, output: .swapped(true))
        h.append(client: 2, .get(key: "x"), call: 20, return: 21, output: .value("e", version: 1))
        #expect(check(h) == .ok)
    }

    @Test func concurrentHistoryNeedingReorderingIsAccepted() {
        // In call order (put a, put b, get) the read would see b; only the
        // order put b, put a, get explains it.
        var h = KVHistory()
        h.append(client: 1, .put(key: "x", value: "a"), call: 0, return: 100, output: .ok)
        h.append(client: 2, .put(key: "x", value: "b"), call: 10, return: 20, output: .ok)
        h.append(client: 3, .get(key: "x"), call: 30, return: 40, output: .value("a", version: 2))
        // A read overlapping a put may see either value.
        h.append(client: 2, .put(key: "x", value: "c"), call: 110, return: 130, output: .ok)
        h.append(client: 3, .get(key: "x"), call: 115, return: 120, output: .value("a"))
        h.append(client: 1, .get(key: "x"), call: 116, return: 125, output: .value("c"))
        #expect(check(h) == .ok)
    }

    @Test func operationsTouchingAtOneTickAreConcurrent() {
        var h = KVHistory()
        h.append(client: 1, .put(key: "x", value: "a"), call: 0, return: 10, output: .ok)
        h.append(client: 2, .get(key: "x"), call: 10, return: 20, output: .value(nil))
        #expect(check(h) == .ok)
        h.append(client: 2, .get(key: "x"), call: 21, return: 22, output: .value(nil))
        #expect(check(h).violation != nil)
    }

    @Test func staleReadIsRejected() throws {
        var h = KVHistory()
        h.append(client: 1, .put(key: "x", value: "a"), call: 0, return: 10, output: .ok)
        h.append(client: 1, .put(key: "x", value: "b"), call: 20, return: 30, output: .ok)
        let read = h.append(client: 2, .get(key: "x"), call: 40, return: 50, output: .value("a"))
        let violation = try #require(check(h).violation)
        #expect(violation.partition == "x")
        #expect(violation.operationIDs == [0, 1, 2])
        #expect(violation.longestLinearizablePrefix == [0, 1])
        #expect(violation.stateAfterPrefix == "b (version 2)")
        #expect(violation.blockedOperationIDs == [read])
        #expect(violation.description.contains("#2 client 2 [40, 50] get(x) -> a  (illegal in this state)"))
    }

    @Test func lostWriteIsRejected() {
        var h = KVHistory()
        h.append(client: 1, .put(key: "x", value: "a"), call: 0, return: 10, output: .ok)
        h.append(client: 2, .get(key: "x"), call: 20, return: 30, output: .value(nil))
        #expect(check(h).violation?.blockedOperationIDs == [1])

        var overwritten = KVHistory()
        overwritten.append(client: 1, .put(key: "x", value: "a"), call: 0, return: 10, output: .ok)
        overwritten.append(client: 2, .put(key: "x", value: "b"), call: 20, return: 30, output: .ok)
        overwritten.append(client: 3, .get(key: "x"), call: 25, return: 28, output: .value("b"))
        overwritten.append(client: 3, .get(key: "x"), call: 40, return: 50, output: .value("a"))
        #expect(check(overwritten).violation != nil)
    }

    @Test func wrongVersionOrDeleteCountIsRejected() {
        var h = KVHistory()
        h.append(client: 1, .put(key: "x", value: "a"), call: 0, return: 10, output: .ok)
        h.append(client: 1, .put(key: "x", value: "a"), call: 20, return: 30, output: .ok)
        h.append(client: 2, .get(key: "x"), call: 40, return: 50, output: .value("a", version: 1))
        #expect(check(h).violation != nil)

        var deletes = KVHistory()
        deletes.append(client: 1, .delete(key: "x"), call: 0, return: 10, output: .deleted(1))
        #expect(check(deletes).violation != nil)
    }

    @Test func casReportingSuccessOnMismatchIsRejected() {
        var h = KVHistory()
        h.append(client: 1, .put(key: "x", value: "a"), call: 0, return: 10, output: .ok)
        h.append(client: 2, .compareAndSwap(key: "x", expected: "z", new: "c"), call: 20, return: 30, output: .swapped(true))
        #expect(check(h).violation?.blockedOperationIDs == [1])

        var absent = KVHistory()
        absent.append(client: 1, .put(key: "x", value: "a"), call: 0, return: 10, output: .ok)
        absent.append(client: 2, .compareAndSwap(key: "x", expected: nil, new: "c"), call: 20, return: 30, output: .swapped(true))
        #expect(check(absent).violation != nil)
    }

    @Test func casReportingFailureOnMatchIsRejected() {
        var h = KVHistory()
        h.append(client: 1, .put(key: "x", value: "a"), call: 0, return: 10, output: .ok)
        h.append(client: 2, .compareAndSwap(key: "x", expected: "a", new: "c"), call: 20, return: 30, output: .swapped(false))
        #expect(check(h).violation != nil)

        // The same CAS failing is fine if a concurrent put may have come first.
        h.append(client: 3, .put(key: "x", value: "b"), call: 15, return: 40, output: .ok)
        #expect(check(h) == .ok)
    }

    @Test func unknownWriteMayBeSeenOrNot() {
        var seen = KVHistory()
        seen.append(client: 1, .put(key: "x", value: "a"), call: 0, return: 10, output: .ok)
        seen.appendUnknown(client: 1, .put(key: "x", value: "b"), call: 20)
        seen.append(client: 2, .get(key: "x"), call: 1_000, return: 1_010, output: .value("b", version: 2))
        #expect(check(seen) == .ok)

        var unseen = KVHistory()
        unseen.append(client: 1, .put(key: "x", value: "a"), call: 0, return: 10, output: .ok)
        unseen.appendUnknown(client: 1, .put(key: "x", value: "b"), call: 20)
        unseen.append(client: 2, .get(key: "x"), call: 1_000, return: 1_010, output: .value("a", version: 1))
        #expect(check(unseen) == .ok)

        // Not seen at first, then seen: it took effect late.
        unseen.append(client: 2, .get(key: "x"), call: 2_000, return: 2_010, output: .value("b"))
        #expect(check(unseen) == .ok)
    }

    @Test func unknownWriteCannotBeUnseenOrSeenBeforeItsCall() throws {
        var h = KVHistory()
        h.append(client: 1, .put(key: "x", value: "a"), call: 0, return: 10, output: .ok)
        h.appendUnknown(client: 1, .put(key: "x", value: "b"), call: 20)
        h.append(client: 2, .get(key: "x"), call: 30, return: 40, output: .value("b"))
        h.append(client: 2, .get(key: "x"), call: 50, return: 60, output: .value("a"))
        let violation = try #require(check(h).violation)
        #expect(violation.blockedOperationIDs.contains(3))

        var early = KVHistory()
        early.append(client: 2, .get(key: "x"), call: 0, return: 10, output: .value("b"))
        early.appendUnknown(client: 1, .put(key: "x", value: "b"), call: 20)
        #expect(check(early).violation != nil)
    }

    @Test func unknownCompareAndSwapTakesEffectOnlyIfItMatches() {
        var h = KVHistory()
        h.append(client: 1, .put(key: "x", value: "a"), call: 0, return: 10, output: .ok)
        h.appendUnknown(client: 1, .compareAndSwap(key: "x", expected: "z", new: "b"), call: 20)
        h.append(client: 2, .get(key: "x"), call: 30, return: 40, output: .value("b"))
        #expect(check(h).violation != nil)

        var matching = KVHistory()
        matching.append(client: 1, .put(key: "x", value: "a"), call: 0, return: 10, output: .ok)
        matching.appendUnknown(client: 1, .compareAndSwap(key: "x", expected: "a", new: "b"), call: 20)
        matching.appendUnknown(client: 3, .delete(key: "x"), call: 21)
        matching.append(client: 2, .get(key: "x"), call: 30, return: 40, output: .value("b"))
        matching.append(client: 2, .get(key: "x"), call: 50, return: 60, output: .value(nil))
        #expect(check(matching) == .ok)
    }

    @Test func invokeAndCompleteRecordConcurrentOperations() {
        var h = KVHistory()
        let put = h.invoke(client: 1, .put(key: "x", value: "a"), at: 0)
        let timedOut = h.invoke(client: 3, .put(key: "x", value: "b"), at: 1)
        let get = h.invoke(client: 2, .get(key: "x"), at: 2)
        h.complete(get, returning: .value("a"), at: 5)
        h.complete(put, returning: .ok, at: 6)
        #expect(h.operations[timedOut].returnTime == nil)
        #expect(h.operations[get].output == .value("a"))
        #expect(check(h) == .ok)
    }

    @Test func violationIsReportedForTheOffendingKeyOnly() throws {
        var h = KVHistory()
        for (index, key) in ["x", "y", "z"].enumerated() {
            let base = Int64(index)
            h.append(client: 1, .put(key: key, value: "1"), call: base, return: base + 10, output: .ok)
            h.append(client: 2, .put(key: key, value: "2"), call: base + 15, return: base + 30, output: .ok)
            h.append(client: 3, .get(key: key), call: base + 40, return: base + 50, output: .value(key == "y" ? "1" : "2"))
        }
        let violation = try #require(check(h).violation)
        #expect(violation.partition == "y")
        #expect(violation.operationIDs == [3, 4, 5])
        #expect(violation.description.hasPrefix("linearizability violation in partition y (3 operations)"))

        // A second bad key does not change which one is reported first.
        h.append(client: 3, .get(key: "z"), call: 100, return: 101, output: .value("3"))
        #expect(check(h).violation?.partition == "y")
    }

    @Test func tinyBudgetGivesUnknown() {
        var h = KVHistory()
        for client in 0..<8 {
            h.append(client: client, .put(key: "x", value: "\(client)"), call: 0, return: 100, output: .ok)
        }
        h.append(client: 9, .get(key: "x"), call: 200, return: 210, output: .value("3"))
        #expect(check(h, budget: 5) == .unknown(partitions: ["x"]))
        #expect(check(h) == .ok)
    }

    @Test func resultsAreDeterministic() {
        var h = KVHistory()
        for i in 0..<6 {
            let t = Int64(i * 3)
            h.append(client: i, .put(key: "k\(i % 3)", value: "v\(i)"), call: t, return: t + 20, output: .ok)
            h.append(client: i, .get(key: "k\(i % 3)"), call: t + 30, return: t + 31, output: .value("v0"))
        }
        let first = check(h)
        #expect(first.violation != nil)
        #expect(check(h) == first)
    }
}

@Suite("Register model")
struct RegisterModelTests {
    @Test func readsAndWrites() {
        let checker = LinearizabilityChecker(model: RegisterModel(initialValue: 7))
        var h = History<RegisterModel>()
        h.append(client: 1, .read, call: 0, return: 1, output: .value(7))
        h.append(client: 1, .write(1), call: 2, return: 10, output: .ok)
        h.append(client: 2, .read, call: 3, return: 4, output: .value(1))
        h.append(client: 3, .read, call: 5, return: 6, output: .value(1))
        #expect(checker.check(h) == .ok)
        h.append(client: 3, .read, call: 11, return: 12, output: .value(7))
        #expect(checker.check(h).violation?.partition == "0")
    }
}
