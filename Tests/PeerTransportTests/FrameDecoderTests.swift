import NIOCore
import NIOEmbedded
import Testing

@testable import PeerTransport

@Suite("Frame decoder")
struct FrameDecoderTests {
    private func framed(_ payloads: [[UInt8]]) -> [UInt8] {
        var buffer = ByteBuffer()
        for payload in payloads { PeerWire.writeFrame(payload, into: &buffer) }
        return Array(buffer.readableBytesView)
    }

    private func decode(_ stream: [UInt8], readSize: Int, maxFrameBytes: Int = 1 << 20) throws -> [[UInt8]] {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameBytes: maxFrameBytes)))
        var frames: [[UInt8]] = []
        for start in stride(from: 0, to: stream.count, by: readSize) {
            try channel.writeInbound(ByteBuffer(bytes: stream[start..<min(start + readSize, stream.count)]))
            while let frame = try channel.readInbound(as: ByteBuffer.self) { frames.append(Array(frame.readableBytesView)) }
        }
        _ = try channel.finish()
        return frames
    }

    @Test("Frames span reads, and reads hold many frames")
    func framesSpanReadsAndReadsHoldManyFrames() throws {
        let hello = PeerHello(clusterID: 0x0102_0304_0506_0708, senderID: 42).encoded
        let payloads: [[UInt8]] = [hello, [], [1], Array(0..<200), [UInt8](repeating: 9, count: 3_000), [2, 3]]
        let stream = framed(payloads)
        for readSize in [1, 2, 3, 4, 5, 7, 25, 1_000, stream.count] {
            #expect(try decode(stream, readSize: readSize) == payloads, "reads of \(readSize) bytes")
        }
    }

    @Test("Hello layout: version 1 without a range, later versions with one")
    func helloLayout() throws {
        let ids: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]
        let versionOne = PeerHello(clusterID: 0x0102_0304_0506_0708, senderID: 0x1112_1314_1516_1718, versions: 1...1)
        // Byte for byte the hello of builds from before version ranges.
        #expect(versionOne.encoded == Array("SHPT".utf8) + [1] + ids)
        #expect(try PeerHello(parsing: ByteBuffer(bytes: versionOne.encoded)) == versionOne)
        let ranged = PeerHello(clusterID: 0x0102_0304_0506_0708, senderID: 0x1112_1314_1516_1718, versions: 1...3)
        #expect(ranged.encoded == Array("SHPT".utf8) + [3] + ids + [1])
        #expect(try PeerHello(parsing: ByteBuffer(bytes: ranged.encoded)) == ranged)
        #expect(PeerHello(clusterID: 1, senderID: 2).versions == PeerTransport.supportedProtocolVersions)

        #expect(throws: PeerHello.ParseError.wrongLength(20)) { try PeerHello(parsing: ByteBuffer(bytes: versionOne.encoded.dropLast())) }
        #expect(throws: PeerHello.ParseError.wrongLength(23)) { try PeerHello(parsing: ByteBuffer(bytes: ranged.encoded + [0])) }
        var otherVersion = versionOne.encoded
        otherVersion[4] = 2
        #expect(throws: PeerHello.ParseError.unsupportedVersion(2)) { try PeerHello(parsing: ByteBuffer(bytes: otherVersion)) }
        // A range must start at 1 or above, end at 2 or above (1 alone has no range), and not be reversed.
        for (lowest, highest) in [(0, 2), (1, 1), (3, 2)] as [(UInt8, UInt8)] {
            var bytes = ranged.encoded
            bytes[4] = highest
            bytes[21] = lowest
            #expect(throws: PeerHello.ParseError.badRange(lowest: lowest, highest: highest)) {
                try PeerHello(parsing: ByteBuffer(bytes: bytes))
            }
        }
    }

    @Test("Reply layout")
    func replyLayout() throws {
        let accepted = PeerHelloReply(versions: 2...4, chosen: 3)
        #expect(accepted.encoded == Array("SHPR".utf8) + [2, 4, 3])
        #expect(try PeerHelloReply(parsing: ByteBuffer(bytes: accepted.encoded)) == accepted)
        let refused = PeerHelloReply(versions: 3...3, chosen: nil)
        #expect(refused.encoded == Array("SHPR".utf8) + [3, 3, 0])
        #expect(try PeerHelloReply(parsing: refused.encoded) == refused)
        let malformed: [[UInt8]] = [
            Array("SHPR".utf8) + [2, 4], Array("SHPT".utf8) + [2, 4, 3], Array("SHPR".utf8) + [0, 4, 3],
            Array("SHPR".utf8) + [4, 2, 0], Array("SHPR".utf8) + [2, 4, 5], Array("SHPR".utf8) + [2, 4, 1],
        ]
        for bytes in malformed {
            #expect(throws: PeerHello.ParseError.badReply) { try PeerHelloReply(parsing: bytes) }
        }
    }

    @Test("Negotiation picks the highest version both speak, or none")
    func negotiation() {
        #expect(PeerHello.negotiate(1...2, 1...1) == 1)
        #expect(PeerHello.negotiate(1...1, 1...2) == 1)
        #expect(PeerHello.negotiate(1...2, 2...5) == 2)
        #expect(PeerHello.negotiate(2...5, 1...3) == 3)
        #expect(PeerHello.negotiate(1...2, 3...3) == nil)
        #expect(PeerHello.negotiate(3...4, 1...2) == nil)
        #expect(PeerHello.describe(1...2) == "1...2")
        #expect(PeerHello.describe(3...3) == "3...3")
    }

    @Test("The testing variable of the protocol versions")
    func testingVariable() throws {
        let name = PeerTransport.protocolVersionsTestingVariable
        #expect(!name.hasPrefix("STATEHOUSE_"), "the server refuses unknown STATEHOUSE_ variables")
        #expect(try PeerTransport.protocolVersions(testingEnvironment: [:]) == nil)
        #expect(try PeerTransport.protocolVersions(testingEnvironment: [name: ""]) == nil)
        #expect(try PeerTransport.protocolVersions(testingEnvironment: [name: "3"]) == 3...3)
        #expect(try PeerTransport.protocolVersions(testingEnvironment: [name: "1...2"]) == 1...2)
        for text in ["0", "2...1", "1..2", "1...", "x", "1...2...3", "256"] {
            #expect(throws: PeerTransportError.invalidProtocolVersions(text)) {
                try PeerTransport.protocolVersions(testingEnvironment: [name: text])
            }
        }
    }

    @Test("Round trips fall in etcd's buckets")
    func roundTripBuckets() {
        #expect(RoundTripHistogram.upperBounds.count == 16)
        #expect(RoundTripHistogram.upperBounds.first == 0.0001)
        #expect(RoundTripHistogram.upperBounds.last == 3.2768)
        var histogram = RoundTripHistogram()
        for seconds in [0.00005, 0.0001, 0.00015, 0.003, 5.0] { histogram.record(seconds) }
        #expect(histogram.count == 5)
        #expect(abs(histogram.sum - 5.0033) < 1e-9)
        #expect(histogram.bucketCounts[0] == 2)  // at most 0.1 ms, the bound included
        #expect(histogram.bucketCounts[1] == 1)
        #expect(histogram.bucketCounts[5] == 1)  // 3 ms: above 1.6 ms, at most 3.2 ms
        #expect(histogram.bucketCounts[16] == 1)  // above every bound
        #expect(histogram.cumulativeCounts.last == 5)
        #expect(histogram.cumulativeCounts[4] == 3)
    }

    @Test("Oversized frames are refused before their payload")
    func oversizedFramesAreRefusedBeforeTheirPayload() throws {
        let hello = PeerHello(clusterID: 1, senderID: 2).encoded
        // Only the length prefix of the oversized frame arrives: it is refused at once.
        let stream = framed([hello, [UInt8](repeating: 0, count: 100)]) + [0, 0, 0, 101]
        #expect(throws: FrameTooLargeError(length: 101, limit: 100, isFirstFrame: false)) {
            try decode(stream, readSize: stream.count, maxFrameBytes: 100)
        }
        // A first frame longer than the longest hello is refused too, whatever maxFrameBytes is.
        #expect(throws: FrameTooLargeError(length: 23, limit: 22, isFirstFrame: true)) { try decode([0, 0, 0, 23], readSize: 4) }
    }
}
