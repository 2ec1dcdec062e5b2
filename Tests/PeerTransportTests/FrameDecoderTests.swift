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

    @Test("Hello layout")
    func helloLayout() throws {
        let hello = PeerHello(clusterID: 0x0102_0304_0506_0708, senderID: 0x1112_1314_1516_1718)
        #expect(hello.encoded == Array("SHPT".utf8) + [1, 1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18])
        #expect(try PeerHello(parsing: ByteBuffer(bytes: hello.encoded)) == hello)
        #expect(throws: PeerHello.ParseError.wrongLength(20)) { try PeerHello(parsing: ByteBuffer(bytes: hello.encoded.dropLast())) }
        var otherVersion = hello.encoded
        otherVersion[4] = 2
        #expect(throws: PeerHello.ParseError.unsupportedVersion(2)) { try PeerHello(parsing: ByteBuffer(bytes: otherVersion)) }
    }

    @Test("Oversized frames are refused before their payload")
    func oversizedFramesAreRefusedBeforeTheirPayload() throws {
        let hello = PeerHello(clusterID: 1, senderID: 2).encoded
        // Only the length prefix of the oversized frame arrives: it is refused at once.
        let stream = framed([hello, [UInt8](repeating: 0, count: 100)]) + [0, 0, 0, 101]
        #expect(throws: FrameTooLargeError(length: 101, limit: 100, isFirstFrame: false)) {
            try decode(stream, readSize: stream.count, maxFrameBytes: 100)
        }
        // A first frame longer than a hello is refused too, whatever maxFrameBytes is.
        #expect(throws: FrameTooLargeError(length: 22, limit: 21, isFirstFrame: true)) { try decode([0, 0, 0, 22], readSize: 4) }
    }
}
