import EtcdWire
import Foundation

/// The key of write `index` under `prefix`, zero-padded so that keys sort by index.
func workloadKey(_ prefix: String, _ index: Int) -> String {
    prefix + String(repeating: "0", count: max(0, 6 - String(index).count)) + String(index)
}

/// The value write `index` puts.
func workloadValue(_ index: Int) -> String { "value-\(index)" }

/// Puts `workloadKey(prefix, i) = workloadValue(i)` for every `i` in `indices` through
/// `client`, `concurrency` at a time; fails on the first error.
///
/// - Returns: The highest revision a put answered.
@discardableResult
func putMany(_ client: EtcdClient, prefix: String, _ indices: Range<Int>, concurrency: Int = 16) async throws -> Int64 {
    try await withThrowingTaskGroup(of: Int64.self) { group in
        var next = indices.lowerBound
        var highest: Int64 = 0
        func addPut() {
            let index = next
            next += 1
            group.addTask { try await client.put(workloadKey(prefix, index), workloadValue(index)).header.revision }
        }
        while next < indices.upperBound, next - indices.lowerBound < concurrency { addPut() }
        while let revision = try await group.next() {
            highest = max(highest, revision)
            if next < indices.upperBound { addPut() }
        }
        return highest
    }
}

/// What ``writeContinuously(_:prefix:count:deadline:)`` did.
struct WriteLog: Sendable {
    /// The writes acknowledged, index to value.
    var acknowledged: [Int: String] = [:]
    /// The writes that failed (their outcome is unknown), with the error.
    var failed: [(index: Int, error: String)] = []
}

/// Puts keys `workloadKey(prefix, 0...)` one after the other through `client` until `count`
/// were acknowledged or `deadline` passed; a failed put is logged and the next key is tried
/// after a short pause. Stops early when the task is cancelled.
func writeContinuously(_ client: EtcdClient, prefix: String, count: Int, deadline: Duration) async -> WriteLog {
    var log = WriteLog()
    let end = ContinuousClock.now + deadline
    var index = 0
    while log.acknowledged.count < count, ContinuousClock.now < end, !Task.isCancelled {
        do {
            try await client.put(workloadKey(prefix, index), workloadValue(index), timeout: .seconds(5))
            log.acknowledged[index] = workloadValue(index)
        } catch {
            log.failed.append((index, "\(error)"))
            try? await Task.sleep(for: .milliseconds(50))
        }
        index += 1
    }
    return log
}

/// The keys and values of `response` as text.
func keyValues(_ response: Etcdserverpb_RangeResponse) -> [String: String] {
    var result: [String: String] = [:]
    for kv in response.kvs {
        result[String(decoding: kv.key, as: UTF8.self)] = String(decoding: kv.value, as: UTF8.self)
    }
    return result
}
