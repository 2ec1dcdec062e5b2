import GRPCFraming
import GRPCStatus
import Testing

@Suite("gRPC framing")
struct GRPCFramingTests {
    @Test("messages are reassembled across DATA frames, several per frame, in order")
    func reassembly() throws {
        let first: [UInt8] = Array(0..<200)
        let second: [UInt8] = []
        let third: [UInt8] = [7, 8, 9]
        let stream = GRPCWire.frame(first) + GRPCWire.frame(second) + GRPCWire.frame(third)
        #expect(Array(GRPCWire.frame(third).prefix(5)) == [0, 0, 0, 0, 3])
        for split in [1, 3, 5, 6, 64, stream.count] {
            var decoder = GRPCMessageDecoder(maximumMessageBytes: 1_000)
            var messages: [[UInt8]] = []
            var offset = 0
            while offset < stream.count {
                let end = min(offset + split, stream.count)
                messages += try decoder.append(stream[offset..<end])
                offset = end
            }
            #expect(messages == [first, second, third], "split every \(split) bytes")
            #expect(!decoder.hasPartialMessage)
        }
    }

    @Test("an incomplete message waits for more bytes")
    func partialMessage() throws {
        var decoder = GRPCMessageDecoder(maximumMessageBytes: 100)
        #expect(try decoder.append([0, 0, 0, 0, 4, 1, 2]).isEmpty)
        #expect(decoder.hasPartialMessage)
        #expect(try decoder.append([3, 4]) == [[1, 2, 3, 4]])
    }

    @Test("compressed and oversized messages are refused with the right status")
    func refusals() {
        var compressed = GRPCMessageDecoder(maximumMessageBytes: 100)
        #expect(throws: GRPCFramingError(code: .unimplemented, message: "compressed messages are not supported (identity encoding only)")) {
            try compressed.append([1, 0, 0, 0, 1, 9])
        }
        var oversized = GRPCMessageDecoder(maximumMessageBytes: 100)
        #expect(throws: GRPCFramingError(code: .resourceExhausted, message: "grpc: received message larger than max (101 vs. 100)")) {
            try oversized.append([0, 0, 0, 0, 101])
        }
        var invalid = GRPCMessageDecoder(maximumMessageBytes: 100)
        #expect(throws: GRPCFramingError(code: .internal, message: "invalid message flag 2")) { try invalid.append([2, 0, 0, 0, 0]) }
    }

    @Test("grpc-timeout headers parse to nanoseconds; malformed ones are refused")
    func timeouts() {
        #expect(GRPCWire.timeoutNanoseconds("1S") == 1_000_000_000)
        #expect(GRPCWire.timeoutNanoseconds("250m") == 250_000_000)
        #expect(GRPCWire.timeoutNanoseconds("10u") == 10_000)
        #expect(GRPCWire.timeoutNanoseconds("7n") == 7)
        #expect(GRPCWire.timeoutNanoseconds("2M") == 120_000_000_000)
        #expect(GRPCWire.timeoutNanoseconds("3H") == 10_800_000_000_000)
        #expect(GRPCWire.timeoutNanoseconds("99999999H") == Int64.max, "overflow saturates")
        for bad in ["", "S", "1", "1s", "-1S", "123456789S", "1.5S", " 1S"] {
            #expect(GRPCWire.timeoutNanoseconds(bad) == nil, "'\(bad)' must be refused")
        }
    }

    @Test("grpc-message is percent-encoded outside printable ASCII and decodes back")
    func statusMessages() {
        #expect(GRPCWire.encodeMessage("etcdserver: key not found") == "etcdserver: key not found")
        #expect(GRPCWire.encodeMessage("100% done\n") == "100%25 done%0A")
        #expect(GRPCWire.encodeMessage("é") == "%C3%A9")
        for message in ["etcdserver: mvcc: required revision has been compacted", "100% done\n", "naïve ☃", "%", "%zz"] {
            #expect(GRPCWire.decodeMessage(GRPCWire.encodeMessage(message)) == message)
        }
        #expect(GRPCWire.decodeMessage("%zz%4") == "%zz%4", "malformed escapes are kept")
    }

    @Test("method paths split into service and method")
    func paths() {
        #expect(GRPCWire.method(fromPath: "/etcdserverpb.KV/Range")! == ("etcdserverpb.KV", "Range"))
        for bad in ["", "/", "etcdserverpb.KV/Range", "/etcdserverpb.KV/", "//Range", "/a/b/c"] {
            #expect(GRPCWire.method(fromPath: bad) == nil, "'\(bad)' must be refused")
        }
    }
}
