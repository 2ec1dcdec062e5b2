// Measures a single Statehouse member (voters [1]) applying puts to RocksDB: every Raft batch
// is one synced log write (storage.persist) plus one unsynced state write (storage.write).
//
//   statehouse-bench-apply [PUTS]      (default 20000; 8-byte keys, 256-byte values)
//
// For each group size (puts proposed per Raft batch) it reports throughput, the number of Raft
// batches and the number of synced (fsynced) writes counted at the storage engine.

import Glibc
import StateMachine
import ReplicatedMember
import RaftCore
import Storage
import StorageRocksDB

/// Forwards to an engine and counts its writes.
final class CountingEngine: StorageEngine {
    let base: any StorageEngine
    var syncedWrites = 0
    var unsyncedWrites = 0

    init(_ base: any StorageEngine) { self.base = base }

    func get(_ key: [UInt8]) throws(StorageError) -> [UInt8]? { try base.get(key) }

    func write(_ batch: StorageBatch, sync: Bool) throws(StorageError) {
        if sync { syncedWrites += 1 } else { unsyncedWrites += 1 }
        try base.write(batch, sync: sync)
    }

    func scan(from start: [UInt8], to end: [UInt8]?, limit: Int?, reverse: Bool) throws(StorageError) -> [StorageRecord] {
        try base.scan(from: start, to: end, limit: limit, reverse: reverse)
    }
}

struct Result {
    var groupSize: Int
    var seconds: Double
    var batches: Int
    var syncedWrites: Int
    var unsyncedWrites: Int
}

func fail(_ message: String) -> Never {
    var text = Array("statehouse-bench-apply: \(message)\n".utf8)
    _ = Glibc.write(STDERR_FILENO, &text, text.count)
    exit(1)
}

func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

func makeTemporaryDirectory() -> String {
    var template = Array("/tmp/statehouse-bench-XXXXXX".utf8CString)
    guard let path = mkdtemp(&template) else { fail("mkdtemp failed") }
    return String(cString: path)
}

func run(groupSize: Int, puts: Int, directory: String) throws -> Result {
    let rocks = try RocksDBEngine(path: directory)
    defer { try? rocks.close() }
    let engine = CountingEngine(rocks)
    let storage = try MemberStorage(engine: engine, store: MemberConfiguration(id: 1).storeConfiguration)
    try storage.bootstrap(voters: [1])
    var configuration = MemberConfiguration(id: 1)
    configuration.incarnation = UInt64.random(in: 1...UInt64.max)
    var member = Member(configuration: configuration, recovered: try storage.recover())
    var batches = 0

    func runBatch() throws -> Int {
        let ready = member.startBatch()
        try storage.persist(ready)
        let output = member.finishBatch()
        try storage.write(output)
        batches += 1
        var answered = 0
        for (id, response) in output.responses {
            guard case .write(.put) = response else { fail("put \(id) failed: \(response)") }
            answered += 1
        }
        return answered
    }

    while member.hasBatch { _ = try runBatch() }
    member.campaign()
    while member.hasBatch { _ = try runBatch() }
    guard member.raft.role == .leader else { fail("member did not become leader") }

    // Count only the measured phase.
    engine.syncedWrites = 0
    engine.unsyncedWrites = 0
    batches = 0
    let value = [UInt8](repeating: UInt8(ascii: "v"), count: 256)
    let started = monotonicSeconds()
    var next = 0
    var acked = 0
    while acked < puts {
        // Pipelined: each batch syncs the newest group's entries and applies the previous group.
        if next < puts {
            let group = min(groupSize, puts - next)
            for i in next..<next + group {
                var key = [UInt8](repeating: 0, count: 8)
                for byte in 0..<8 { key[byte] = UInt8(truncatingIfNeeded: UInt64(i) >> UInt64(56 - 8 * byte)) }
                if let answer = member.submit(.write(.put(PutRequest(key: key, value: value))), id: RequestID(i + 1)) {
                    fail("put \(i) refused: \(answer)")
                }
            }
            next += group
        }
        acked += try runBatch()
    }
    let seconds = monotonicSeconds() - started
    guard member.store.keyCount == puts else { fail("expected \(puts) keys, found \(member.store.keyCount)") }
    return Result(
        groupSize: groupSize, seconds: seconds, batches: batches,
        syncedWrites: engine.syncedWrites, unsyncedWrites: engine.unsyncedWrites)
}

func pad(_ text: String, _ width: Int) -> String {
    String(repeating: " ", count: max(0, width - text.count)) + text
}

func format(_ value: Double, decimals: Int) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    var text = String(rounded)
    if let dot = text.firstIndex(of: ".") {
        let fraction = text[text.index(after: dot)...].count
        if decimals == 0 {
            text = String(text[..<dot])
        } else if fraction < decimals {
            text += String(repeating: "0", count: decimals - fraction)
        }
    }
    return text
}

let puts = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 20_000 : 20_000
print("\(puts) puts per run, 8-byte keys, 256-byte values, RocksDB, one member")
print(
    "\(pad("puts/batch", 10)) \(pad("seconds", 8)) \(pad("ops/s", 9)) \(pad("batches", 8)) \(pad("fsyncs", 7)) \(pad("unsynced", 8)) \(pad("us/fsync", 9))"
)
for groupSize in [1, 16, 64, 256] {
    let directory = makeTemporaryDirectory()
    defer { _ = system("rm -rf '\(directory)'") }
    do {
        let r = try run(groupSize: groupSize, puts: puts, directory: directory)
        let opsPerSecond = Double(puts) / r.seconds
        let microsPerSync = r.seconds * 1e6 / Double(max(r.syncedWrites, 1))
        print(
            "\(pad(String(r.groupSize), 10)) \(pad(format(r.seconds, decimals: 2), 8)) \(pad(format(opsPerSecond, decimals: 0), 9)) "
                + "\(pad(String(r.batches), 8)) \(pad(String(r.syncedWrites), 7)) \(pad(String(r.unsyncedWrites), 8)) \(pad(format(microsPerSync, decimals: 0), 9))"
        )
    } catch {
        fail("\(error)")
    }
}
