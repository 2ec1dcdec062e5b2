// decoder-fuzzer: feeds arbitrary bytes to every decoder of bytes that come from disk or from
// another member: Raft messages, entries, hard state, membership changes and snapshot metadata;
// the state machine's wire requests, responses, key/values and events; snapshot data and the
// state restored from it. A decoder may refuse its input; it must never crash; what it accepts
// must encode back to the same bytes where the format promises one encoding (the state
// machine's wire format, snapshot data), and decode again to the same value everywhere.
//
// That is the `decoders` target; FuzzTargets.swift holds the others (gRPC framing, etcd
// requests, peer frames, Raft messages, snapshots, stored records).
//
// Built normally, it is a replay tool: `decoder-fuzzer [--target NAME] FILE…` runs each file (a
// corpus, or a crash libFuzzer found) through the target's checks (`decoders` by default).
// Built for fuzzing (`make fuzz`, by scripts/fuzz.sh with -sanitize=fuzzer -DFUZZING),
// libFuzzer drives `LLVMFuzzerTestOneInput`, and the environment variable FUZZ_TARGET names
// the target.

import Foundation
import Primitives
import RaftCore
import ReplicatedMember
import StateMachine

/// Runs `bytes` through every decoder.
func fuzzDecoders(_ bytes: [UInt8]) {
    // Raft's encodings promise no single form (a membership's IDs may come in any order), so
    // only a decode-encode-decode round trip is checked.
    if let message = RaftMessage(decoding: bytes) { check(RaftMessage(decoding: message.encoded()) == message, "RaftMessage") }
    if let state = HardState(decoding: bytes) { check(HardState(decoding: state.encoded()) == state, "HardState") }
    if let change = ConfChange(decoding: bytes) { check(ConfChange(decoding: change.encoded()) == change, "ConfChange") }
    if let metadata = SnapshotMetadata(decoding: bytes) {
        check(SnapshotMetadata(decoding: metadata.encoded()) == metadata, "SnapshotMetadata")
    }
    var reader = ByteReader(bytes)
    _ = try? LogEntry(from: &reader)
    if let request = try? StateRequest(decoding: bytes) { check(request.encoded() == bytes, "StateRequest") }
    if let response = try? StateResponse(decoding: bytes) { check(response.encoded() == bytes, "StateResponse") }
    if let keyValue = try? KeyValue(decoding: bytes) { check(keyValue.encoded() == bytes, "KeyValue") }
    if let event = try? Event(decoding: bytes) { check(event.encoded() == bytes, "Event") }
    _ = try? StateError(decoding: bytes)
    if let pairs = try? SnapshotCodec.decode(bytes) {
        check(SnapshotCodec.encode(pairs) == bytes, "snapshot data")
        // A snapshot's state: restoring refuses what is inconsistent, and must never crash.
        if let store = try? StateStore(restoringFrom: pairs) {
            _ = try? store.hashKV()
            _ = store.backendPairs()
            _ = store.digest()
        }
    }
}

func check(_ condition: Bool, _ what: String) {
    if !condition { fatalError("\(what): decoding, encoding and decoding again changed the value") }
}

#if FUZZING
/// The target FUZZ_TARGET names (`decoders` when unset).
let selectedTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["FUZZ_TARGET"] ?? "decoders"
    guard let target = FuzzTarget.named(name) else { fatalError("unknown FUZZ_TARGET \(name)") }
    return target
}()

/// libFuzzer's entry point (libFuzzer supplies `main`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    selectedTarget.run(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
#else
@main
struct DecoderFuzzer {
    static func main() {
        var paths = Array(CommandLine.arguments.dropFirst())
        var target = FuzzTarget.named("decoders")
        if paths.first == "--target", paths.count >= 2 {
            target = FuzzTarget.named(paths[1])
            paths.removeFirst(2)
        }
        guard let target, !paths.isEmpty else {
            let names = FuzzTarget.all.map(\.name).joined(separator: "|")
            FileHandle.standardError.write(Data("usage: decoder-fuzzer [--target \(names)] FILE...\n".utf8))
            exit(2)
        }
        for path in paths {
            guard let data = FileManager.default.contents(atPath: path) else {
                FileHandle.standardError.write(Data("decoder-fuzzer: cannot read \(path)\n".utf8))
                exit(1)
            }
            target.run(Array(data))
        }
        print("decoder-fuzzer: \(paths.count) input(s) decoded without a crash (\(target.name))")
    }
}
#endif
