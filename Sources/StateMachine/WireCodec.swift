import Primitives

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
/// operation budget (``StateStore/Configuration/maxTxnOperations``, 128 by default) already caps the
/// nesting depth of valid requests below this.
let wireMaximumNestingDepth = 256

// MARK: - Reader

extension ByteReader {
    /// Starts reading a top-level encoding, checking its version byte.
    init(versioned bytes: [UInt8]) throws(ByteDecodingError) {
        self.init(bytes)
        let version = try readByte("format version")
        guard version == wireFormatVersion else {
            throw ByteDecodingError("unsupported format version \(version)", offset: 0)
        }
    }

    /// Reads a tag byte below `limit`.
    mutating func readTag(_ type: String, limit: UInt8) throws(ByteDecodingError) -> UInt8 {
        let start = offset
        let t = try readByte("\(type) tag")
        guard t < limit else { throw ByteDecodingError("invalid \(type) tag \(t)", offset: start) }
        return t
    }

    /// Reads a one-byte raw value of an `Int`-backed enum.
    mutating func readEnumeration<Value: RawRepresentable<Int>>(
        _ type: Value.Type, _ name: String
    ) throws(ByteDecodingError) -> Value {
        let start = offset
        let raw = try readByte("\(name) tag")
        guard let value = Value(rawValue: Int(raw)) else {
            throw ByteDecodingError("invalid \(name) tag \(raw)", offset: start)
        }
        return value
    }

    mutating func readStrings(_ field: String) throws(ByteDecodingError) -> [String] {
        try readArray(field) { (r: inout ByteReader) throws(ByteDecodingError) in try r.readString(field) }
    }

    mutating func readArray<Element>(
        _ field: String, _ element: (inout ByteReader) throws(ByteDecodingError) -> Element
    ) throws(ByteDecodingError) -> [Element] {
        let n = try readCount(field)
        var result: [Element] = []
        for _ in 0..<n { result.append(try element(&self)) }
        return result
    }

    mutating func readOptional<Wrapped>(
        _ field: String, _ wrapped: (inout ByteReader) throws(ByteDecodingError) -> Wrapped
    ) throws(ByteDecodingError) -> Wrapped? {
        try readBool("\(field) presence") ? try wrapped(&self) : nil
    }

    /// Fails if `depth` exceeds ``wireMaximumNestingDepth``.
    func checkDepth(_ depth: Int) throws(ByteDecodingError) {
        guard depth <= wireMaximumNestingDepth else {
            throw ByteDecodingError("transactions nested deeper than \(wireMaximumNestingDepth)", offset: offset)
        }
    }
}

// MARK: - Writer helpers

extension Array where Element == UInt8 {
    fileprivate mutating func appendWire(_ value: Bool) { appendBool(value) }

    fileprivate mutating func appendWire(_ value: [UInt8]) { appendLengthPrefixed(value) }

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
    _ bytes: [UInt8], _ read: (inout ByteReader) throws(ByteDecodingError) -> Value
) throws(ByteDecodingError) -> Value {
    var reader = try ByteReader(versioned: bytes)
    let value = try read(&reader)
    try reader.finish()
    return value
}

// MARK: - Public API

extension StateRequest {
    /// Returns the wire encoding of the request, for example as a Raft log entry payload.
    ///
    /// The encoding is deterministic: equal requests encode to equal bytes.
    public func encoded() -> [UInt8] { versioned { write(to: &$0) } }

    /// Decodes a request from its wire encoding.
    ///
    /// - Parameter bytes: The output of ``encoded()``.
    /// - Throws: ``ByteDecodingError`` if `bytes` are truncated, malformed, of another format version,
    ///   nest transactions too deeply, or are followed by trailing bytes.
    public init(decoding bytes: [UInt8]) throws(ByteDecodingError) {
        self = try decodeVersioned(bytes) { (r: inout ByteReader) throws(ByteDecodingError) in
            try StateRequest(wire: &r)
        }
    }
}

extension StateResponse {
    /// Returns the wire encoding of the response.
    ///
    /// The encoding is deterministic: equal responses encode to equal bytes.
    public func encoded() -> [UInt8] { versioned { write(to: &$0) } }

    /// Decodes a response from its wire encoding.
    ///
    /// - Parameter bytes: The output of ``encoded()``.
    /// - Throws: ``ByteDecodingError`` if `bytes` are truncated, malformed, of another format version,
    ///   nest transactions too deeply, or are followed by trailing bytes.
    public init(decoding bytes: [UInt8]) throws(ByteDecodingError) {
        self = try decodeVersioned(bytes) { (r: inout ByteReader) throws(ByteDecodingError) in
            try StateResponse(wire: &r)
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
    /// - Throws: ``ByteDecodingError`` if `bytes` are truncated, malformed, of another format version,
    ///   or are followed by trailing bytes.
    public init(decoding bytes: [UInt8]) throws(ByteDecodingError) {
        self = try decodeVersioned(bytes) { (r: inout ByteReader) throws(ByteDecodingError) in
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
    /// - Throws: ``ByteDecodingError`` if `bytes` are truncated, malformed, of another format version,
    ///   or are followed by trailing bytes.
    public init(decoding bytes: [UInt8]) throws(ByteDecodingError) {
        self = try decodeVersioned(bytes) { (r: inout ByteReader) throws(ByteDecodingError) in
            try Event(wire: &r)
        }
    }
}

extension StateError {
    /// Returns the wire encoding of the error, so that an error raised while applying a request can
    /// be returned to the member that proposed it.
    public func encoded() -> [UInt8] { versioned { write(to: &$0) } }

    /// Decodes an error from its wire encoding.
    ///
    /// - Parameter bytes: The output of ``encoded()``.
    /// - Throws: ``ByteDecodingError`` if `bytes` are truncated, name an unknown error, are of another
    ///   format version, or are followed by trailing bytes.
    public init(decoding bytes: [UInt8]) throws(ByteDecodingError) {
        self = try decodeVersioned(bytes) { (r: inout ByteReader) throws(ByteDecodingError) in
            try StateError(wire: &r)
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
    /// - Throws: ``ByteDecodingError`` if `bytes` are truncated, malformed, of another format version,
    ///   or are followed by trailing bytes.
    public init(decoding bytes: [UInt8]) throws(ByteDecodingError) {
        self = try decodeVersioned(bytes) { (r: inout ByteReader) throws(ByteDecodingError) in
            HashKVResponse(
                revision: try r.readZigZag("HashKVResponse.revision"),
                hash: try r.readUInt32Varint("HashKVResponse.hash"),
                compactRevision: try r.readZigZag("HashKVResponse.compactRevision")
            )
        }
    }
}

// MARK: - Top-level enums

extension StateRequest {
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
        case .auth(let r):
            out.append(11)
            r.write(to: &out)
        case .authorized(let info, let inner):
            out.append(12)
            out.appendWire(Array(info.user.utf8))
            out.appendVarint(info.revision)
            inner.write(to: &out)
        }
    }

    init(wire r: inout ByteReader, depth: Int = 0) throws(ByteDecodingError) {
        switch try r.readTag("StateRequest", limit: 13) {
        case 0: self = .range(try RangeRequest(wire: &r))
        case 1: self = .put(try PutRequest(wire: &r))
        case 2: self = .deleteRange(try DeleteRangeRequest(wire: &r))
        case 3: self = .txn(try TxnRequest(wire: &r, depth: 1))
        case 4:
            self = .compaction(
                CompactionRequest(
                    revision: try r.readZigZag("CompactionRequest.revision"),
                    physical: try r.readBool("CompactionRequest.physical")
                )
            )
        case 5:
            self = .leaseGrant(
                LeaseGrantRequest(ttl: try r.readZigZag("LeaseGrantRequest.ttl"), id: try r.readZigZag("LeaseGrantRequest.id"))
            )
        case 6: self = .leaseRevoke(LeaseRevokeRequest(id: try r.readZigZag("LeaseRevokeRequest.id")))
        case 8:
            let action = try r.readVarint("AlarmRequest.action")
            let member = try r.readVarint("AlarmRequest.memberID")
            let alarm = try r.readVarint("AlarmRequest.alarm")
            guard let action = AlarmRequest.Action(rawValue: Int(clamping: action)),
                let alarm = AlarmType(rawValue: Int(clamping: alarm))
            else { throw ByteDecodingError("invalid AlarmRequest", offset: r.offset) }
            self = .alarm(AlarmRequest(action: action, memberID: member, alarm: alarm))
        case 9:
            self = .publishMember(
                MemberAttributesRequest(
                    id: try r.readVarint("MemberAttributesRequest.id"),
                    name: try r.readString("MemberAttributesRequest.name"),
                    clientURLs: try r.readStrings("MemberAttributesRequest.clientURLs")
                )
            )
        case 10:
            self = .updateMemberPeerURLs(
                MemberPeerURLsRequest(
                    id: try r.readVarint("MemberPeerURLsRequest.id"), peerURLs: try r.readStrings("MemberPeerURLsRequest.peerURLs"))
            )
        case 11:
            self = .auth(try AuthRequest(wire: &r))
        case 12:
            // Credentials wrap a client's request once; a nested wrapper is malformed.
            guard depth == 0 else { throw ByteDecodingError("nested credentials", offset: r.offset) }
            let info = AuthInfo(user: try r.readString("AuthInfo.user"), revision: try r.readVarint("AuthInfo.revision"))
            self = .authorized(info, try StateRequest(wire: &r, depth: depth + 1))
        default:
            let checkpoints = try r.readArray("LeaseCheckpointRequest.checkpoints") {
                (r: inout ByteReader) throws(ByteDecodingError) in
                LeaseCheckpoint(
                    id: try r.readZigZag("LeaseCheckpoint.id"),
                    remainingTTL: try r.readZigZag("LeaseCheckpoint.remainingTTL")
                )
            }
            self = .leaseCheckpoint(LeaseCheckpointRequest(checkpoints: checkpoints))
        }
    }
}

extension StateResponse {
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
        case .auth(let r):
            out.append(9)
            r.write(to: &out)
        }
    }

    init(wire r: inout ByteReader) throws(ByteDecodingError) {
        switch try r.readTag("StateResponse", limit: 10) {
        case 0: self = .range(try RangeResponse(wire: &r))
        case 1: self = .put(try PutResponse(wire: &r))
        case 2: self = .deleteRange(try DeleteRangeResponse(wire: &r))
        case 3: self = .txn(try TxnResponse(wire: &r, depth: 1))
        case 4: self = .compaction(CompactionResponse(revision: try r.readZigZag("CompactionResponse.revision")))
        case 5:
            self = .leaseGrant(
                LeaseGrantResponse(
                    revision: try r.readZigZag("LeaseGrantResponse.revision"),
                    id: try r.readZigZag("LeaseGrantResponse.id"),
                    ttl: try r.readZigZag("LeaseGrantResponse.ttl")
                )
            )
        case 6: self = .leaseRevoke(LeaseRevokeResponse(revision: try r.readZigZag("LeaseRevokeResponse.revision")))
        case 8:
            let revision = try r.readZigZag("ClusterResponse.revision")
            let alarms = try r.readArray("ClusterResponse.alarms") { (r: inout ByteReader) throws(ByteDecodingError) in
                let member = try r.readVarint("AlarmMember.memberID")
                guard let alarm = AlarmType(rawValue: Int(clamping: try r.readVarint("AlarmMember.alarm"))) else {
                    throw ByteDecodingError("invalid AlarmMember.alarm", offset: r.offset)
                }
                return AlarmMember(memberID: member, alarm: alarm)
            }
            self = .cluster(ClusterResponse(revision: revision, alarms: alarms))
        case 9:
            self = .auth(try AuthResponse(wire: &r))
        default:
            self = .leaseCheckpoint(
                LeaseCheckpointResponse(revision: try r.readZigZag("LeaseCheckpointResponse.revision"))
            )
        }
    }
}

extension StateError {
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
        case .sessionExpired: 13
        case .sessionRequestForgotten: 14
        case .rootUserNotExist: 15
        case .rootRoleNotExist: 16
        case .userAlreadyExists: 17
        case .userEmpty: 18
        case .userNotFound: 19
        case .roleAlreadyExists: 20
        case .roleNotFound: 21
        case .roleEmpty: 22
        case .authFailed: 23
        case .permissionNotGiven: 24
        case .permissionDenied: 25
        case .roleNotGranted: 26
        case .permissionNotGranted: 27
        case .authNotEnabled: 28
        case .invalidAuthToken: 29
        case .invalidAuthManagement: 30
        case .authOldRevision: 31
        }
    }

    func write(to out: inout [UInt8]) { out.append(wireTag) }

    init(wire r: inout ByteReader) throws(ByteDecodingError) {
        switch try r.readTag("StateError", limit: 32) {
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
        case 12: self = .noSpace
        case 13: self = .sessionExpired
        case 14: self = .sessionRequestForgotten
        case 15: self = .rootUserNotExist
        case 16: self = .rootRoleNotExist
        case 17: self = .userAlreadyExists
        case 18: self = .userEmpty
        case 19: self = .userNotFound
        case 20: self = .roleAlreadyExists
        case 21: self = .roleNotFound
        case 22: self = .roleEmpty
        case 23: self = .authFailed
        case 24: self = .permissionNotGiven
        case 25: self = .permissionDenied
        case 26: self = .roleNotGranted
        case 27: self = .permissionNotGranted
        case 28: self = .authNotEnabled
        case 29: self = .invalidAuthToken
        case 30: self = .invalidAuthManagement
        default: self = .authOldRevision
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

    init(wire r: inout ByteReader) throws(ByteDecodingError) {
        self.init(
            key: try r.readLengthPrefixed("KeyValue.key"),
            createRevision: try r.readZigZag("KeyValue.createRevision"),
            modRevision: try r.readZigZag("KeyValue.modRevision"),
            version: try r.readZigZag("KeyValue.version"),
            value: try r.readLengthPrefixed("KeyValue.value"),
            lease: try r.readZigZag("KeyValue.lease")
        )
    }

    static func read(_ r: inout ByteReader) throws(ByteDecodingError) -> KeyValue { try KeyValue(wire: &r) }
}

extension Event {
    func write(to out: inout [UInt8]) {
        out.append(UInt8(kind.rawValue))
        kv.write(to: &out)
        out.appendWire(prevKV)
    }

    init(wire r: inout ByteReader) throws(ByteDecodingError) {
        let kind = try r.readEnumeration(Kind.self, "Event.Kind")
        self.init(kind: kind, kv: try KeyValue(wire: &r), prevKV: try r.readOptional("Event.prevKV", KeyValue.read))
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

    init(wire r: inout ByteReader) throws(ByteDecodingError) {
        let key = try r.readLengthPrefixed("RangeRequest.key")
        let rangeEnd = try r.readLengthPrefixed("RangeRequest.rangeEnd")
        let limit = try r.readZigZag("RangeRequest.limit")
        let revision = try r.readZigZag("RangeRequest.revision")
        let sortOrder = try r.readEnumeration(SortOrder.self, "SortOrder")
        let sortTarget = try r.readEnumeration(SortTarget.self, "SortTarget")
        self.init(
            key: key,
            rangeEnd: rangeEnd,
            limit: limit,
            revision: revision,
            sortOrder: sortOrder,
            sortTarget: sortTarget,
            serializable: try r.readBool("RangeRequest.serializable"),
            keysOnly: try r.readBool("RangeRequest.keysOnly"),
            countOnly: try r.readBool("RangeRequest.countOnly"),
            minModRevision: try r.readZigZag("RangeRequest.minModRevision"),
            maxModRevision: try r.readZigZag("RangeRequest.maxModRevision"),
            minCreateRevision: try r.readZigZag("RangeRequest.minCreateRevision"),
            maxCreateRevision: try r.readZigZag("RangeRequest.maxCreateRevision")
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

    init(wire r: inout ByteReader) throws(ByteDecodingError) {
        self.init(
            revision: try r.readZigZag("RangeResponse.revision"),
            kvs: try r.readArray("RangeResponse.kvs", KeyValue.read),
            more: try r.readBool("RangeResponse.more"),
            count: try r.readZigZag("RangeResponse.count")
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

    init(wire r: inout ByteReader) throws(ByteDecodingError) {
        self.init(
            key: try r.readLengthPrefixed("PutRequest.key"),
            value: try r.readLengthPrefixed("PutRequest.value"),
            lease: try r.readZigZag("PutRequest.lease"),
            prevKV: try r.readBool("PutRequest.prevKV"),
            ignoreValue: try r.readBool("PutRequest.ignoreValue"),
            ignoreLease: try r.readBool("PutRequest.ignoreLease")
        )
    }
}

extension PutResponse {
    func write(to out: inout [UInt8]) {
        out.appendZigZag(revision)
        out.appendWire(prevKV)
    }

    init(wire r: inout ByteReader) throws(ByteDecodingError) {
        self.init(
            revision: try r.readZigZag("PutResponse.revision"),
            prevKV: try r.readOptional("PutResponse.prevKV", KeyValue.read)
        )
    }
}

extension DeleteRangeRequest {
    func write(to out: inout [UInt8]) {
        out.appendWire(key)
        out.appendWire(rangeEnd)
        out.appendWire(prevKV)
    }

    init(wire r: inout ByteReader) throws(ByteDecodingError) {
        self.init(
            key: try r.readLengthPrefixed("DeleteRangeRequest.key"),
            rangeEnd: try r.readLengthPrefixed("DeleteRangeRequest.rangeEnd"),
            prevKV: try r.readBool("DeleteRangeRequest.prevKV")
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

    init(wire r: inout ByteReader) throws(ByteDecodingError) {
        self.init(
            revision: try r.readZigZag("DeleteRangeResponse.revision"),
            deleted: try r.readZigZag("DeleteRangeResponse.deleted"),
            prevKVs: try r.readArray("DeleteRangeResponse.prevKVs", KeyValue.read)
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

    init(wire r: inout ByteReader) throws(ByteDecodingError) {
        let result = try r.readEnumeration(Result.self, "Compare.Result")
        let target: Target
        switch try r.readTag("Compare.Target", limit: 5) {
        case 0: target = .version(try r.readZigZag("Compare.Target.version"))
        case 1: target = .createRevision(try r.readZigZag("Compare.Target.createRevision"))
        case 2: target = .modRevision(try r.readZigZag("Compare.Target.modRevision"))
        case 3: target = .value(try r.readLengthPrefixed("Compare.Target.value"))
        default: target = .lease(try r.readZigZag("Compare.Target.lease"))
        }
        self.init(
            key: try r.readLengthPrefixed("Compare.key"),
            rangeEnd: try r.readLengthPrefixed("Compare.rangeEnd"),
            target: target,
            result: result
        )
    }

    static func read(_ r: inout ByteReader) throws(ByteDecodingError) -> Compare { try Compare(wire: &r) }
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
    init(wire r: inout ByteReader, depth: Int) throws(ByteDecodingError) {
        switch try r.readTag("RequestOp", limit: 4) {
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
    init(wire r: inout ByteReader, depth: Int) throws(ByteDecodingError) {
        try r.checkDepth(depth)
        let op = { (r: inout ByteReader) throws(ByteDecodingError) in try RequestOp(wire: &r, depth: depth) }
        self.init(
            compares: try r.readArray("TxnRequest.compares", Compare.read),
            success: try r.readArray("TxnRequest.success", op),
            failure: try r.readArray("TxnRequest.failure", op)
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
    init(wire r: inout ByteReader, depth: Int) throws(ByteDecodingError) {
        switch try r.readTag("ResponseOp", limit: 4) {
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
    init(wire r: inout ByteReader, depth: Int) throws(ByteDecodingError) {
        try r.checkDepth(depth)
        self.init(
            revision: try r.readZigZag("TxnResponse.revision"),
            succeeded: try r.readBool("TxnResponse.succeeded"),
            responses: try r.readArray("TxnResponse.responses") { (r: inout ByteReader) throws(ByteDecodingError) in
                try ResponseOp(wire: &r, depth: depth)
            }
        )
    }
}

// MARK: - Auth

extension Permission {
    fileprivate func write(to out: inout [UInt8]) {
        out.append(UInt8(type.rawValue))
        out.appendWire(key)
        out.appendWire(rangeEnd)
    }

    fileprivate init(wire r: inout ByteReader) throws(ByteDecodingError) {
        self.init(
            type: try r.readEnumeration(PermissionType.self, "Permission.type"),
            key: try r.readLengthPrefixed("Permission.key"),
            rangeEnd: try r.readLengthPrefixed("Permission.rangeEnd")
        )
    }
}

extension AuthRequest {
    /// Tag, then the fields in declaration order (strings and bytes length-prefixed).
    func write(to out: inout [UInt8]) {
        func string(_ value: String) { out.appendWire(Array(value.utf8)) }
        switch self {
        case .enable: out.append(0)
        case .disable: out.append(1)
        case .authenticate(let user, let token): out.append(2); string(user); string(token)
        case .userAdd(let name, let hash, let noPassword):
            out.append(3)
            string(name)
            out.appendWire(hash)
            out.appendWire(noPassword)
        case .userGet(let name): out.append(4); string(name)
        case .userList: out.append(5)
        case .userDelete(let name): out.append(6); string(name)
        case .userChangePassword(let name, let hash): out.append(7); string(name); out.appendWire(hash)
        case .userGrantRole(let user, let role): out.append(8); string(user); string(role)
        case .userRevokeRole(let user, let role): out.append(9); string(user); string(role)
        case .roleAdd(let name): out.append(10); string(name)
        case .roleGet(let name): out.append(11); string(name)
        case .roleList: out.append(12)
        case .roleDelete(let name): out.append(13); string(name)
        case .roleGrantPermission(let role, let permission): out.append(14); string(role); permission.write(to: &out)
        case .roleRevokePermission(let role, let key, let rangeEnd):
            out.append(15)
            string(role)
            out.appendWire(key)
            out.appendWire(rangeEnd)
        }
    }

    init(wire r: inout ByteReader) throws(ByteDecodingError) {
        switch try r.readTag("AuthRequest", limit: 16) {
        case 0: self = .enable
        case 1: self = .disable
        case 2: self = .authenticate(user: try r.readString("user"), token: try r.readString("token"))
        case 3:
            self = .userAdd(
                name: try r.readString("name"), passwordHash: try r.readLengthPrefixed("passwordHash"),
                noPassword: try r.readBool("noPassword"))
        case 4: self = .userGet(name: try r.readString("name"))
        case 5: self = .userList
        case 6: self = .userDelete(name: try r.readString("name"))
        case 7: self = .userChangePassword(name: try r.readString("name"), passwordHash: try r.readLengthPrefixed("passwordHash"))
        case 8: self = .userGrantRole(user: try r.readString("user"), role: try r.readString("role"))
        case 9: self = .userRevokeRole(user: try r.readString("user"), role: try r.readString("role"))
        case 10: self = .roleAdd(name: try r.readString("name"))
        case 11: self = .roleGet(name: try r.readString("name"))
        case 12: self = .roleList
        case 13: self = .roleDelete(name: try r.readString("name"))
        case 14: self = .roleGrantPermission(role: try r.readString("role"), permission: try Permission(wire: &r))
        default:
            self = .roleRevokePermission(
                role: try r.readString("role"), key: try r.readLengthPrefixed("key"), rangeEnd: try r.readLengthPrefixed("rangeEnd"))
        }
    }
}

extension AuthResponse {
    func write(to out: inout [UInt8]) {
        out.appendZigZag(revision)
        out.appendVarint(authRevision)
        out.appendWire(Array(token.utf8))
        out.appendWireStrings(roles)
        out.appendWireStrings(users)
        out.appendWireCount(permissions.count)
        for permission in permissions { permission.write(to: &out) }
    }

    init(wire r: inout ByteReader) throws(ByteDecodingError) {
        self.init(
            revision: try r.readZigZag("AuthResponse.revision"),
            authRevision: try r.readVarint("AuthResponse.authRevision"),
            token: try r.readString("AuthResponse.token"),
            roles: try r.readStrings("AuthResponse.roles"),
            users: try r.readStrings("AuthResponse.users"),
            permissions: try r.readArray("AuthResponse.permissions") { (r: inout ByteReader) throws(ByteDecodingError) in
                try Permission(wire: &r)
            }
        )
    }
}
