// A single-member Statehouse node (voters [1]) on RocksDB, for crash-recovery tests.
//
//   crash-member write DIR COUNT
//       Opens the member in DIR (bootstrapping an empty directory), elects it, prints
//       `start S` where S is the number of keys already stored, then puts `key-<i>` =
//       `value-<i>` for i in S..<S+COUNT in Raft batches of 1…50 puts, printing `acked <i>`
//       once the batch that applied put i is synced (log) and written (state machine).
//
//   crash-member verify DIR
//       Recovers the member, applies the entries its log holds as committed, and prints every
//       key as `key=value`, then `recovered <index>` (the applied index found on disk),
//       `applied <index>` and `revision <rev>`.
//
// Either mode may be killed at any point; `verify` must then show every acknowledged put.

import Glibc
import Primitives
import RaftCore
import ReplicatedMember
import StateMachine
import Storage
import StorageRocksDB

/// The member and its storage, driven by the batch contract of ``Member``.
struct Shell {
    var member: Member
    let storage: MemberStorage

    /// Member 1 of a single-voter group; every start gets a fresh incarnation.
    static func configuration() -> MemberConfiguration {
        var configuration = MemberConfiguration(id: 1)
        configuration.incarnation = UInt64.random(in: 1...UInt64.max)
        return configuration
    }

    /// Opens the member stored in `directory`, bootstrapping a single-voter group if it is empty.
    init(directory: String) throws {
        let engine = try RocksDBEngine(path: directory)
        storage = try MemberStorage(engine: engine, store: MemberConfiguration(id: 1).storeConfiguration)
        if storage.isEmpty { try storage.bootstrap(voters: [1]) }
        member = Member(configuration: Self.configuration(), recovered: try storage.recover())
    }

    /// Runs one batch: log durable (synced), apply, state written; returns the responses.
    mutating func runBatch() throws -> [(RequestID, ClientResponse)] {
        let ready = member.startBatch()
        try storage.persist(ready)
        let output = member.finishBatch()
        // A single member has no peers: output.messages is empty.
        try storage.write(output)
        return output.responses
    }

    /// Runs batches until the member has nothing left to do.
    mutating func settle() throws {
        while member.hasBatch { _ = try runBatch() }
    }

    /// Applies what the log holds, then makes the member leader and applies everything.
    mutating func becomeLeader() throws {
        try settle()  // applies the founding membership entry: the member becomes a voter
        for _ in 0..<100 where member.raft.role != .leader {
            member.campaign()
            try settle()
            if member.raft.role != .leader { member.tick() }
        }
        guard member.raft.role == .leader else { fail("member did not become leader") }
        try settle()  // commits and applies the new term's empty entry and everything before it
    }
}

/// A deterministic generator of batch sizes from 1 to 50.
struct BatchSizes {
    var generator = SeededGenerator(seed: 0x5EED)

    mutating func next() -> Int { Int(generator.next() % 50) + 1 }
}

/// Writes `text` to a file descriptor unbuffered: once this returns, a reader of the pipe can see it.
func emit(_ text: String, to descriptor: Int32 = STDOUT_FILENO) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        if written < 0 && errno == EINTR { continue }
        guard written > 0 else { exit(2) }
        bytes = bytes.dropFirst(written)
    }
}

func fail(_ message: String) -> Never {
    emit("crash-member: \(message)\n", to: STDERR_FILENO)
    exit(1)
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

func writeMode(directory: String, count: Int) throws {
    var shell = try Shell(directory: directory)
    try shell.becomeLeader()
    let start = shell.member.store.keyCount
    emit("start \(start)\n")

    let end = start + count
    var next = start
    var acked = start
    var sizes = BatchSizes()
    while acked < end {
        // Propose the next group; its entries go into the coming batch, which also applies the
        // group before it (committed once the previous batch made it durable).
        if next < end {
            let group = min(sizes.next(), end - next)
            for i in next..<next + group {
                let put = PutRequest(key: bytes("key-\(i)"), value: bytes("value-\(i)"))
                if let answer = shell.member.submit(.write(.put(put)), id: RequestID(i + 1)) {
                    fail("put \(i) refused: \(answer)")
                }
            }
            next += group
        }
        guard shell.member.hasBatch else { fail("no batch with \(next - acked) puts outstanding") }
        // runBatch returns only after storage.persist (synced) and storage.write.
        var acknowledgements = ""
        for (id, response) in try shell.runBatch() {
            let i = Int(id) - 1
            guard case .write(.put) = response else { fail("put \(i) failed: \(response)") }
            guard i == acked else { fail("put \(i) answered, expected \(acked)") }
            acknowledgements += "acked \(i)\n"
            acked += 1
        }
        emit(acknowledgements)
    }
    try shell.settle()
    try shell.storage.engine.close()
}

func verifyMode(directory: String) throws {
    var shell = try Shell(directory: directory)
    let recovered = shell.member.appliedIndex
    try shell.settle()  // a restarted member applies the entries its log holds as committed
    let response = try shell.member.store.range(RangeRequest(key: [0], rangeEnd: [0]))
    var text = ""
    for kv in response.kvs {
        text += String(decoding: kv.key, as: UTF8.self) + "=" + String(decoding: kv.value, as: UTF8.self) + "\n"
    }
    text += "recovered \(recovered)\napplied \(shell.member.appliedIndex)\nrevision \(response.revision)\n"
    emit(text)
    try shell.storage.engine.close()
}

extension StorageEngine {
    func close() throws {
        try (self as? RocksDBEngine)?.close()
    }
}

let arguments = CommandLine.arguments
do {
    switch (arguments.count, arguments.count > 1 ? arguments[1] : "") {
    case (4, "write"):
        guard let count = Int(arguments[3]), count >= 0 else { fail("COUNT must be a non-negative integer") }
        try writeMode(directory: arguments[2], count: count)
    case (3, "verify"):
        try verifyMode(directory: arguments[2])
    default:
        fail("usage: crash-member write DIR COUNT | verify DIR")
    }
} catch {
    fail("\(error)")
}
