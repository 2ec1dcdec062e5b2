import Primitives
import Testing

@Suite("Byte reader and writer")
struct ByteCodingTests {
    @Test("every append has a read that gives the value back")
    func roundTrip() throws {
        var out: [UInt8] = []
        out.append(7)
        out.appendBool(true)
        out.appendLittleEndian(0x0102_0304_0506_0708)
        out.appendBigEndian(0x0102_0304_0506_0708)
        out.appendVarint(300)
        out.appendZigZag(-3)
        out.appendLengthPrefixed([9, 9])
        out.appendUInt32LengthPrefixed([8])
        out.appendLengthPrefixed(Array("héllo".utf8))
        var reader = ByteReader(out)
        #expect(try reader.readByte() == 7)
        #expect(try reader.readBool() == true)
        #expect(try reader.readLittleEndianUInt64() == 0x0102_0304_0506_0708)
        #expect(try reader.readBigEndianUInt64() == 0x0102_0304_0506_0708)
        #expect(try reader.readVarint() == 300)
        #expect(try reader.readZigZag() == -3)
        #expect(try reader.readLengthPrefixed() == [9, 9])
        #expect(try reader.readUInt32LengthPrefixed() == [8])
        #expect(try reader.readString() == "héllo")
        #expect(reader.isAtEnd)
        try reader.finish()
    }

    @Test("the encodings are the documented bytes")
    func layout() {
        var out: [UInt8] = []
        out.appendLittleEndian(1)
        out.appendBigEndian(1)
        out.appendVarint(300)
        out.appendZigZag(-1)
        out.appendZigZag(1)
        out.appendUInt32LengthPrefixed([0xAA])
        #expect(
            out == [1, 0, 0, 0, 0, 0, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 1] + [0xAC, 0x02] + [1] + [2] + [1, 0, 0, 0, 0xAA])
    }

    @Test("malformed input is refused with the field and offset")
    func errors() {
        func error(_ bytes: [UInt8], _ read: (inout ByteReader) throws -> Void) -> ByteDecodingError? {
            var reader = ByteReader(bytes)
            do {
                try read(&reader)
                return nil
            } catch {
                return error as? ByteDecodingError
            }
        }
        #expect(error([]) { _ = try $0.readByte("kind") } == ByteDecodingError("truncated kind", offset: 0))
        #expect(error([2]) { _ = try $0.readBool("flag") } == ByteDecodingError("invalid boolean 2 for flag", offset: 0))
        #expect(error([0x80, 0x00]) { _ = try $0.readVarint("n") } == ByteDecodingError("non-minimal varint in n", offset: 0))
        #expect(
            error([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02]) { _ = try $0.readVarint("n") }
                == ByteDecodingError("varint overflow in n", offset: 0))
        #expect(
            error([5, 1]) { _ = try $0.readLengthPrefixed("key") }
                == ByteDecodingError("key length 5 exceeds the 1 remaining byte(s)", offset: 0))
        #expect(error([1, 2, 3]) { _ = try $0.readLittleEndianUInt64("term") } == ByteDecodingError("truncated term", offset: 0))
        #expect(
            error([9, 0, 0, 0, 1]) { _ = try $0.readUInt32LengthPrefixed("data") }
                == ByteDecodingError("data length 9 exceeds the 1 remaining byte(s)", offset: 0))
        #expect(error([1, 0xFF]) { _ = try $0.readString("name") } == ByteDecodingError("invalid UTF-8 in name", offset: 0))
        #expect(
            error([1, 2]) {
                _ = try $0.readByte(); try $0.finish()
            } == ByteDecodingError("1 trailing byte(s)", offset: 1))
        #expect(ByteDecodingError("bad", offset: 3).description == "malformed data at byte 3: bad")
        #expect(ByteDecodingError("bad").description == "malformed data: bad")
    }
}

@Suite("Checksums and the seeded generator")
struct ChecksumTests {
    @Test("the CRC catalogue's check values")
    func checkValues() {
        let digits = Array("123456789".utf8)
        #expect(CRC32.checksum(digits, .castagnoli) == 0xE306_9283)
        #expect(CRC32.checksum(digits, .ieee) == 0xCBF4_3926)
        #expect(CRC32.checksum([], .castagnoli) == 0)
    }

    @Test("feeding bytes in pieces gives the one-shot checksum")
    func incremental() {
        let data = Array("hello, statehouse".utf8)
        var crc = CRC32(.castagnoli)
        crc.update(Array(data.prefix(5)))
        crc.update(Array(data.dropFirst(5)))
        #expect(crc.value == CRC32.checksum(data, .castagnoli))
    }

    @Test("CRC-32C from the processor's instruction equals CRC-32C from the tables")
    func hardwareMatchesTables() {
        let digits = Array("123456789".utf8)
        #expect(CRC32.checksum(digits, .castagnoliTables) == 0xE306_9283)
        var generator = SeededGenerator(seed: 7)
        for length in [0, 1, 7, 8, 9, 15, 16, 63, 64, 1_000, 4_099] {
            let data = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            // Every start offset within a word, so unaligned reads are covered too.
            for offset in 0..<min(8, length + 1) {
                let slice = Array(data[offset...])
                #expect(CRC32.checksum(slice, .castagnoli) == CRC32.checksum(slice, .castagnoliTables), "length \(slice.count)")
            }
        }
        print("CRC-32C in hardware: \(CRC32.Polynomial.castagnoli.usesHardware)")
    }

    @Test("SplitMix64's published first outputs for seed 0")
    func generator() {
        var generator = SeededGenerator(seed: 0)
        #expect(generator.next() == 0xE220_A839_7B1D_CDAF)
        #expect(generator.next() == 0x6E78_9E6A_A1B9_65F4)
        var again = SeededGenerator(seed: 0)
        #expect(again.next() == 0xE220_A839_7B1D_CDAF)
        #expect(generator.next(below: 0) == 0)
    }
}

@Suite("Key order")
struct KeyOrderTests {
    @Test("prefix range ends, as etcd's GetPrefixRangeEnd")
    func prefixEnds() {
        #expect(prefixEnd(Array("n/".utf8)) == Array("n0".utf8))
        #expect(prefixEnd([0x61, 0xFF]) == [0x62])
        #expect(prefixEnd([0xFF, 0xFF]) == [0])
        #expect(prefixEnd([]) == [0])
    }

    @Test("bytes compare unsigned, a prefix first")
    func comparison() {
        #expect(compareBytes([1], [0xFF]) < 0)
        #expect(compareBytes([1, 2], [1]) > 0)
        #expect(compareBytes([3], [3]) == 0)
    }
}

@Suite("Network addresses")
struct NetworkAddressTests {
    @Test("URLs, host:port and bare hosts")
    func parses() throws {
        #expect(try NetworkAddress(parsing: "http://127.0.0.1:2379") == NetworkAddress(scheme: "http", host: "127.0.0.1", port: 2379))
        #expect(try NetworkAddress(parsing: "HTTP://[::1]:2380") == NetworkAddress(scheme: "http", host: "::1", port: 2380))
        #expect(try NetworkAddress(parsing: "db.internal", defaultPort: 2379) == NetworkAddress(host: "db.internal", port: 2379))
        #expect(try NetworkAddress(parsing: "[::1]", defaultPort: 2379).description == "[::1]:2379")
    }

    @Test(
        "each defect is named",
        arguments: [
            ("127.0.0.1:2379", NetworkAddress.Problem.missingScheme),
            ("http://h:1/path", .notJustHostAndPort),
            ("http://[::1:2379", .unclosedBracket),
            ("http://::1:2379", .unbracketedIPv6),
            ("http://[zz]:2379", .invalidIPv6),
            ("http://h", .missingPort),
            ("http://h:0", .invalidPort),
            ("http://h:+80", .invalidPort),
            ("http://:2379", .missingHost),
        ])
    func refuses(text: String, problem: NetworkAddress.Problem) {
        #expect(throws: problem) { try NetworkAddress(parsing: text, requiresScheme: true) }
    }

    @Test("address checks")
    func hostChecks() {
        #expect(NetworkAddress.isIPv4Address("10.0.0.1"))
        #expect(!NetworkAddress.isIPv4Address("10.0.0.01"))
        #expect(NetworkAddress.isIPv6Address("fe80::1"))
        #expect(NetworkAddress.isIPv6Address("::ffff:10.0.0.1"))
        #expect(!NetworkAddress.isIPv6Address("1::2::3"))
        #expect(NetworkAddress.isHostName("member-1.statehouse"))
        #expect(!NetworkAddress.isHostName("1.2.3"))
    }
}
