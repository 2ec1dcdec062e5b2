import Linearizability
import Testing

@Suite("Recorded histories (check-history)")
struct RecordedHistoryTests {
    /// Two clients on two keys: a put, a compare-and-swap on each kind, reads, a refused put and
    /// a put whose outcome is unknown but which a later read shows took effect.
    let recorded = """
        # nemesis history
        0 100 200 put k1 a ok
        1 150 250 get k2 - 0
        1 300 400 cas k1 a b true
        0 310 420 casv k2 0 x true
        0 500 600 put k1 c failed
        1 700 - put k2 y unknown
        0 800 900 get k1 b 2
        1 950 990 get k2 y 2
        0 1000 - get k1 unknown
        """

    @Test func readsEveryFieldAndCountsOutcomes() throws {
        let parsed = try RecordedHistory(parsing: recorded)
        #expect(parsed.counts.operations == 9)
        #expect(parsed.counts.ok == 6)
        #expect(parsed.counts.failed == 1)
        #expect(parsed.counts.unknown == 2)
        #expect(parsed.counts.unknownWrites == 1)
        // The refused put and the unknown read are left out; the unknown put stays.
        #expect(parsed.history.count == 7)
        let inputs = parsed.history.operations.map(\.input)
        #expect(inputs[2] == .compareAndSwap(key: "k1", expected: "a", new: "b"))
        #expect(inputs[3] == .compareVersionAndSwap(key: "k2", expectedVersion: 0, new: "x"))
        #expect(parsed.history.operations[1].output == .value(nil, version: 0))
        #expect(parsed.history.operations[4].output == nil)
        #expect(check(parsed.history) == .ok)
    }

    @Test func catchesAStaleRead() throws {
        // The read after the swap returns the value it replaced.
        let doctored = recorded.replacingLine("0 800 900 get k1 b 2", with: "0 800 900 get k1 a 1")
        let result = check(try RecordedHistory(parsing: doctored).history)
        #expect(result.violation?.partition == "k1")
    }

    @Test func catchesALostAcknowledgedWrite() throws {
        // The final read of k2 no longer shows the acknowledged swap or the unknown put.
        let doctored = recorded.replacingLine("1 950 990 get k2 y 2", with: "1 950 990 get k2 - 0")
        let result = check(try RecordedHistory(parsing: doctored).history)
        #expect(result.violation?.partition == "k2")
    }

    @Test func catchesARefusedWriteThatTookEffect() throws {
        // A put reported as refused is seen by a later read.
        let doctored = recorded.replacingLine("0 800 900 get k1 b 2", with: "0 800 900 get k1 c 3")
        #expect(check(try RecordedHistory(parsing: doctored).history).violation != nil)
    }

    @Test func exhaustedBudgetIsNotAPass() throws {
        let result = check(try RecordedHistory(parsing: recorded).history, budget: 2)
        #expect(result.isUnknown)
        #expect(!result.isOK)
    }

    @Test func reportsTheLineOfAMalformedOperation() {
        #expect(throws: RecordedHistory.ParseError(line: 2, reason: "unknown operation \"del\"")) {
            try RecordedHistory(parsing: "0 1 2 put k v ok\n0 3 4 del k ok")
        }
        #expect(throws: RecordedHistory.ParseError(line: 1, reason: "a get's result is VALUE VERSION, failed or unknown")) {
            try RecordedHistory(parsing: "0 1 2 get k v")
        }
        #expect(throws: RecordedHistory.ParseError(line: 1, reason: "return time \"1\" is not a number at or after the call")) {
            try RecordedHistory(parsing: "0 5 1 put k v ok")
        }
    }
}

extension String {
    /// The text with the line `target` replaced by `replacement`.
    fileprivate func replacingLine(_ target: String, with replacement: String) -> String {
        let lines = split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let index = lines.firstIndex(of: target) else { preconditionFailure("\(target) is not a line of the text") }
        var replaced = lines
        replaced[index] = replacement
        return replaced.joined(separator: "\n")
    }
}
