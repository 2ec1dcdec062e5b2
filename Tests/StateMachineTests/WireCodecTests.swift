import Primitives
import RaftCore
import Testing

@testable import StateMachine

/// Sample values covering every case and field of the wire-encoded types.
enum WireSamples {
    static let kv = KeyValue(
        key: b("k"), createRevision: 3, modRevision: Int64.max, version: -7, value: [0, 255, 128], lease: Int64.min
    )
    static let emptyKV = KeyValue(key: [])

    static let compares: [Compare] = [
        Compare(key: b("a"), target: .version(4), result: .equal),
        Compare(key: b("b"), rangeEnd: [0], target: .createRevision(0), result: .greater),
        Compare(key: b("c"), rangeEnd: b("d"), target: .modRevision(-1), result: .less),
        Compare(key: b("e"), target: .value([0, 1, 2, 0xFF]), result: .notEqual),
        Compare(key: b("f"), target: .lease(0x7FFF_FFFF_FFFF), result: .equal),
        Compare(key: [], target: .value([]), result: .less),
    ]

    static let range = RangeRequest(
        key: b("a"), rangeEnd: b("z"), limit: 10, revision: 5, sortOrder: .descend, sortTarget: .modRevision,
        serializable: true, keysOnly: true, countOnly: false, minModRevision: 1, maxModRevision: 2,
        minCreateRevision: 3, maxCreateRevision: -4
    )
    static let put = PutRequest(
        key: b("p"), value: Array(repeating: 0xAB, count: 300), lease: 99, prevKV: true, ignoreValue: false,
        ignoreLease: true
    )
    static let delete = DeleteRangeRequest(key: b("d"), rangeEnd: [0], prevKV: true)

    /// A three-level transaction using every compare target and result and every operation.
    static let txn = TxnRequest(
        compares: compares,
        success: [
            .range(range), .put(put), .deleteRange(delete),
            .txn(
                TxnRequest(
                    compares: [compares[4]],
                    success: [.txn(TxnRequest(compares: [compares[3]], failure: [.put(PutRequest(key: b("x")))]))],
                    failure: [.range(RangeRequest(key: b("y"), sortOrder: .ascend, sortTarget: .value))]
                )
            ),
        ],
        failure: [.deleteRange(DeleteRangeRequest(key: b("q"))), .txn(TxnRequest())]
    )

    static let requests: [StateRequest] = [
        .range(range),
        .range(RangeRequest(key: [])),
        .range(RangeRequest(key: b("k"), sortTarget: .version, countOnly: true)),
        .range(RangeRequest(key: b("k"), sortTarget: .createRevision)),
        .range(RangeRequest(key: b("k"), sortTarget: .key)),
        .put(put),
        .put(PutRequest(key: b("p"), ignoreValue: true)),
        .deleteRange(delete),
        .txn(txn),
        .txn(TxnRequest()),
        .compaction(CompactionRequest(revision: 42, physical: true)),
        .compaction(CompactionRequest(revision: -1)),
        .leaseGrant(LeaseGrantRequest(ttl: 60, id: 0x1234_5678_9ABC)),
        .leaseRevoke(LeaseRevokeRequest(id: -5)),
        .leaseCheckpoint(
            LeaseCheckpointRequest(checkpoints: [
                LeaseCheckpoint(id: 1, remainingTTL: 30), LeaseCheckpoint(id: Int64.min, remainingTTL: 0),
            ])
        ),
        .leaseCheckpoint(LeaseCheckpointRequest(checkpoints: [])),
        .alarm(AlarmRequest(action: .activate, memberID: 0xDEAD_BEEF_0000_0001, alarm: .noSpace)),
        .alarm(AlarmRequest(action: .deactivate, memberID: 0, alarm: .none)),
        .publishMember(MemberAttributesRequest(id: 7, name: "n1", clientURLs: ["http://127.0.0.1:2379", "http://h:1"])),
        .updateMemberPeerURLs(MemberPeerURLsRequest(id: 8, peerURLs: ["http://127.0.0.1:2380"])),
    ]

    static let rangeResponse = RangeResponse(revision: 9, kvs: [kv, emptyKV], more: true, count: 1_000_000)
    static let putResponse = PutResponse(revision: 10, prevKV: kv)
    static let deleteResponse = DeleteRangeResponse(revision: 11, deleted: 2, prevKVs: [kv, kv])

    /// A three-level transaction answer using every operation answer.
    static let txnResponse = TxnResponse(
        revision: 12,
        succeeded: true,
        responses: [
            .range(rangeResponse), .put(putResponse), .put(PutResponse(revision: 1)),
            .deleteRange(deleteResponse),
            .txn(
                TxnResponse(
                    revision: 12, succeeded: false,
                    responses: [.txn(TxnResponse(revision: 12, succeeded: true, responses: [.range(RangeResponse(revision: 0))]))]
                )
            ),
        ]
    )

    static let responses: [StateResponse] = [
        .range(rangeResponse),
        .range(RangeResponse(revision: 1)),
        .put(putResponse),
        .put(PutResponse(revision: 2)),
        .deleteRange(deleteResponse),
        .txn(txnResponse),
        .txn(TxnResponse(revision: 3, succeeded: false)),
        .compaction(CompactionResponse(revision: 13)),
        .leaseGrant(LeaseGrantResponse(revision: 14, id: 15, ttl: 16)),
        .leaseRevoke(LeaseRevokeResponse(revision: 17)),
        .leaseCheckpoint(LeaseCheckpointResponse(revision: 18)),
        .cluster(ClusterResponse(revision: 19, alarms: [AlarmMember(memberID: 3, alarm: .corrupt)])),
        .cluster(ClusterResponse(revision: 20)),
    ]

    static let events: [Event] = [
        Event(kind: .put, kv: kv, prevKV: emptyKV),
        Event(kind: .put, kv: kv),
        Event(kind: .delete, kv: KeyValue(key: b("k"), modRevision: 8)),
    ]

    static let errors: [StateError] = [
        .emptyKey, .keyNotFound, .valueProvided, .leaseProvided, .tooManyOperations, .duplicateKey,
        .compacted, .futureRevision, .leaseNotFound, .leaseExists, .leaseTTLTooLarge, .requestTooLarge, .noSpace,
        .sessionExpired, .sessionRequestForgotten,
        .rootUserNotExist, .rootRoleNotExist, .userAlreadyExists, .userEmpty, .userNotFound, .roleAlreadyExists,
        .roleNotFound, .roleEmpty, .authFailed, .permissionNotGiven, .permissionDenied, .roleNotGranted,
        .permissionNotGranted, .authNotEnabled, .invalidAuthToken, .invalidAuthManagement, .authOldRevision,
    ]

    /// Every sample encoding, labelled, with a check that its own type's decoder accepts given bytes.
    static var encodings: [(label: String, bytes: [UInt8], accepts: ([UInt8]) -> Bool)] {
        func entry<Value>(
            _ label: String, _ value: Value, _ encode: (Value) -> [UInt8],
            _ decode: @escaping ([UInt8]) throws(ByteDecodingError) -> Value
        ) -> (label: String, bytes: [UInt8], accepts: ([UInt8]) -> Bool) {
            (label, encode(value), { bytes in (try? decode(bytes)) != nil })
        }
        return requests.map { entry("request \($0)", $0, { $0.encoded() }, StateRequest.init(decoding:)) }
            + responses.map { entry("response \($0)", $0, { $0.encoded() }, StateResponse.init(decoding:)) }
            + events.map { entry("event \($0)", $0, { $0.encoded() }, Event.init(decoding:)) }
            + [entry("kv", kv, { $0.encoded() }, KeyValue.init(decoding:))]
            + errors.map { entry("error \($0)", $0, { $0.encoded() }, StateError.init(decoding:)) }
            + [
                entry(
                    "hash", HashKVResponse(revision: 5, hash: 0xDEAD_BEEF, compactRevision: -1), { $0.encoded() },
                    HashKVResponse.init(decoding:)
                )
            ]
    }
}

/// A transaction nested `depth` levels deep (1 is a transaction without nested ones).
func nestedTxn(depth: Int) -> TxnRequest {
    var txn = TxnRequest(success: [.put(PutRequest(key: b("leaf")))])
    for _ in 1..<depth { txn = TxnRequest(compares: [], success: [.txn(txn)]) }
    return txn
}

/// A transaction answer nested `depth` levels deep.
func nestedTxnResponse(depth: Int) -> TxnResponse {
    var txn = TxnResponse(revision: 1, succeeded: true)
    for _ in 1..<depth { txn = TxnResponse(revision: 1, succeeded: true, responses: [.txn(txn)]) }
    return txn
}

/// Tries every decoder on `bytes`; every accepted input must re-encode to the same bytes.
func decodeWithEveryType(_ bytes: [UInt8]) -> Int {
    var accepted = 0
    if let v = try? StateRequest(decoding: bytes) {
        #expect(v.encoded() == bytes)
        accepted += 1
    }
    if let v = try? StateResponse(decoding: bytes) {
        #expect(v.encoded() == bytes)
        accepted += 1
    }
    if let v = try? KeyValue(decoding: bytes) {
        #expect(v.encoded() == bytes)
        accepted += 1
    }
    if let v = try? Event(decoding: bytes) {
        #expect(v.encoded() == bytes)
        accepted += 1
    }
    if let v = try? StateError(decoding: bytes) {
        #expect(v.encoded() == bytes)
        accepted += 1
    }
    if let v = try? HashKVResponse(decoding: bytes) {
        #expect(v.encoded() == bytes)
        accepted += 1
    }
    return accepted
}

@Suite("Wire codec")
struct WireCodecTests {
    @Test("every request case round-trips", arguments: WireSamples.requests)
    func requestRoundTrip(_ request: StateRequest) throws {
        let bytes = request.encoded()
        #expect(bytes.first == 1)
        #expect(try StateRequest(decoding: bytes) == request)
        #expect(request.encoded() == bytes)
    }

    @Test("every response case round-trips", arguments: WireSamples.responses)
    func responseRoundTrip(_ response: StateResponse) throws {
        let bytes = response.encoded()
        #expect(bytes.first == 1)
        #expect(try StateResponse(decoding: bytes) == response)
    }

    @Test("key/values and events round-trip")
    func keyValueAndEventRoundTrip() throws {
        for kv in [WireSamples.kv, WireSamples.emptyKV] {
            #expect(try KeyValue(decoding: kv.encoded()) == kv)
        }
        for event in WireSamples.events {
            #expect(try Event(decoding: event.encoded()) == event)
        }
    }

    @Test("every error case round-trips with a distinct encoding")
    func errorRoundTrip() throws {
        for error in WireSamples.errors {
            let decoded = try StateError(decoding: error.encoded())
            #expect(decoded == error)
            #expect(decoded.message == error.message)
        }
        #expect(Set(WireSamples.errors.map { $0.encoded() }).count == WireSamples.errors.count)
        // Every tag is taken by a listed case, so the list covers every case.
        for tag in 0..<UInt8(WireSamples.errors.count) {
            #expect(WireSamples.errors.contains(try StateError(decoding: [1, tag])))
        }
        #expect(throws: ByteDecodingError.self) { try StateError(decoding: [1, UInt8(WireSamples.errors.count)]) }
    }

    @Test("samples are distinct and encode distinctly")
    func distinctEncodings() {
        #expect(Set(WireSamples.requests).count == WireSamples.requests.count)
        #expect(Set(WireSamples.requests.map { $0.encoded() }).count == WireSamples.requests.count)
        #expect(Set(WireSamples.responses.map { $0.encoded() }).count == WireSamples.responses.count)
    }

    @Test("the layout is pinned")
    func goldenBytes() throws {
        let put = StateRequest.put(PutRequest(key: b("a"), value: b("b"), lease: -1, prevKV: true))
        #expect(put.encoded() == [1, 1, 1, 0x61, 1, 0x62, 1, 1, 0, 0])
        let compaction = StateRequest.compaction(CompactionRequest(revision: 64))
        #expect(compaction.encoded() == [1, 4, 0x80, 0x01, 0])
        let revoke = StateResponse.leaseRevoke(LeaseRevokeResponse(revision: Int64.min))
        #expect(revoke.encoded() == [1, 6] + Array(repeating: 0xFF, count: 9) + [0x01])
        #expect(StateError.requestTooLarge.encoded() == [1, 11])
        #expect(try StateRequest(decoding: [1, 6, 3]) == .leaseRevoke(LeaseRevokeRequest(id: -2)))
    }

    @Test("applied responses and events round-trip")
    func appliedRoundTrip() throws {
        var store = StateStore()
        let grant = try store.apply(.leaseGrant(LeaseGrantRequest(ttl: 100, id: 7)))
        #expect(try StateResponse(decoding: grant.response.encoded()) == grant.response)
        _ = try store.set("a", "1", lease: 7)
        _ = try store.set("c", "3")
        let request = StateRequest.txn(
            TxnRequest(
                compares: [Compare(key: b("a"), target: .lease(7), result: .equal)],
                success: [
                    .put(PutRequest(key: b("a"), value: b("2"), prevKV: true)),
                    .range(RangeRequest(key: b("a"))),
                    .txn(TxnRequest(success: [.deleteRange(DeleteRangeRequest(key: b("c"), prevKV: true))])),
                ]
            )
        )
        let proposed = try StateRequest(decoding: request.encoded())
        #expect(proposed == request)
        let applied = try store.apply(proposed)
        #expect(try StateResponse(decoding: applied.response.encoded()) == applied.response)
        #expect(applied.events.count == 2)
        for event in applied.events {
            #expect(try Event(decoding: event.encoded()) == event)
        }
        do {
            _ = try store.apply(.put(PutRequest(key: b("b"), lease: 12345)))
            Issue.record("expected leaseNotFound")
        } catch {
            #expect(try StateError(decoding: error.encoded()) == .leaseNotFound)
        }
    }

    @Test("every proper prefix is rejected")
    func prefixesFail() {
        for (label, bytes, accepts) in WireSamples.encodings {
            #expect(accepts(bytes))
            for n in 0..<bytes.count {
                let prefix = Array(bytes[..<n])
                #expect(!accepts(prefix), "prefix of \(n) byte(s) of \(label) was accepted")
            }
        }
    }

    @Test("a trailing byte is rejected")
    func trailingByte() {
        for (label, bytes, accepts) in WireSamples.encodings {
            #expect(!accepts(bytes + [0]), "\(label) with a trailing byte was accepted")
        }
        let bytes = WireSamples.requests[0].encoded() + [0]
        #expect(throws: ByteDecodingError("1 trailing byte(s)", offset: bytes.count - 1)) {
            try StateRequest(decoding: bytes)
        }
    }

    @Test("malformed inputs name what was wrong")
    func malformedInputs() {
        func error(_ bytes: [UInt8]) -> ByteDecodingError? {
            do {
                _ = try StateRequest(decoding: bytes)
                return nil
            } catch {
                return error
            }
        }
        #expect(error([]) == ByteDecodingError("truncated format version", offset: 0))
        #expect(error([2, 6, 0]) == ByteDecodingError("unsupported format version 2", offset: 0))
        #expect(error([1, 13]) == ByteDecodingError("invalid StateRequest tag 13", offset: 1))
        #expect(error([1, 12, 0, 0, 12, 0, 0]) == ByteDecodingError("nested credentials", offset: 5))
        #expect(error([1, 8, 3, 1, 1]) == ByteDecodingError("invalid AlarmRequest", offset: 5))
        #expect(error([1, 6, 0x80, 0x00]) == ByteDecodingError("non-minimal varint in LeaseRevokeRequest.id", offset: 2))
        #expect(
            error([1, 6] + Array(repeating: 0xFF, count: 9) + [0x02])
                == ByteDecodingError("varint overflow in LeaseRevokeRequest.id", offset: 2)
        )
        #expect(error([1, 4, 0, 2]) == ByteDecodingError("invalid boolean 2 for CompactionRequest.physical", offset: 3))
        // An absurd length is rejected before anything is allocated.
        #expect(
            error([1, 1] + Array(repeating: 0xFF, count: 9) + [0x01])
                == ByteDecodingError("PutRequest.key length 18446744073709551615 exceeds the 0 remaining byte(s)", offset: 2)
        )
        #expect(error([1, 0, 0, 0, 0, 0, 3, 0]) == ByteDecodingError("invalid SortOrder tag 3", offset: 6))
        #expect(error([1, 0, 0, 0, 0, 0, 0, 5]) == ByteDecodingError("invalid SortTarget tag 5", offset: 7))
        #expect(error([1, 3, 1, 4]) == ByteDecodingError("invalid Compare.Result tag 4", offset: 3))
        #expect(error([1, 3, 1, 0, 5]) == ByteDecodingError("invalid Compare.Target tag 5", offset: 4))
        #expect(error([1, 3, 0, 1, 4]) == ByteDecodingError("invalid RequestOp tag 4", offset: 4))
        #expect(throws: ByteDecodingError("invalid Event.Kind tag 2", offset: 1)) { try Event(decoding: [1, 2]) }
        #expect(throws: ByteDecodingError.self) { try StateResponse(decoding: [1, 5, 0, 0]) }
        #expect(throws: ByteDecodingError("invalid ResponseOp tag 4", offset: 5)) {
            try StateResponse(decoding: [1, 3, 0, 1, 1, 4])
        }
        #expect(throws: ByteDecodingError("HashKVResponse.hash exceeds 32 bits", offset: 2)) {
            try HashKVResponse(decoding: [1, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0])
        }
    }

    @Test("hash answers round-trip")
    func hashRoundTrip() throws {
        for hash in [
            HashKVResponse(revision: 5, hash: UInt32.max, compactRevision: -1),
            HashKVResponse(revision: 0, hash: 0, compactRevision: Int64.max),
        ] {
            let bytes = hash.encoded()
            #expect(try HashKVResponse(decoding: bytes) == hash)
            for n in 0..<bytes.count {
                #expect(throws: ByteDecodingError.self) { try HashKVResponse(decoding: Array(bytes[..<n])) }
            }
            #expect(throws: ByteDecodingError.self) { try HashKVResponse(decoding: bytes + [0]) }
        }
    }

    @Test("nesting is bounded")
    func nestingDepth() throws {
        let deepest = StateRequest.txn(nestedTxn(depth: wireMaximumNestingDepth))
        #expect(try StateRequest(decoding: deepest.encoded()) == deepest)
        #expect(throws: ByteDecodingError.self) {
            try StateRequest(decoding: StateRequest.txn(nestedTxn(depth: wireMaximumNestingDepth + 1)).encoded())
        }
        let deepestResponse = StateResponse.txn(nestedTxnResponse(depth: wireMaximumNestingDepth))
        #expect(try StateResponse(decoding: deepestResponse.encoded()) == deepestResponse)
        #expect(throws: ByteDecodingError.self) {
            try StateResponse(decoding: StateResponse.txn(nestedTxnResponse(depth: wireMaximumNestingDepth + 1)).encoded())
        }
        // A long run of nested-transaction headers fails at the depth limit, not by exhausting the stack.
        let hostile: [UInt8] = [1, 3] + Array(repeating: [0, 1, 3], count: 100_000).flatMap { $0 }
        #expect(throws: ByteDecodingError("transactions nested deeper than 256", offset: 2 + 3 * 256)) {
            try StateRequest(decoding: hostile)
        }
    }

    @Test("random bytes never crash, and accepted inputs re-encode to themselves")
    func fuzzRandomBytes() {
        var rng = SeededGenerator(seed: 0x5EED_C0DE)
        var accepted = 0
        for _ in 0..<4000 {
            let count = Int.random(in: 0...48, using: &rng)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            // Mostly a valid version byte and a small tag, so decoding gets past the header.
            if !bytes.isEmpty && Int.random(in: 0..<10, using: &rng) < 9 { bytes[0] = 1 }
            if bytes.count > 1 && Bool.random(using: &rng) { bytes[1] %= 8 }
            accepted += decodeWithEveryType(bytes)
        }
        #expect(accepted > 0)
    }

    @Test("mutated valid encodings never crash, and accepted inputs re-encode to themselves")
    func fuzzMutations() {
        var rng = SeededGenerator(seed: 42)
        let samples = WireSamples.encodings.map(\.bytes)
        var accepted = 0
        for _ in 0..<4000 {
            var bytes = samples[Int.random(in: 0..<samples.count, using: &rng)]
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                switch Int.random(in: 0..<3, using: &rng) {
                case 0 where !bytes.isEmpty:
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                case 1 where !bytes.isEmpty:
                    bytes.remove(at: Int.random(in: 0..<bytes.count, using: &rng))
                default:
                    bytes.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...bytes.count, using: &rng))
                }
            }
            accepted += decodeWithEveryType(bytes)
        }
        #expect(accepted > 0)
    }
}
