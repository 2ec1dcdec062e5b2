import EtcdWire
import Foundation
import SwiftProtobuf
import Testing

@Suite("EtcdWire generated messages")
struct EtcdWireTests {
    @Test("PutRequest key=a value=b has etcd's exact wire bytes")
    func putRequestExactBytes() throws {
        var put = Etcdserverpb_PutRequest()
        put.key = Data("a".utf8)
        put.value = Data("b".utf8)
        let bytes: [UInt8] = try put.serializedBytes()
        #expect(bytes == [0x0a, 0x01, 0x61, 0x12, 0x01, 0x62])

        let decoded = try Etcdserverpb_PutRequest(serializedBytes: bytes)
        #expect(decoded == put)
    }

    @Test("PutRequest round-trips every field")
    func putRequestRoundTrip() throws {
        var put = Etcdserverpb_PutRequest()
        put.key = Data("foo".utf8)
        put.value = Data([0x00, 0xff, 0x10])
        put.lease = 0x1234_5678
        put.prevKv = true
        put.ignoreValue = true
        put.ignoreLease = true
        let bytes: [UInt8] = try put.serializedBytes()
        let decoded = try Etcdserverpb_PutRequest(serializedBytes: bytes)
        #expect(decoded == put)
        #expect(decoded.lease == 0x1234_5678)
    }

    @Test("TxnRequest with compares and nested ops round-trips")
    func txnRoundTrip() throws {
        var cmp = Etcdserverpb_Compare()
        cmp.result = .equal
        cmp.target = .create
        cmp.key = Data("lock/".utf8)
        cmp.createRevision = 0
        cmp.rangeEnd = Data("lock0".utf8)

        var put = Etcdserverpb_PutRequest()
        put.key = Data("lock/1".utf8)
        put.lease = 7

        var range = Etcdserverpb_RangeRequest()
        range.key = Data("lock/".utf8)
        range.rangeEnd = Data("lock0".utf8)
        range.sortOrder = .ascend
        range.sortTarget = .create
        range.limit = 1
        range.maxCreateRevision = 42

        var inner = Etcdserverpb_TxnRequest()
        var del = Etcdserverpb_DeleteRangeRequest()
        del.key = Data("x".utf8)
        del.prevKv = true
        inner.success = [Etcdserverpb_RequestOp.with { $0.requestDeleteRange = del }]

        var txn = Etcdserverpb_TxnRequest()
        txn.compare = [cmp]
        txn.success = [
            Etcdserverpb_RequestOp.with { $0.requestPut = put },
            Etcdserverpb_RequestOp.with { $0.requestRange = range },
        ]
        txn.failure = [Etcdserverpb_RequestOp.with { $0.requestTxn = inner }]

        let bytes: [UInt8] = try txn.serializedBytes()
        let decoded = try Etcdserverpb_TxnRequest(serializedBytes: bytes)
        #expect(decoded == txn)
        #expect(decoded.compare.first?.targetUnion == .createRevision(0))
        guard case .requestTxn(let nested)? = decoded.failure.first?.request else {
            Issue.record("expected nested txn")
            return
        }
        #expect(nested.success.first?.requestDeleteRange.prevKv == true)
    }

    @Test("Compare.range_end uses field number 64")
    func compareRangeEndFieldNumber() throws {
        var cmp = Etcdserverpb_Compare()
        cmp.rangeEnd = Data("z".utf8)
        let bytes: [UInt8] = try cmp.serializedBytes()
        // tag = (64 << 3) | 2 = 514 -> varint 0x82 0x04
        #expect(bytes == [0x82, 0x04, 0x01, 0x7a])
    }

    @Test("WatchRequest(create) round-trips")
    func watchCreateRoundTrip() throws {
        var create = Etcdserverpb_WatchCreateRequest()
        create.key = Data("k".utf8)
        create.rangeEnd = Data([0])
        create.startRevision = 5
        create.progressNotify = true
        create.filters = [.nodelete]
        create.prevKv = true
        create.watchID = 3
        create.fragment = true
        let req = Etcdserverpb_WatchRequest.with { $0.createRequest = create }

        let bytes: [UInt8] = try req.serializedBytes()
        let decoded = try Etcdserverpb_WatchRequest(serializedBytes: bytes)
        #expect(decoded == req)
        guard case .createRequest(let c)? = decoded.requestUnion else {
            Issue.record("expected create_request")
            return
        }
        #expect(c.filters == [.nodelete])
        #expect(c.watchID == 3)
    }

    @Test("WatchResponse events use field number 11")
    func watchResponseEventsField() throws {
        var resp = Etcdserverpb_WatchResponse()
        resp.events = [Mvccpb_Event()]
        let bytes: [UInt8] = try resp.serializedBytes()
        // tag = (11 << 3) | 2 = 90 = 0x5a, empty Event
        #expect(bytes == [0x5a, 0x00])
    }

    @Test("RangeResponse round-trips")
    func rangeResponseRoundTrip() throws {
        var header = Etcdserverpb_ResponseHeader()
        header.clusterID = 0xdead_beef
        header.memberID = 0x8e9e_05c5_2164_694d
        header.revision = 17
        header.raftTerm = 2

        var kv = Mvccpb_KeyValue()
        kv.key = Data("foo".utf8)
        kv.value = Data("bar".utf8)
        kv.createRevision = 3
        kv.modRevision = 17
        kv.version = 4
        kv.lease = 99

        var resp = Etcdserverpb_RangeResponse()
        resp.header = header
        resp.kvs = [kv, kv]
        resp.more = true
        resp.count = 10

        let bytes: [UInt8] = try resp.serializedBytes()
        let decoded = try Etcdserverpb_RangeResponse(serializedBytes: bytes)
        #expect(decoded == resp)
        #expect(decoded.header.memberID == 0x8e9e_05c5_2164_694d)
        #expect(decoded.kvs.count == 2)
    }
}
