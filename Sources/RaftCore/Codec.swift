import Primitives

// The encodings of the core's types, on disk and on the wire: fixed-width little-endian integers
// and byte strings with a 32-bit little-endian length.

extension LogEntry {
    /// Appends the entry to `writer`.
    public func encode(into out: inout [UInt8]) {
        out.appendLittleEndian(term)
        out.appendLittleEndian(index)
        out.append(kind.rawValue)
        out.appendUInt32LengthPrefixed(data)
    }

    /// Reads an entry.
    public init(from reader: inout ByteReader) throws(ByteDecodingError) {
        let term = try reader.readLittleEndianUInt64("entry term")
        let index = try reader.readLittleEndianUInt64("entry index")
        let start = reader.offset
        guard let kind = Kind(rawValue: try reader.readByte("entry kind")) else {
            throw ByteDecodingError("unknown entry kind", offset: start)
        }
        let data = try reader.readUInt32LengthPrefixed("entry data")
        self.init(term: term, index: index, kind: kind, data: data)
    }
}

extension HardState {
    /// Returns the hard state as bytes.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.appendLittleEndian(term)
        out.appendLittleEndian(vote)
        out.appendLittleEndian(commit)
        return out
    }

    /// Decodes a hard state, or returns nil if the bytes are malformed.
    public init?(decoding bytes: [UInt8]) {
        var reader = ByteReader(bytes)
        guard let term = try? reader.readLittleEndianUInt64(), let vote = try? reader.readLittleEndianUInt64(),
            let commit = try? reader.readLittleEndianUInt64(), reader.isAtEnd
        else { return nil }
        self.init(term: term, vote: vote, commit: commit)
    }
}

extension ConfState {
    /// Appends the membership to `writer`.
    public func encode(into out: inout [UInt8]) {
        out.appendLittleEndian(UInt64(voters.count))
        for id in voters { out.appendLittleEndian(id) }
        out.appendLittleEndian(UInt64(learners.count))
        for id in learners { out.appendLittleEndian(id) }
    }

    /// Reads a membership.
    public init(from reader: inout ByteReader) throws(ByteDecodingError) {
        func readIDs(_ reader: inout ByteReader, _ field: String) throws(ByteDecodingError) -> [NodeID] {
            let start = reader.offset
            let count = try reader.readLittleEndianUInt64("\(field) count")
            guard count <= 1 << 16 else { throw ByteDecodingError("\(count) \(field) is too many", offset: start) }
            var ids: [NodeID] = []
            for _ in 0..<count { ids.append(try reader.readLittleEndianUInt64(field)) }
            return ids
        }
        let voters = try readIDs(&reader, "voters")
        let learners = try readIDs(&reader, "learners")
        self.init(voters: voters, learners: learners)
    }
}

extension SnapshotMetadata {
    /// Appends the metadata to `writer`.
    public func encode(into out: inout [UInt8]) {
        out.appendLittleEndian(index)
        out.appendLittleEndian(term)
        confState.encode(into: &out)
    }

    /// Reads metadata.
    public init(from reader: inout ByteReader) throws(ByteDecodingError) {
        let index = try reader.readLittleEndianUInt64("snapshot index")
        let term = try reader.readLittleEndianUInt64("snapshot term")
        self.init(index: index, term: term, confState: try ConfState(from: &reader))
    }

    /// Returns the metadata as bytes.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        encode(into: &out)
        return out
    }

    /// Decodes metadata, or returns nil if the bytes are malformed.
    public init?(decoding bytes: [UInt8]) {
        var reader = ByteReader(bytes)
        guard let value = try? SnapshotMetadata(from: &reader), reader.isAtEnd else { return nil }
        self = value
    }
}

extension RaftMessage {
    /// Returns the message as bytes, for a transport.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.append(kind.rawValue)
        out.appendLittleEndian(from)
        out.appendLittleEndian(to)
        out.appendLittleEndian(term)
        out.appendLittleEndian(logTerm)
        out.appendLittleEndian(index)
        out.appendLittleEndian(commit)
        out.appendBool(reject)
        out.appendLittleEndian(rejectHint)
        out.appendLittleEndian(context)
        out.appendLittleEndian(UInt64(entries.count))
        for entry in entries { entry.encode(into: &out) }
        if let chunk = snapshot {
            out.appendBool(true)
            chunk.metadata.encode(into: &out)
            out.appendLittleEndian(chunk.offset)
            out.appendUInt32LengthPrefixed(chunk.data)
            out.appendBool(chunk.isLast)
        } else {
            out.appendBool(false)
        }
        return out
    }

    /// Decodes a message, or returns nil if the bytes are malformed.
    public init?(decoding bytes: [UInt8]) {
        guard let message = try? RaftMessage(from: bytes) else { return nil }
        self = message
    }

    /// Decodes a message, saying what is malformed.
    public init(from bytes: [UInt8]) throws(ByteDecodingError) {
        var reader = ByteReader(bytes)
        let start = reader.offset
        guard let kind = Kind(rawValue: try reader.readByte("message kind")) else {
            throw ByteDecodingError("unknown message kind", offset: start)
        }
        let from = try reader.readLittleEndianUInt64("from")
        let to = try reader.readLittleEndianUInt64("to")
        let term = try reader.readLittleEndianUInt64("term")
        let logTerm = try reader.readLittleEndianUInt64("logTerm")
        let index = try reader.readLittleEndianUInt64("index")
        let commit = try reader.readLittleEndianUInt64("commit")
        let reject = try reader.readBool("reject")
        let rejectHint = try reader.readLittleEndianUInt64("rejectHint")
        let context = try reader.readLittleEndianUInt64("context")
        let countOffset = reader.offset
        let count = try reader.readLittleEndianUInt64("entry count")
        guard count <= UInt64(bytes.count) else {
            throw ByteDecodingError("entry count \(count) exceeds the message", offset: countOffset)
        }
        var entries: [LogEntry] = []
        for _ in 0..<count { entries.append(try LogEntry(from: &reader)) }
        var chunk: SnapshotChunk?
        if try reader.readBool("snapshot presence") {
            let metadata = try SnapshotMetadata(from: &reader)
            let offset = try reader.readLittleEndianUInt64("snapshot offset")
            let data = try reader.readUInt32LengthPrefixed("snapshot data")
            let isLast = try reader.readBool("snapshot isLast")
            chunk = SnapshotChunk(metadata: metadata, offset: offset, data: data, isLast: isLast)
        }
        try reader.finish()
        self.init(
            kind: kind, from: from, to: to, term: term, logTerm: logTerm, index: index, entries: entries,
            commit: commit, reject: reject, rejectHint: rejectHint, context: context, snapshot: chunk)
    }
}
