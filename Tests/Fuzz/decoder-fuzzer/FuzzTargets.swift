// The fuzz targets: each takes arbitrary bytes to one decoder (or family of decoders) of bytes
// that come from a client, another member or the disk. A decoder may refuse its input; it must
// never crash; what it accepts is encoded and decoded again where the format allows.

import EtcdMapping
import EtcdWire
import GRPCFraming
import Primitives
import RaftCore
import StateMachine
import SwiftProtobuf

@testable import ReplicatedMember

#if !FUZZING
// In the fuzzing build scripts/fuzz.sh compiles PeerFrame.swift and PeerHello.swift into this
// module instead.
@testable import PeerTransport
@testable import StatehouseServer
#endif

/// A named fuzz target.
struct FuzzTarget: Sendable {
    /// The target's name: its corpus directory under `Tests/Fuzz/corpus`.
    var name: String
    /// Runs one input.
    var run: @Sendable ([UInt8]) -> Void

    /// Every target, in the order `make fuzz` runs them.
    static let all: [FuzzTarget] = [
        FuzzTarget(name: "decoders", run: fuzzDecoders),
        FuzzTarget(name: "grpc-framing", run: fuzzGRPCFraming),
        FuzzTarget(name: "etcd-requests", run: fuzzEtcdRequests),
        FuzzTarget(name: "peer-frames", run: fuzzPeerFrames),
        FuzzTarget(name: "raft-messages", run: fuzzRaftMessages),
        FuzzTarget(name: "snapshots", run: fuzzSnapshots),
        FuzzTarget(name: "stored-records", run: fuzzStoredRecords),
    ]

    /// The target named `name`, if any.
    static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }
}

/// gRPC's length-prefixed framing as the server reassembles it from DATA frames: the first
/// byte chooses how the rest is cut into frames and the message limit; `grpc-timeout`,
/// `grpc-message` and the path parsers take the bytes as text.
func fuzzGRPCFraming(_ bytes: [UInt8]) {
    guard let control = bytes.first else { return }
    let body = Array(bytes.dropFirst())
    let step = Int(control & 0x1F) + 1
    var decoder = GRPCMessageDecoder(maximumMessageBytes: control & 0x80 == 0 ? 1 << 16 : 64)
    var reassembled: [UInt8] = []
    var failed = false
    for start in stride(from: 0, to: body.count, by: step) {
        do {
            for message in try decoder.append(body[start..<min(start + step, body.count)]) {
                check(message.count <= decoder.maximumMessageBytes, "a message above the limit")
                reassembled += GRPCWire.frame(message)
            }
        } catch {
            failed = true
            break
        }
    }
    if !failed {
        // What was taken as messages, plus what waits, is exactly the input.
        check(reassembled.count + decoder.bufferedBytes == body.count, "gRPC reassembly lost or invented bytes")
        check(Array(body.prefix(reassembled.count)) == reassembled, "gRPC reassembly changed bytes")
    }
    let text = String(decoding: body, as: UTF8.self)
    _ = GRPCWire.timeoutNanoseconds(text)
    _ = GRPCWire.method(fromPath: text)
    check(GRPCWire.decodeMessage(GRPCWire.encodeMessage(text)) == text, "grpc-message percent-encoding")
}

/// etcd's request messages through the server's decode path: the protobuf message (the first
/// byte chooses which), then the mapping to the state machine's requests and their validation.
func fuzzEtcdRequests(_ bytes: [UInt8]) {
    guard let kind = bytes.first else { return }
    let body = Array(bytes.dropFirst())
    func validate(_ request: StateRequest) {
        _ = try? StateStore.validate(request)
        // What the state machine accepts is what goes into the log: it must survive its codec.
        if let decoded = try? StateRequest(decoding: request.encoded()) { check(decoded.encoded() == request.encoded(), "StateRequest") }
    }
    switch kind % 8 {
    case 0:
        guard let wire = try? Etcdserverpb_RangeRequest(serializedBytes: body), let request = try? RangeRequest(wire) else { return }
        validate(.range(request))
    case 1:
        guard let wire = try? Etcdserverpb_PutRequest(serializedBytes: body) else { return }
        validate(.put(PutRequest(wire)))
    case 2:
        guard let wire = try? Etcdserverpb_DeleteRangeRequest(serializedBytes: body) else { return }
        validate(.deleteRange(DeleteRangeRequest(wire)))
    case 3:
        guard let wire = try? Etcdserverpb_TxnRequest(serializedBytes: body), let request = try? TxnRequest(wire) else { return }
        validate(.txn(request))
        _ = Etcdserverpb_TxnRequest(request)
    case 4:
        guard let wire = try? Etcdserverpb_CompactionRequest(serializedBytes: body) else { return }
        validate(.compaction(CompactionRequest(wire)))
    case 5:
        guard let wire = try? Etcdserverpb_LeaseGrantRequest(serializedBytes: body) else { return }
        validate(.leaseGrant(LeaseGrantRequest(wire)))
    case 6:
        _ = try? Etcdserverpb_WatchRequest(serializedBytes: body)
        _ = try? Etcdserverpb_LeaseKeepAliveRequest(serializedBytes: body)
    default:
        _ = try? Etcdserverpb_MemberAddRequest(serializedBytes: body)
        _ = try? Etcdserverpb_AuthenticateRequest(serializedBytes: body)
    }
}

/// The frames members send each other: Raft messages, forwarded requests and their replies.
func fuzzPeerFrames(_ bytes: [UInt8]) {
    if let hello = try? PeerHello(parsing: bytes) { check(hello.encoded == bytes, "PeerHello") }
    if let reply = try? PeerHelloReply(parsing: bytes) { check(reply.encoded == bytes, "PeerHelloReply") }
    guard let frame = PeerFrame(decoding: bytes) else { return }
    check(PeerFrame(decoding: frame.encoded()) == frame, "PeerFrame")
}

/// Raft messages, snapshot chunks included, and the membership changes they carry.
func fuzzRaftMessages(_ bytes: [UInt8]) {
    if let message = RaftMessage(decoding: bytes) { check(RaftMessage(decoding: message.encoded()) == message, "RaftMessage") }
    if let change = ConfChange(decoding: bytes) { check(ConfChange(decoding: change.encoded()) == change, "ConfChange") }
}

/// Snapshot data (the state machine's pairs) and the state restored from it, and the snapshot
/// metadata stored beside it.
func fuzzSnapshots(_ bytes: [UInt8]) {
    if let metadata = SnapshotMetadata(decoding: bytes) {
        check(SnapshotMetadata(decoding: metadata.encoded()) == metadata, "SnapshotMetadata")
    }
    guard let pairs = try? SnapshotCodec.decode(bytes) else { return }
    check(SnapshotCodec.encode(pairs) == bytes, "snapshot data")
    if let store = try? StateStore(restoringFrom: pairs) {
        _ = try? store.hashKV()
        _ = store.backendPairs()
    }
}

/// What a member stores: the hard state, log entries and the envelopes in their data.
func fuzzStoredRecords(_ bytes: [UInt8]) {
    if let state = HardState(decoding: bytes) { check(HardState(decoding: state.encoded()) == state, "HardState") }
    var reader = ByteReader(bytes)
    if let entry = try? LogEntry(from: &reader) { _ = Envelope(decoding: entry.data) }
    if let envelope = Envelope(decoding: bytes) { check(Envelope(decoding: envelope.encoded()) == envelope, "Envelope") }
}
