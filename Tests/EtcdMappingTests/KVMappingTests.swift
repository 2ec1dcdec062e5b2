import EtcdMapping
import EtcdWire
import Foundation
import GRPCStatus
import StateMachine
import SwiftProtobuf
import Testing

/// UTF-8 bytes of a string.
func b(_ s: String) -> [UInt8] { Array(s.utf8) }

/// UTF-8 bytes of a string, as `Data`.
func d(_ s: String) -> Data { Data(s.utf8) }

/// Encodes a message to protobuf bytes and decodes it again, as the server's gRPC layer would.
func throughBytes<M: SwiftProtobuf.Message>(_ message: M) throws -> M {
    let bytes: [UInt8] = try message.serializedBytes()
    return try M(serializedBytes: bytes)
}

@Suite("Response headers")
struct HeaderTests {
    @Test func everyFieldIsSet() {
        let h = header(clusterID: 0xABCD, memberID: 0x1234, revision: 42, raftTerm: 7)
        #expect(h.clusterID == 0xABCD)
        #expect(h.memberID == 0x1234)
        #expect(h.revision == 42)
        #expect(h.raftTerm == 7)
    }
}

@Suite("KeyValue and Event mapping")
struct KeyValueMappingTests {
    let kv = KeyValue(key: b("k"), createRevision: 3, modRevision: 9, version: 4, value: b("v"), lease: 0x7F)

    @Test func keyValueFieldByField() {
        let wire = Mvccpb_KeyValue(kv)
        #expect(wire.key == d("k"))
        #expect(wire.createRevision == 3)
        #expect(wire.modRevision == 9)
        #expect(wire.version == 4)
        #expect(wire.value == d("v"))
        #expect(wire.lease == 0x7F)
        #expect(KeyValue(wire) == kv)
    }

    @Test func keyValueSurvivesTheWire() throws {
        #expect(KeyValue(try throughBytes(Mvccpb_KeyValue(kv))) == kv)
        // Binary values, including zero bytes, are kept exactly.
        let binary = KeyValue(key: [0, 0xFF, 0], value: [0, 1, 2, 0xFF])
        #expect(KeyValue(try throughBytes(Mvccpb_KeyValue(binary))) == binary)
    }

    @Test func putEventWithAndWithoutPrevious() throws {
        let plain = Event(kind: .put, kv: kv)
        let wirePlain = Mvccpb_Event(plain)
        #expect(wirePlain.type == .put)
        #expect(wirePlain.kv == Mvccpb_KeyValue(kv))
        #expect(!wirePlain.hasPrevKv)
        #expect(Event(try throughBytes(wirePlain)) == plain)

        let prev = KeyValue(key: b("k"), createRevision: 3, modRevision: 8, version: 3, value: b("old"))
        let withPrev = Event(kind: .put, kv: kv, prevKV: prev)
        let wireWithPrev = Mvccpb_Event(withPrev)
        #expect(wireWithPrev.hasPrevKv)
        #expect(wireWithPrev.prevKv == Mvccpb_KeyValue(prev))
        #expect(Event(try throughBytes(wireWithPrev)) == withPrev)
    }

    @Test func deleteEvent() throws {
        let event = Event(kind: .delete, kv: KeyValue(key: b("k"), modRevision: 10), prevKV: kv)
        let wire = Mvccpb_Event(event)
        #expect(wire.type == .delete)
        #expect(wire.kv.key == d("k"))
        #expect(wire.kv.modRevision == 10)
        #expect(wire.kv.createRevision == 0)
        #expect(Event(try throughBytes(wire)) == event)
    }

    @Test func unknownEventTypeIsRefused() throws {
        var wire = Mvccpb_Event(Event(kind: .put, kv: kv))
        wire.type = .UNRECOGNIZED(5)
        #expect(Event(wire) == nil)
        // The same holds after a trip through the wire format.
        #expect(Event(try throughBytes(wire)) == nil)
    }
}

@Suite("Range mapping")
struct RangeMappingTests {
    @Test func everyRequestFieldFromTheWire() throws {
        var wire = Etcdserverpb_RangeRequest()
        wire.key = d("a")
        wire.rangeEnd = d("z")
        wire.limit = 5
        wire.revision = 12
        wire.sortOrder = .descend
        wire.sortTarget = .mod
        wire.serializable = true
        wire.keysOnly = true
        wire.countOnly = true
        wire.minModRevision = 2
        wire.maxModRevision = 11
        wire.minCreateRevision = 3
        wire.maxCreateRevision = 10
        let request = try RangeRequest(wire)
        #expect(
            request
                == RangeRequest(
                    key: b("a"), rangeEnd: b("z"), limit: 5, revision: 12, sortOrder: .descend, sortTarget: .modRevision,
                    serializable: true, keysOnly: true, countOnly: true, minModRevision: 2, maxModRevision: 11,
                    minCreateRevision: 3, maxCreateRevision: 10))
        #expect(Etcdserverpb_RangeRequest(request) == wire)
    }

    @Test func defaultsMeanASingleKeyWithNoLimit() throws {
        var wire = Etcdserverpb_RangeRequest()
        wire.key = d("k")
        let request = try RangeRequest(wire)
        #expect(request == RangeRequest(key: b("k")))
        #expect(request.rangeEnd.isEmpty)
        #expect(request.limit == 0)
        #expect(request.sortOrder == .none && request.sortTarget == .key)
    }

    @Test(arguments: [
        (Etcdserverpb_RangeRequest.SortOrder.none, StateMachine.SortOrder.none),
        (.ascend, .ascend),
        (.descend, .descend),
    ])
    func sortOrders(wire: Etcdserverpb_RangeRequest.SortOrder, ours: StateMachine.SortOrder) throws {
        var request = Etcdserverpb_RangeRequest()
        request.key = d("k")
        request.sortOrder = wire
        #expect(try RangeRequest(request).sortOrder == ours)
        #expect(Etcdserverpb_RangeRequest(RangeRequest(key: b("k"), sortOrder: ours)).sortOrder == wire)
    }

    @Test(arguments: [
        (Etcdserverpb_RangeRequest.SortTarget.key, StateMachine.SortTarget.key),
        (.version, .version),
        (.create, .createRevision),
        (.mod, .modRevision),
        (.value, .value),
    ])
    func sortTargets(wire: Etcdserverpb_RangeRequest.SortTarget, ours: StateMachine.SortTarget) throws {
        var request = Etcdserverpb_RangeRequest()
        request.key = d("k")
        request.sortTarget = wire
        #expect(try RangeRequest(request).sortTarget == ours)
        #expect(Etcdserverpb_RangeRequest(RangeRequest(key: b("k"), sortTarget: ours)).sortTarget == wire)
    }

    @Test func undefinedSortOptionsAreRefusedAsEtcdDoes() throws {
        var order = Etcdserverpb_RangeRequest()
        order.key = d("k")
        order.sortOrder = .UNRECOGNIZED(3)
        #expect(throws: WireRequestError.invalidSortOption) { try RangeRequest(order) }
        // An undefined value read off the wire decodes as UNRECOGNIZED and is refused the same way.
        #expect(throws: WireRequestError.invalidSortOption) { try RangeRequest(try throughBytes(order)) }

        var target = Etcdserverpb_RangeRequest()
        target.key = d("k")
        target.sortTarget = .UNRECOGNIZED(-1)
        #expect(throws: WireRequestError.invalidSortOption) { try RangeRequest(try throughBytes(target)) }

        let error = WireRequestError.invalidSortOption
        #expect(error.code == .invalidArgument)
        #expect(error.message == "etcdserver: invalid sort option")
    }

    /// Builds a store holding a, b, c and d, and reads it through a wire request.
    func read(
        _ key: Data, _ rangeEnd: Data = Data(), limit: Int64 = 0,
        order: Etcdserverpb_RangeRequest.SortOrder = .none, target: Etcdserverpb_RangeRequest.SortTarget = .key
    ) throws -> [String] {
        var store = StateStore()
        for key in ["a", "b", "c", "d"] { _ = try store.put(PutRequest(key: b(key), value: b(key))) }
        var wire = Etcdserverpb_RangeRequest()
        wire.key = key
        wire.rangeEnd = rangeEnd
        wire.limit = limit
        wire.sortOrder = order
        wire.sortTarget = target
        return try store.range(try RangeRequest(wire)).kvs.map { String(decoding: $0.key, as: UTF8.self) }
    }

    @Test func rangeEndConventionsReachTheStoreUnchanged() throws {
        let zero = Data([0])
        // Empty range_end: the single key.
        #expect(try read(d("b")) == ["b"])
        // "\0": every key >= key.
        #expect(try read(d("b"), zero) == ["b", "c", "d"])
        // key "\0" with range_end "\0": every key.
        #expect(try read(zero, zero) == ["a", "b", "c", "d"])
        // [key, range_end).
        #expect(try read(d("b"), d("d")) == ["b", "c"])
        // Limit 0: no limit.
        #expect(try read(d("a"), zero, limit: 0) == ["a", "b", "c", "d"])
        #expect(try read(d("a"), zero, limit: 2) == ["a", "b"])
        // Descending by key.
        #expect(try read(d("a"), zero, order: .descend) == ["d", "c", "b", "a"])
        // Sorting by create revision with no order given sorts ascending, as etcd does.
        #expect(try read(d("a"), zero, target: .create) == ["a", "b", "c", "d"])
        #expect(try read(d("a"), zero, order: .descend, target: .create) == ["d", "c", "b", "a"])
    }

    @Test func responseFieldByField() throws {
        let kvs = [
            KeyValue(key: b("a"), createRevision: 2, modRevision: 2, version: 1, value: b("1")),
            KeyValue(key: b("b"), createRevision: 3, modRevision: 5, version: 2, value: b("2"), lease: 9),
        ]
        let response = RangeResponse(revision: 8, kvs: kvs, more: true, count: 3)
        let h = header(clusterID: 1, memberID: 2, revision: 8, raftTerm: 3)
        let wire = try throughBytes(Etcdserverpb_RangeResponse(response, header: h))
        #expect(wire.header == h)
        #expect(wire.kvs.map(KeyValue.init) == kvs)
        #expect(wire.more)
        #expect(wire.count == 3)

        let countOnly = Etcdserverpb_RangeResponse(RangeResponse(revision: 8, count: 4), header: h)
        #expect(countOnly.kvs.isEmpty && !countOnly.more && countOnly.count == 4)
    }
}

@Suite("Put, DeleteRange and Compaction mapping")
struct WriteMappingTests {
    @Test func putRequestEveryField() throws {
        var wire = Etcdserverpb_PutRequest()
        wire.key = d("k")
        wire.value = d("v")
        wire.lease = 77
        wire.prevKv = true
        wire.ignoreValue = true
        wire.ignoreLease = true
        let request = PutRequest(wire)
        #expect(request == PutRequest(key: b("k"), value: b("v"), lease: 77, prevKV: true, ignoreValue: true, ignoreLease: true))
        #expect(Etcdserverpb_PutRequest(request) == wire)
        #expect(PutRequest(try throughBytes(Etcdserverpb_PutRequest(request))) == request)
    }

    @Test func putResponseCarriesPrevKVOnlyWhenPresent() {
        let h = header(clusterID: 1, memberID: 2, revision: 5, raftTerm: 1)
        let without = Etcdserverpb_PutResponse(PutResponse(revision: 5), header: h)
        #expect(without.header == h)
        #expect(!without.hasPrevKv)

        let prev = KeyValue(key: b("k"), createRevision: 2, modRevision: 4, version: 2, value: b("old"))
        let with = Etcdserverpb_PutResponse(PutResponse(revision: 5, prevKV: prev), header: h)
        #expect(with.hasPrevKv)
        #expect(KeyValue(with.prevKv) == prev)
    }

    @Test func deleteRangeRequestAndResponse() throws {
        var wire = Etcdserverpb_DeleteRangeRequest()
        wire.key = d("a")
        wire.rangeEnd = Data([0])
        wire.prevKv = true
        let request = DeleteRangeRequest(wire)
        #expect(request == DeleteRangeRequest(key: b("a"), rangeEnd: [0], prevKV: true))
        #expect(Etcdserverpb_DeleteRangeRequest(request) == wire)

        let prev = [KeyValue(key: b("a"), createRevision: 2, modRevision: 2, version: 1)]
        let h = header(clusterID: 1, memberID: 2, revision: 6, raftTerm: 1)
        let response = try throughBytes(
            Etcdserverpb_DeleteRangeResponse(DeleteRangeResponse(revision: 6, deleted: 1, prevKVs: prev), header: h))
        #expect(response.header == h)
        #expect(response.deleted == 1)
        #expect(response.prevKvs.map(KeyValue.init) == prev)
    }

    @Test func compaction() {
        var wire = Etcdserverpb_CompactionRequest()
        wire.revision = 40
        wire.physical = true
        let request = CompactionRequest(wire)
        #expect(request == CompactionRequest(revision: 40, physical: true))
        #expect(Etcdserverpb_CompactionRequest(request) == wire)
        let h = header(clusterID: 1, memberID: 2, revision: 50, raftTerm: 1)
        #expect(Etcdserverpb_CompactionResponse(CompactionResponse(revision: 50), header: h).header == h)
    }
}
