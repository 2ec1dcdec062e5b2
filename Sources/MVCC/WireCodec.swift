// A compact, deterministic binary encoding of requests, responses, key/values, events and errors,
// for Raft log entry payloads and messages between members. Standard library only.
//
// Layout (format version 1):
// - Every top-level encoding (`encoded()`) is one version byte (1) followed by the value's body;
//   nested values are bodies without a version byte.
// - Int64: zig-zag LEB128 varint. UInt32: LEB128 varint. Lengths and counts: LEB128 varint.
// - Bool: one byte, 0 or 1. Optional: one byte 0 (absent) or 1 followed by the value.
// - Byte strings: length, then the bytes. Arrays: count, then the elements.
// - Enums: one tag byte (the raw value for `Int`-backed enums, else the case index in declaration
//   order), then the payload. Structs: their fields in declaration order.
//
// Every value has exactly one encoding: decoding rejects non-minimal varints, booleans and presence
// bytes other than 0 and 1, unknown tags, lengths past the end, trailing bytes and transactions
// nested deeper than `wireMaximumNestingDepth`. Decoding then re-encoding an accepted input yields
// the same bytes.

/// The current wire format version, the first byte of every top-level encoding.
let wireFormatVersion: UInt8 = 1

/// The deepest transaction nesting decoding accepts (a top-level transaction has depth 1).
///
/// Deeper nesting is rejected so that decoding untrusted bytes cannot exhaust the stack. etcd's
/// operation budget (``MVCCStore/Configuration/maxTxnOperations``, 128 by default) already caps the
/// nesting depth of valid requests below this.
let wireMaximumNestingDepth = 256

/// An error thrown when bytes are not a valid wire encoding.
public struct WireFormatError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was malformed, naming the field or type being decoded.
    public var reason: String
    /// The byte offset in the input where the malformed item starts.
    public var offset: Int

    /// Creates a wire format error.
    ///
    /// - Parameters:
    ///   - reason: What was malformed.
    ///   - offset: The byte offset in the input where the malformed item starts.
    public init(_ reason: String, offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    /// A textual description, including the offset.
    public var description: String { "wire format error at byte \(offset): \(reason)" }
}

// MARK: - Reader

/// A bounds-checked cursor over a wire encoding.
struct WireReader {
    private let bytes: [UInt8]
    private(set) var offset: Int = 0

    /// Starts reading `bytes`, checking the version byte.
    init(versioned bytes: [UInt8]) throws(WireFormatError) {
        self.bytes = bytes
        let version = try byte("format version")
        guard version == wireFormatVersion else {
            throw WireFormatError("unsupported format version \(version)", offset: 0)
        }
    }

    /// The number of unread bytes.
    var remaining: Int { bytes.count - offset }

    /// Fails unless every byte was read.
    func finish() throws(WireFormatError) {
        guard remaining == 0 else { throw WireFormatError("\(remaining) trailing byte(s)", offset: offset) }
    }

    mutating func byte(_ field: String) throws(WireFormatError) -> UInt8 {
        guard offset < bytes.count else { throw WireFormatError("truncated \(field)", offset: offset) }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// Reads a minimal LEB128 varint of at most 64 bits.
    mutating func varint(_ field: String) throws(WireFormatError) -> UInt64 {
        let start = offset
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < bytes.count else { throw WireFormatError("truncated \(field)", offset: start) }
            let b = bytes[offset]
            offset += 1
            if shift == 63 && b > 1 { throw WireFormatError("varint overflow in \(field)", offset: start) }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 {
                if b == 0 && shift > 0 { throw WireFormatError("non-minimal varint in \(field)", offset: start) }
                return result
            }
            shift += 7
        }
    }

    mutating func int64(_ field: String) throws(WireFormatError) -> Int64 {
        let u = try varint(field)
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    mutating func uint32(_ field: String) throws(WireFormatError) -> UInt32 {
        let start = offset
        let u = try varint(field)
        guard let v = UInt32(exactly: u) else { throw WireFormatError("\(field) exceeds 32 bits", offset: start) }
        return v
    }

    mutating func bool(_ field: String) throws(WireFormatError) -> Bool {
        let start = offset
        switch try byte(field) {
        case 0: return false
        case 1: return true
        case let b: throw WireFormatError("invalid boolean \(b) for \(field)", offset: start)
        }
    }

    /// Reads a length or count that cannot exceed the unread bytes (every element takes at least one).
    mutating func count(_ field: String) throws(WireFormatError) -> Int {
        let start = offset
        let n = try varint(field)
        guard n <= UInt64(remaining) else {
            throw WireFormatError("\(field) length \(n) exceeds the \(remaining) remaining byte(s)", offset: start)
        }
        return Int(n)
    }

    mutating func bytes(_ field: String) throws(WireFormatError) -> [UInt8] {
        let n = try count(field)
        defer { offset += n }
        return Array(bytes[offset..<(offset + n)])
    }

    /// Reads a tag byte below `limit`.
    mutating func tag(_ type: String, limit: UInt8) throws(WireFormatError) -> UInt8 {
        let start = offset
        let t = try byte("\(type) tag")
        guard t < limit else { throw WireFormatError("invalid \(type) tag \(t)", offset: start) }
        return t
    }

    /// Reads a one-byte raw value of an `Int`-backed enum.
    mutating func enumeration<Value: RawRepresentable<Int>>(
        _ type: Value.Type, _ name: String
    ) throws(WireFormatError) -> Value {
        let start = offset
        let raw = try byte("\(name) tag")
        guard let value = Value(rawValue: Int(raw)) else {
            throw WireFormatError("invalid \(name) tag \(raw)", offset: start)
        }
        return value
    }

    /// Reads a UTF-8 string (invalid UTF-8 is rejected, so that every string has one encoding).
    mutating func string(_ field: String) throws(WireFormatError) -> String {
        let start = offset
        guard let string = String(validating: try bytes(field), as: UTF8.self) else {
            throw WireFormatError("invalid UTF-8 in \(field)", offset: start)
        }
        return string
    }

    mutating func strings(_ field: String) throws(WireFormatError) -> [String] {
        try array(field) { (r: inout WireReader) throws(WireFormatError) in try r.string(field) }
    }

    mutating func array<Element>(
        _ field: String, _ element: (inout WireReader) throws(WireFormatError) -> Element
    ) throws(WireFormatError) -> [Element] {
        let n = try count(field)
        var result: [Element] = []
        for _ in 0..<n { result.append(try element(&self)) }
        return result
    }

    mutating func optional<Wrapped>(
        _ field: String, _ wrapped: (inout WireReader) throws(WireFormatError) -> Wrapped
    ) throws(WireFormatError) -> Wrapped? {
        try bool("\(field) presence") ? try wrapped(&self) : nil
    }

    /// Fails if `depth` exceeds ``wireMaximumNestingDepth``.
    func checkDepth(_ depth: Int) throws(WireFormatError) {
        guard depth <= wireMaximumNestingDepth else {
            throw WireFormatError("transactions nested deeper than \(wireMaximumNestingDepth)", offset: offset)
        }
    }
}

// MARK: - Writer helpers

extension Array where Element == UInt8 {
    fileprivate mutating func appendWire(_ value: Bool) { append(value ? 1 : 0) }

    fileprivate mutating func appendWire(_ value: [UInt8]) {
        appendVarint(UInt64(value.count))
        append(contentsOf: value)
    }

    fileprivate mutating func appendWireCount(_ count: Int) { appendVarint(UInt64(count)) }

    fileprivate mutating func appendWireStrings(_ strings: [String]) {
        appendWireCount(strings.count)
        for string in strings { appendWire(Array(string.utf8)) }
    }

    fileprivate mutating func appendWire(_ value: KeyValue?) {
        if let value {
            append(1)
            value.write(to: &self)
        } else {
            append(0)
        }
    }
}

/// Encodes a value with the version byte.
private func versioned(_ write: (inout [UInt8]) -> Void) -> [UInt8] {
    var out: [UInt8] = [wireFormatVersion]
    write(&out)
    return out
}

/// Decodes a value from a versioned encoding, rejecting trailing bytes.
private func decodeVersioned<Value>(
    _ bytes: [UInt8], _ read: (inout WireReader) throws(WireFormatError) -> Value
) throws(WireFormatError) -> Value {
    var reader = try WireReader(versioned: bytes)
    let value = try read(&reader)
    try reader.finish()
    return value
}

// MARK: - Public API

extension MVCCRequest {
    /// Returns the wire encoding of the request, for example as a Raft log entry payload.
    ///
    /// The encoding is deterministic: equal requests encode to equal bytes.
    public func encoded() -> [UInt8] { versioned { write(to: &$0) } }

    /// Decodes a request from its wire encoding.
    ///
    /// - Parameter bytes: The output of ``encoded()``.
    /// - Throws: ``WireFormatError`` if `bytes` are truncated, malformed, of another format version,
    ///   nest transactions too deeply, or are followed by trailing bytes.
    public init(decoding bytes: [UInt8]) throws(WireFormatError) {
        self = try decodeVersioned(bytes) { (r: inout WireReader) throws(WireFormatError) in
            try MVCCRequest(wire: &r)
        }
    }
}

extension MVCCResponse {
    /// Returns the wire encoding of the response.
    ///
    /// The encoding is deterministic: equal responses encode to equal bytes.
    public func encoded() -> [UInt8] { versioned { write(to: &$0) } }

    /// Decodes a response from its wire encoding.
    ///
    /// - Parameter bytes: The output of ``encoded()``.
    /// - Throws: ``WireFormatError`` if `bytes` are truncated, malformed, of another format version,
    ///   nest transactions too deeply, or are followed by trailing bytes.
    public init(decoding bytes: [UInt8]) throws(WireFormatError) {
        self = try decodeVersioned(bytes) { (r: inout WireReader) throws(WireFormatError) in
            try MVCCResponse(wire: &r)
        }
    }
}

extension KeyValue {
    /// Returns the wire encoding of the key/value pair.
    ///
    /// The encoding is deterministic: equal pairs encode to equal bytes.
    public func encoded() -> [UInt8] { versioned { write(to: &$0) } }

    /// Decodes a key/value pair from its wire encoding.
    ///
    /// - Parameter bytes: The output of ``encoded()``.
    /// - Throws: ``WireFormatError`` if `bytes` are truncated, malformed, of another format version,
    ///   or are followed by trailing bytes.
    public init(decoding bytes: [UInt8]) throws(WireFormatError) {
        self = try decodeVersioned(bytes) { (r: inout WireReader) throws(WireFormatError) in
            try KeyValue(wire: &r)
        }
    }
}

extension Event {
    /// Returns the wire encoding of the event.
    ///
    /// The encoding is deterministic: equal events encode to equal bytes.
    public func encoded() -> [UInt8] { versioned { write(to: &$0) } }

    /// Decodes an event from its wire encoding.
    ///
    /// - Parameter bytes: The output of ``encoded()``.
    /// - Throws: ``WireFormatError`` if `bytes` are truncated, malformed, of another format version,
    ///   or are followed by trailing bytes.
    public init(decoding bytes: [UInt8]) throws(WireFormatError) {
        self = try decodeVersioned(bytes) { (r: inout WireReader) throws(WireFormatError) in
            try Event(wire: &r)
        }
    }
}

extension MVCCError {
    /// Returns the wire encoding of the error, so that an error raised while applying a request can
    /// be returned to the member that proposed it.
    public func encoded() -> [UInt8] { versioned { write(to: &$0) } }

    /// Decodes an error from its wire encoding.
    ///
    /// - Parameter bytes: The output of ``encoded()``.
    /// - Throws: ``WireFormatError`` if `bytes` are truncated, name an unknown error, are of another
    ///   format version, or are followed by trailing bytes.
    public init(decoding bytes: [UInt8]) throws(WireFormatError) {
        self = try decodeVersioned(bytes) { (r: inout WireReader) throws(WireFormatError) in
            try MVCCError(wire: &r)
        }
    }
}

extension HashKVResponse {
    /// Returns the wire encoding of the hash answer, so that members can compare their hashes.
    ///
    /// The encoding is deterministic: equal answers encode to equal bytes.
    public func encoded() -> [UInt8] {
        versioned { out in
            out.appendZigZag(revision)
            out.appendVarint(UInt64(hash))
            out.appendZigZag(compactRevision)
        }
    }

    /// Decodes a hash answer from its wire encoding.
    ///
    /// - Parameter bytes: The output of ``encoded()``.
    /// - Throws: ``WireFormatError`` if `bytes` are truncated, malformed, of another format version,
    ///   or are followed by trailing bytes.
    public init(decoding bytes: [UInt8]) throws(WireFormatError) {
        self = try decodeVersioned(bytes) { (r: inout WireReader) throws(WireFormatError) in
            HashKVResponse(
                revision: try r.int64("HashKVResponse.revision"),
                hash: try r.uint32("HashKVResponse.hash"),
                compactRevision: try r.int64("HashKVResponse.compactRevision")
            )
        }
    }
}

// MARK: - Top-level enums

extension MVCCRequest {
    func write(to out: inout [UInt8]) {
        switch self {
        case .range(let r): out.append(0); r.write(to: &out)
        case .put(let r): out.append(1); r.write(to: &out)
        case .deleteRange(let r): out.append(2); r.write(to: &out)
        case .txn(let r): out.append(3); r.write(to: &out)
        case .compaction(let r): out.append(4); out.appendZigZag(r.revision); out.appendWire(r.physical)
        case .leaseGrant(let r): out.append(5); out.appendZigZag(r.ttl); out.appendZigZag(r.id)
        case .leaseRevoke(let r): out.append(6); out.appendZigZag(r.id)
        case .leaseCheckpoint(let r):
            out.append(7)
            out.appendWireCount(r.checkpoints.count)
            for c in r.checkpoints {
                out.appendZigZag(c.id)
                out.appendZigZag(c.remainingTTL)
            }
        case .alarm(let r):
            out.append(8)
            out.appendVarint(UInt64(r.action.rawValue))
            out.appendVarint(r.memberID)
            out.appendVarint(UInt64(r.alarm.rawValue))
        case .publishMember(let r):
            out.append(9)
            out.appendVarint(r.id)
            out.appendWire(Array(r.name.utf8))
            out.appendWireStrings(r.clientURLs)
        case .updateMemberPeerURLs(let r):
            out.append(10)
            out.appendVarint(r.id)
            out.appendWireStrings(r.peerURLs)
        }
    }

    init(wire r: inout WireReader) throws(WireFormatError) {
        switch try r.tag("MVCCRequest", limit: 11) {
        case 0: self = .range(try RangeRequest(wire: &r))
        case 1: self = .put(try PutRequest(wire: &r))
        case 2: self = .deleteRange(try DeleteRangeRequest(wire: &r))
        case 3: self = .txn(try TxnRequest(wire: &r, depth: 1))
        case 4:
            self = .compaction(
                CompactionRequest(
                    revision: try r.int64("CompactionRequest.revision"),
                    physical: try r.bool("CompactionRequest.physical")
                )
            )
        case 5:
            self = .leaseGrant(
                LeaseGrantRequest(ttl: try r.int64("LeaseGrantRequest.ttl"), id: try r.int64("LeaseGrantRequest.id"))
            )
        case 6: self = .leaseRevoke(LeaseRevokeRequest(id: try r.int64("LeaseRevokeRequest.id")))
        case 8:
            let action = try r.varint("AlarmRequest.action")
            let member = try r.varint("AlarmRequest.memberID")
            let alarm = try r.varint("AlarmRequest.alarm")
            guard let action = AlarmRequest.Action(rawValue: Int(clamping: action)),
                let alarm = AlarmType(rawValue: Int(clamping: alarm))
            else { throw WireFormatError("invalid AlarmRequest", offset: r.offset) }
            self = .alarm(AlarmRequest(action: action, memberID: member, alarm: alarm))
        case 9:
            self = .publishMember(
                MemberAttributesRequest(
                    id: try r.varint("MemberAttributesRequest.id"),
                    name: try r.string("MemberAttributesRequest.name"),
                    clientURLs: try r.strings("MemberAttributesRequest.clientURLs")
                )
            )
        case 10:
            self = .updateMemberPeerURLs(
                MemberPeerURLsRequest(
                    id: try r.varint("MemberPeerURLsRequest.id"), peerURLs: try r.strings("MemberPeerURLsRequest.peerURLs"))
            )
        default:
            let checkpoints = try r.array("LeaseCheckpointRequest.checkpoints") {
                (r: inout WireReader) throws(WireFormatError) in
                LeaseCheckpoint(
                    id: try r.int64("LeaseCheckpoint.id"),
                    remainingTTL: try r.int64("LeaseCheckpoint.remainingTTL")
                )
            }
            self = .leaseCheckpoint(LeaseCheckpointRequest(checkpoints: checkpoints))
        }
    }
}

extension MVCCResponse {
    func write(to out: inout [UInt8]) {
        switch self {
        case .range(let r): out.append(0); r.write(to: &out)
        case .put(let r): out.append(1); r.write(to: &out)
        case .deleteRange(let r): out.append(2); r.write(to: &out)
        case .txn(let r): out.append(3); r.write(to: &out)
        case .compaction(let r): out.append(4); out.appendZigZag(r.revision)
        case .leaseGrant(let r):
            out.append(5)
            out.appendZigZag(r.revision)
            out.appendZigZag(r.id)
            out.appendZigZag(r.ttl)
        case .leaseRevoke(let r): out.append(6); out.appendZigZag(r.revision)
        case .leaseCheckpoint(let r): out.append(7); out.appendZigZag(r.revision)
        case .cluster(let r):
            out.append(8)
            out.appendZigZag(r.revision)
            out.appendWireCount(r.alarms.count)
            for alarm in r.alarms {
                out.appendVarint(alarm.memberID)
                out.appendVarint(UInt64(alarm.alarm.rawValue))
            }
        }
    }

    init(wire r: inout WireReader) throws(WireFormatError) {
        switch try r.tag("MVCCResponse", limit: 9) {
        case 0: self = .range(try RangeResponse(wire: &r))
        case 1: self = .put(try PutResponse(wire: &r))
        case 2: self = .deleteRange(try DeleteRangeResponse(wire: &r))
        case 3: self = .txn(try TxnResponse(wire: &r, depth: 1))
        case 4: self = .compaction(CompactionResponse(revision: try r.int64("CompactionResponse.revision")))
        case 5:
            self = .leaseGrant(
                LeaseGrantResponse(
                    revision: try r.int64("LeaseGrantResponse.revision"),
                    id: try r.int64("LeaseGrantResponse.id"),
                    ttl: try r.int64("LeaseGrantResponse.ttl")
                )
            )
        case 6: self = .leaseRevoke(LeaseRevokeResponse(revision: try r.int64("LeaseRevokeResponse.revision")))
        case 8:
            let revision = try r.int64("ClusterResponse.revision")
            let alarms = try r.array("ClusterResponse.alarms") { (r: inout WireReader) throws(WireFormatError) in
                let member = try r.varint("AlarmMember.memberID")
                guard let alarm = AlarmType(rawValue: Int(clamping: try r.varint("AlarmMember.alarm"))) else {
                    throw WireFormatError("invalid AlarmMember.alarm", offset: r.offset)
                }
                return AlarmMember(memberID: member, alarm: alarm)
            }
            self = .cluster(ClusterResponse(revision: revision, alarms: alarms))
        default:
            self = .leaseCheckpoint(
                LeaseCheckpointResponse(revision: try r.int64("LeaseCheckpointResponse.revision"))
            )
        }
    }
}

extension MVCCError {
    /// The error's tag, its position in declaration order.
    private var wireTag: UInt8 {
        switch self {
        case .emptyKey: 0
        case .keyNotFound: 1
        case .valueProvided: 2
        case .leaseProvided: 3
        case .tooManyOperations: 4
        case .duplicateKey: 5
        case .compacted: 6
        case .futureRevision: 7
        case .leaseNotFound: 8
        case .leaseExists: 9
        case .leaseTTLTooLarge: 10
        case .requestTooLarge: 11
        case .noSpace: 12
        }
    }

    func write(to out: inout [UInt8]) { out.append(wireTag) }

    init(wire r: inout WireReader) throws(WireFormatError) {
        switch try r.tag("MVCCError", limit: 13) {
        case 0: self = .emptyKey
        case 1: self = .keyNotFound
        case 2: self = .valueProvided
        case 3: self = .leaseProvided
        case 4: self = .tooManyOperations
        case 5: self = .duplicateKey
        case 6: self = .compacted
        case 7: self = .futureRevision
        case 8: self = .leaseNotFound
        case 9: self = .leaseExists
        case 10: self = .leaseTTLTooLarge
        case 11: self = .requestTooLarge
        default: self = .noSpace
        }
    }
}

// MARK: - Key/values and events

extension KeyValue {
    func write(to out: inout [UInt8]) {
        out.appendWire(key)
        out.appendZigZag(createRevision)
        out.appendZigZag(modRevision)
        out.appendZigZag(version)
        out.appendWire(value)
        out.appendZigZag(lease)
    }

    init(wire r: inout WireReader) throws(WireFormatError) {
        self.init(
            key: try r.bytes("KeyValue.key"),
            createRevision: try r.int64("KeyValue.createRevision"),
            modRevision: try r.int64("KeyValue.modRevision"),
            version: try r.int64("KeyValue.version"),
            value: try r.bytes("KeyValue.value"),
            lease: try r.int64("KeyValue.lease")
        )
    }

    static func read(_ r: inout WireReader) throws(WireFormatError) -> KeyValue { try KeyValue(wire: &r) }
}

extension Event {
    func write(to out: inout [UInt8]) {
        out.append(UInt8(kind.rawValue))
        kv.write(to: &out)
        out.appendWire(prevKV)
    }

    init(wire r: inout WireReader) throws(WireFormatError) {
        let kind = try r.enumeration(Kind.self, "Event.Kind")
        self.init(kind: kind, kv: try KeyValue(wire: &r), prevKV: try r.optional("Event.prevKV", KeyValue.read))
    }
}

// MARK: - Range, put, delete

extension RangeRequest {
    func write(to out: inout [UInt8]) {
        out.appendWire(key)
        out.appendWire(rangeEnd)
        out.appendZigZag(limit)
        out.appendZigZag(revision)
        out.append(UInt8(sortOrder.rawValue))
        out.append(UInt8(sortTarget.rawValue))
        out.appendWire(serializable)
        out.appendWire(keysOnly)
        out.appendWire(countOnly)
        out.appendZigZag(minModRevision)
        out.appendZigZag(maxModRevision)
        out.appendZigZag(minCreateRevision)
        out.appendZigZag(maxCreateRevision)
    }

    init(wire r: inout WireReader) throws(WireFormatError) {
        let key = try r.bytes("RangeRequest.key")
        let rangeEnd = try r.bytes("RangeRequest.rangeEnd")
        let limit = try r.int64("RangeRequest.limit")
        let revision = try r.int64("RangeRequest.revision")
        let sortOrder = try r.enumeration(SortOrder.self, "SortOrder")
        let sortTarget = try r.enumeration(SortTarget.self, "SortTarget")
        self.init(
            key: key,
            rangeEnd: rangeEnd,
            limit: limit,
            revision: revision,
            sortOrder: sortOrder,
            sortTarget: sortTarget,
            serializable: try r.bool("RangeRequest.serializable"),
            keysOnly: try r.bool("RangeRequest.keysOnly"),
            countOnly: try r.bool("RangeRequest.countOnly"),
            minModRevision: try r.int64("RangeRequest.minModRevision"),
            maxModRevision: try r.int64("RangeRequest.maxModRevision"),
            minCreateRevision: try r.int64("RangeRequest.minCreateRevision"),
            maxCreateRevision: try r.int64("RangeRequest.maxCreateRevision")
        )
    }
}

extension RangeResponse {
    func write(to out: inout [UInt8]) {
        out.appendZigZag(revision)
        out.appendWireCount(kvs.count)
        for kv in kvs { kv.write(to: &out) }
        out.appendWire(more)
        out.appendZigZag(count)
    }

    init(wire r: inout WireReader) throws(WireFormatError) {
        self.init(
            revision: try r.int64("RangeResponse.revision"),
            kvs: try r.array("RangeResponse.kvs", KeyValue.read),
            more: try r.bool("RangeResponse.more"),
            count: try r.int64("RangeResponse.count")
        )
    }
}

extension PutRequest {
    func write(to out: inout [UInt8]) {
        out.appendWire(key)
        out.appendWire(value)
        out.appendZigZag(lease)
        out.appendWire(prevKV)
        out.appendWire(ignoreValue)
        out.appendWire(ignoreLease)
    }

    init(wire r: inout WireReader) throws(WireFormatError) {
        self.init(
            key: try r.bytes("PutRequest.key"),
            value: try r.bytes("PutRequest.value"),
            lease: try r.int64("PutRequest.lease"),
            prevKV: try r.bool("PutRequest.prevKV"),
            ignoreValue: try r.bool("PutRequest.ignoreValue"),
            ignoreLease: try r.bool("PutRequest.ignoreLease")
        )
    }
}

extension PutResponse {
    func write(to out: inout [UInt8]) {
        out.appendZigZag(revision)
        out.appendWire(prevKV)
    }

    init(wire r: inout WireReader) throws(WireFormatError) {
        self.init(
            revision: try r.int64("PutResponse.revision"),
            prevKV: try r.optional("PutResponse.prevKV", KeyValue.read)
        )
    }
}

extension DeleteRangeRequest {
    func write(to out: inout [UInt8]) {
        out.appendWire(key)
        out.appendWire(rangeEnd)
        out.appendWire(prevKV)
    }

    init(wire r: inout WireReader) throws(WireFormatError) {
        self.init(
            key: try r.bytes("DeleteRangeRequest.key"),
            rangeEnd: try r.bytes("DeleteRangeRequest.rangeEnd"),
            prevKV: try r.bool("DeleteRangeRequest.prevKV")
        )
    }
}

extension DeleteRangeResponse {
    func write(to out: inout [UInt8]) {
        out.appendZigZag(revision)
        out.appendZigZag(deleted)
        out.appendWireCount(prevKVs.count)
        for kv in prevKVs { kv.write(to: &out) }
    }

    init(wire r: inout WireReader) throws(WireFormatError) {
        self.init(
            revision: try r.int64("DeleteRangeResponse.revision"),
            deleted: try r.int64("DeleteRangeResponse.deleted"),
            prevKVs: try r.array("DeleteRangeResponse.prevKVs", KeyValue.read)
        )
    }
}

// MARK: - Transactions

extension Compare {
    func write(to out: inout [UInt8]) {
        out.append(UInt8(result.rawValue))
        switch target {
        case .version(let v): out.append(0); out.appendZigZag(v)
        case .createRevision(let v): out.append(1); out.appendZigZag(v)
        case .modRevision(let v): out.append(2); out.appendZigZag(v)
        case .value(let v): out.append(3); out.appendWire(v)
        case .lease(let v): out.append(4); out.appendZigZag(v)
        }
        out.appendWire(key)
        out.appendWire(rangeEnd)
    }

    init(wire r: inout WireReader) throws(WireFormatError) {
        let result = try r.enumeration(Result.self, "Compare.Result")
        let target: Target
        switch try r.tag("Compare.Target", limit: 5) {
        case 0: target = .version(try r.int64("Compare.Target.version"))
        case 1: target = .createRevision(try r.int64("Compare.Target.createRevision"))
        case 2: target = .modRevision(try r.int64("Compare.Target.modRevision"))
        case 3: target = .value(try r.bytes("Compare.Target.value"))
        default: target = .lease(try r.int64("Compare.Target.lease"))
        }
        self.init(
            key: try r.bytes("Compare.key"),
            rangeEnd: try r.bytes("Compare.rangeEnd"),
            target: target,
            result: result
        )
    }

    static func read(_ r: inout WireReader) throws(WireFormatError) -> Compare { try Compare(wire: &r) }
}

extension RequestOp {
    func write(to out: inout [UInt8]) {
        switch self {
        case .range(let r): out.append(0); r.write(to: &out)
        case .put(let r): out.append(1); r.write(to: &out)
        case .deleteRange(let r): out.append(2); r.write(to: &out)
        case .txn(let r): out.append(3); r.write(to: &out)
        }
    }

    /// Reads an operation of a transaction at nesting `depth`.
    init(wire r: inout WireReader, depth: Int) throws(WireFormatError) {
        switch try r.tag("RequestOp", limit: 4) {
        case 0: self = .range(try RangeRequest(wire: &r))
        case 1: self = .put(try PutRequest(wire: &r))
        case 2: self = .deleteRange(try DeleteRangeRequest(wire: &r))
        default: self = .txn(try TxnRequest(wire: &r, depth: depth + 1))
        }
    }
}

extension TxnRequest {
    func write(to out: inout [UInt8]) {
        out.appendWireCount(compares.count)
        for c in compares { c.write(to: &out) }
        out.appendWireCount(success.count)
        for op in success { op.write(to: &out) }
        out.appendWireCount(failure.count)
        for op in failure { op.write(to: &out) }
    }

    /// Reads a transaction at nesting `depth` (1 for a top-level transaction).
    init(wire r: inout WireReader, depth: Int) throws(WireFormatError) {
        try r.checkDepth(depth)
        let op = { (r: inout WireReader) throws(WireFormatError) in try RequestOp(wire: &r, depth: depth) }
        self.init(
            compares: try r.array("TxnRequest.compares", Compare.read),
            success: try r.array("TxnRequest.success", op),
            failure: try r.array("TxnRequest.failure", op)
        )
    }
}

extension ResponseOp {
    func write(to out: inout [UInt8]) {
        switch self {
        case .range(let r): out.append(0); r.write(to: &out)
        case .put(let r): out.append(1); r.write(to: &out)
        case .deleteRange(let r): out.append(2); r.write(to: &out)
        case .txn(let r): out.append(3); r.write(to: &out)
        }
    }

    /// Reads the answer to an operation of a transaction at nesting `depth`.
    init(wire r: inout WireReader, depth: Int) throws(WireFormatError) {
        switch try r.tag("ResponseOp", limit: 4) {
        case 0: self = .range(try RangeResponse(wire: &r))
        case 1: self = .put(try PutResponse(wire: &r))
        case 2: self = .deleteRange(try DeleteRangeResponse(wire: &r))
        default: self = .txn(try TxnResponse(wire: &r, depth: depth + 1))
        }
    }
}

extension TxnResponse {
    func write(to out: inout [UInt8]) {
        out.appendZigZag(revision)
        out.appendWire(succeeded)
        out.appendWireCount(responses.count)
        for op in responses { op.write(to: &out) }
    }

    /// Reads a transaction answer at nesting `depth` (1 for a top-level transaction).
    init(wire r: inout WireReader, depth: Int) throws(WireFormatError) {
        try r.checkDepth(depth)
        self.init(
            revision: try r.int64("TxnResponse.revision"),
            succeeded: try r.bool("TxnResponse.succeeded"),
            responses: try r.array("TxnResponse.responses") { (r: inout WireReader) throws(WireFormatError) in
                try ResponseOp(wire: &r, depth: depth)
            }
        )
    }
}
