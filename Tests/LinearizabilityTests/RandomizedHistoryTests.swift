import Linearizability
import Primitives
import RaftCore
import TestSupport
import Testing

/// Simulates clients against an atomic key/value store: each operation takes
/// effect at a random instant inside its interval, so the history is
/// linearizable by construction. Written values are unique. Some writes time
/// out; those take effect at a random later instant, or never.
func generateHistory(
    seed: UInt64, clients: Int, operationsPerClient: Int, keys: Int,
    unknownPercent: Int = 3
) -> KVHistory {
    var random = SeededGenerator(seed: seed)
    struct Planned { var operation: Int; var effect: Int64 }
    var operations: [(client: Int, input: KeyValueModel.Input, call: Int64, ret: Int64?, withVersion: Bool)] = []
    var planned: [Planned] = []
    for client in 0..<clients {
        var time = Int64.random(in: 0..<10, using: &random)
        for index in 0..<operationsPerClient {
            let key = "k\(Int.random(in: 0..<keys, using: &random))"
            let value = "c\(client)-\(index)"
            let input: KeyValueModel.Input
            switch Int.random(in: 0..<100, using: &random) {
            case ..<40: input = .get(key: key)
            case ..<70: input = .put(key: key, value: value)
            case ..<76: input = .delete(key: key)
            case ..<94:
                let earlier = planned.last { operations[$0.operation].input.key == key }
                let expected: String? =
                    switch earlier.map({ operations[$0.operation].input }) {
                    case .put(_, let value)?, .compareAndSwap(_, _, let value)?: value
                    default: nil
                    }
                input = .compareAndSwap(key: key, expected: expected, new: value)
            default:
                input = .compareVersionAndSwap(key: key, expectedVersion: Int64.random(in: 0...3, using: &random), new: value)
            }
            let duration = Int64.random(in: 1...30, using: &random)
            let timedOut: Bool =
                if case .get = input { false } else {
                    Int.random(in: 0..<100, using: &random) < unknownPercent
                }
            operations.append(
                (
                    client, input, time, timedOut ? nil : time + duration,
                    Bool.random(using: &random)
                ))
            if !timedOut {
                planned.append(
                    Planned(
                        operation: operations.count - 1,
                        effect: time + Int64.random(in: 0...duration, using: &random)))
            } else if Bool.random(using: &random) {
                planned.append(
                    Planned(
                        operation: operations.count - 1,
                        effect: time + Int64.random(in: 0...200, using: &random)))
            }
            time += duration + Int64.random(in: 0...5, using: &random)
        }
    }
    // Apply the effects in time order to a reference store to get the outputs.
    planned.sort { ($0.effect, $0.operation) < ($1.effect, $1.operation) }
    var store: [String: (value: String, version: Int64)] = [:]
    var outputs = [KeyValueModel.Output?](repeating: nil, count: operations.count)
    for plan in planned {
        let operation = operations[plan.operation]
        let current = store[operation.input.key]
        switch operation.input {
        case .get:
            outputs[plan.operation] =
                operation.withVersion
                ? .value(current?.value, version: current?.version ?? 0) : .value(current?.value)
        case .put(let key, let value):
            store[key] = (value, (current?.version ?? 0) + 1)
            outputs[plan.operation] = .ok
        case .delete(let key):
            store[key] = nil
            outputs[plan.operation] = .deleted(current == nil ? 0 : 1)
        case .compareAndSwap(let key, let expected, let new):
            let matches = current?.value == expected
            if matches { store[key] = (new, (current?.version ?? 0) + 1) }
            outputs[plan.operation] = .swapped(matches)
        case .compareVersionAndSwap(let key, let expectedVersion, let new):
            let matches = (current?.version ?? 0) == expectedVersion
            if matches { store[key] = (new, (current?.version ?? 0) + 1) }
            outputs[plan.operation] = .swapped(matches)
        }
    }
    var history = KVHistory()
    for (index, operation) in operations.enumerated() {
        if let ret = operation.ret, let output = outputs[index] {
            history.append(client: operation.client, operation.input, call: operation.call, return: ret, output: output)
        } else {
            history.appendUnknown(client: operation.client, operation.input, call: operation.call)
        }
    }
    return history
}

/// Rewrites one read to return a value that was certainly overwritten before
/// the read began: put w1 returned before put w2 was called, and w2 returned
/// before the read was called. Returns the read's id and key.
func injectStaleRead(into history: inout KVHistory) -> (id: Int, key: String)? {
    let operations = history.operations
    func completedPuts(on key: String) -> [(id: Int, value: String)] {
        operations.indices.compactMap { id in
            guard case .put(key, let value) = operations[id].input, operations[id].returnTime != nil else { return nil }
            return (id, value)
        }
    }
    for read in operations.indices.reversed() {
        guard case .get(let key) = operations[read].input,
            case .returned(.value(let seen, _), let returnTime) = operations[read].outcome
        else { continue }
        let puts = completedPuts(on: key)
        for second in puts where operations[second.id].returnTime! < operations[read].callTime {
            if let first = puts.first(where: { operations[$0.id].returnTime! < operations[second.id].callTime }),
                first.value != seen
            {
                var rewritten = operations
                rewritten[read].outcome = .returned(.value(first.value), at: returnTime)
                history = KVHistory(rewritten)
                return (read, key)
            }
        }
    }
    return nil
}

@Suite("Randomized histories", .onOwnThreads)
struct RandomizedHistoryTests {
    @Test(arguments: 1...12 as ClosedRange<UInt64>)
    func singleKeyHistoriesAreAcceptedAndStaleReadsRejected(seed: UInt64) throws {
        var history = generateHistory(seed: seed, clients: 5, operationsPerClient: 30, keys: 1)
        #expect(check(history) == .ok)
        let (read, key) = try #require(injectStaleRead(into: &history))
        let violation = try #require(check(history).violation)
        #expect(violation.partition == key)
        #expect(violation.operationIDs.contains(read))
    }

    @Test func largeMultiKeyHistoryIsAcceptedAndStaleReadRejected() throws {
        var history = generateHistory(seed: 42, clients: 12, operationsPerClient: 300, keys: 60)
        #expect(history.count == 3_600)
        #expect(check(history) == .ok)
        let (read, key) = try #require(injectStaleRead(into: &history))
        let violation = try #require(check(history).violation)
        #expect(violation.partition == key)
        #expect(violation.operationIDs.contains(read))
        #expect(violation.operationIDs.allSatisfy { history.operations[$0].input.key == key })
    }

    @Test func generatedHistoriesContainUnknownOutcomes() {
        let history = generateHistory(seed: 7, clients: 12, operationsPerClient: 300, keys: 60)
        let unknown = history.operations.count { $0.returnTime == nil }
        #expect(unknown > 20)
    }
}
