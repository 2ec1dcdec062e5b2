/// Appends fixed-width little-endian integers and length-prefixed byte strings to a buffer.
///
/// The encoding used for Raft messages, entries and hard state on disk and on the wire.
public struct ByteWriter: Sendable {
    /// The bytes written so far.
    public private(set) var bytes: [UInt8] = []

    /// Creates an empty writer.
    public init() {}

    /// Appends one byte.
    public mutating func write(_ value: UInt8) { bytes.append(value) }

    /// Appends a boolean as one byte.
    public mutating func write(_ value: Bool) { bytes.append(value ? 1 : 0) }

    /// Appends a 64-bit integer, little-endian.
    public mutating func write(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// Appends a length (32 bits) followed by the bytes.
    public mutating func write(bytes value: [UInt8]) {
        withUnsafeBytes(of: UInt32(value.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: value)
    }
}

/// Reads what ``ByteWriter`` wrote; every read returns nil instead of reading past the end.
public struct ByteReader: Sendable {
    private let bytes: [UInt8]
    private var offset = 0

    /// Creates a reader over `bytes`.
    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Whether every byte has been read.
    public var isAtEnd: Bool { offset == bytes.count }

    /// Reads one byte.
    public mutating func readUInt8() -> UInt8? {
        guard offset < bytes.count else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// Reads a boolean written as one byte (0 or 1).
    public mutating func readBool() -> Bool? {
        switch readUInt8() {
        case 0: false
        case 1: true
        default: nil
        }
    }

    /// Reads a little-endian 64-bit integer.
    public mutating func readUInt64() -> UInt64? {
        guard bytes.count - offset >= 8 else { return nil }
        var value: UInt64 = 0
        for shift in 0..<8 { value |= UInt64(bytes[offset + shift]) << (8 * UInt64(shift)) }
        offset += 8
        return value
    }

    /// Reads a 32-bit length and that many bytes.
    public mutating func readBytes() -> [UInt8]? {
        guard bytes.count - offset >= 4 else { return nil }
        var length = 0
        for shift in 0..<4 { length |= Int(bytes[offset + shift]) << (8 * shift) }
        guard bytes.count - offset - 4 >= length else { return nil }
        defer { offset += 4 + length }
        return Array(bytes[(offset + 4)..<(offset + 4 + length)])
    }
}

// MARK: - Encodings of the core's types

extension LogEntry {
    /// Appends the entry to `writer`.
    public func encode(into writer: inout ByteWriter) {
        writer.write(term)
        writer.write(index)
        writer.write(kind.rawValue)
        writer.write(bytes: data)
    }

    /// Reads an entry, or returns nil if the bytes are malformed.
    public init?(from reader: inout ByteReader) {
        guard let term = reader.readUInt64(), let index = reader.readUInt64(), let raw = reader.readUInt8(),
            let kind = Kind(rawValue: raw), let data = reader.readBytes()
        else { return nil }
        self.init(term: term, index: index, kind: kind, data: data)
    }
}

extension HardState {
    /// Returns the hard state as bytes.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter()
        writer.write(term)
        writer.write(vote)
        writer.write(commit)
        return writer.bytes
    }

    /// Decodes a hard state, or returns nil if the bytes are malformed.
    public init?(decoding bytes: [UInt8]) {
        var reader = ByteReader(bytes)
        guard let term = reader.readUInt64(), let vote = reader.readUInt64(), let commit = reader.readUInt64(),
            reader.isAtEnd
        else { return nil }
        self.init(term: term, vote: vote, commit: commit)
    }
}

extension ConfState {
    /// Appends the membership to `writer`.
    public func encode(into writer: inout ByteWriter) {
        writer.write(UInt64(voters.count))
        for id in voters { writer.write(id) }
        writer.write(UInt64(learners.count))
        for id in learners { writer.write(id) }
    }

    /// Reads a membership, or returns nil if the bytes are malformed.
    public init?(from reader: inout ByteReader) {
        func readIDs(_ reader: inout ByteReader) -> [NodeID]? {
            guard let count = reader.readUInt64(), count <= 1 << 16 else { return nil }
            var ids: [NodeID] = []
            for _ in 0..<count {
                guard let id = reader.readUInt64() else { return nil }
                ids.append(id)
            }
            return ids
        }
        guard let voters = readIDs(&reader), let learners = readIDs(&reader) else { return nil }
        self.init(voters: voters, learners: learners)
    }
}

extension SnapshotMetadata {
    /// Appends the metadata to `writer`.
    public func encode(into writer: inout ByteWriter) {
        writer.write(index)
        writer.write(term)
        confState.encode(into: &writer)
    }

    /// Reads metadata, or returns nil if the bytes are malformed.
    public init?(from reader: inout ByteReader) {
        guard let index = reader.readUInt64(), let term = reader.readUInt64(),
            let confState = ConfState(from: &reader)
        else { return nil }
        self.init(index: index, term: term, confState: confState)
    }

    /// Returns the metadata as bytes.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter()
        encode(into: &writer)
        return writer.bytes
    }

    /// Decodes metadata, or returns nil if the bytes are malformed.
    public init?(decoding bytes: [UInt8]) {
        var reader = ByteReader(bytes)
        guard let value = SnapshotMetadata(from: &reader), reader.isAtEnd else { return nil }
        self = value
    }
}

extension RaftMessage {
    /// Returns the message as bytes, for a transport.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter()
        writer.write(kind.rawValue)
        writer.write(from)
        writer.write(to)
        writer.write(term)
        writer.write(logTerm)
        writer.write(index)
        writer.write(commit)
        writer.write(reject)
        writer.write(rejectHint)
        writer.write(context)
        writer.write(UInt64(entries.count))
        for entry in entries { entry.encode(into: &writer) }
        if let chunk = snapshot {
            writer.write(true)
            chunk.metadata.encode(into: &writer)
            writer.write(chunk.offset)
            writer.write(bytes: chunk.data)
            writer.write(chunk.isLast)
        } else {
            writer.write(false)
        }
        return writer.bytes
    }

    /// Decodes a message, or returns nil if the bytes are malformed.
    public init?(decoding bytes: [UInt8]) {
        var reader = ByteReader(bytes)
        guard let raw = reader.readUInt8(), let kind = Kind(rawValue: raw), let from = reader.readUInt64(),
            let to = reader.readUInt64(), let term = reader.readUInt64(), let logTerm = reader.readUInt64(),
            let index = reader.readUInt64(), let commit = reader.readUInt64(), let reject = reader.readBool(),
            let rejectHint = reader.readUInt64(), let context = reader.readUInt64(),
            let count = reader.readUInt64(), count <= UInt64(bytes.count)
        else { return nil }
        var entries: [LogEntry] = []
        for _ in 0..<count {
            guard let entry = LogEntry(from: &reader) else { return nil }
            entries.append(entry)
        }
        guard let hasChunk = reader.readBool() else { return nil }
        var chunk: SnapshotChunk?
        if hasChunk {
            guard let metadata = SnapshotMetadata(from: &reader), let offset = reader.readUInt64(),
                let data = reader.readBytes(), let isLast = reader.readBool()
            else { return nil }
            chunk = SnapshotChunk(metadata: metadata, offset: offset, data: data, isLast: isLast)
        }
        guard reader.isAtEnd else { return nil }
        self.init(
            kind: kind, from: from, to: to, term: term, logTerm: logTerm, index: index, entries: entries,
            commit: commit, reject: reject, rejectHint: rejectHint, context: context, snapshot: chunk)
    }
}
