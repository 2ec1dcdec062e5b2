import Primitives

// Client sessions for exactly-once writes (the Raft thesis §6.3 design).
//
// A session is a lease: the client grants one and keeps it alive, and names its ID on every
// write together with a sequence number. The session table remembers, per session, the answer
// to every sequence number not yet acknowledged, so a retried write is answered from the table
// and applied nothing. The table is replicated state: it changes only when entries are applied,
// is stored with the other state keys, travels in snapshots, and ends when its lease ends, so its
// expiry is decided through the log (by the leader's lease clock proposing the revoke) and never
// by a member's own clock.

/// Places one write in a client session, so that retrying it cannot apply it twice.
///
/// A client numbers its writes 1, 2, 3, … within a session, and sends with each the lowest
/// sequence number whose answer it has not received yet (`acknowledged`): the table may then
/// forget every answer below it.
public struct SessionStamp: Hashable, Sendable {
    /// The session: the ID of a lease the client granted and keeps alive.
    public var session: Int64
    /// The write's sequence number within the session.
    public var sequence: UInt64
    /// The lowest sequence number whose answer the client has not received; every answer below
    /// it may be forgotten.
    public var acknowledged: UInt64

    /// Creates a stamp.
    public init(session: Int64, sequence: UInt64, acknowledged: UInt64) {
        self.session = session
        self.sequence = sequence
        self.acknowledged = acknowledged
    }
}

/// The outcome of a write recorded in a session: its response or the error it failed with.
public typealias SessionResult = Result<StateResponse, StateError>

/// One session's entry in the session table.
public struct SessionRecord: Hashable, Sendable {
    /// The store revision when the session's first write was applied; the oldest sessions are
    /// evicted first when the table is full (ties by session ID).
    public var createdRevision: Int64
    /// Every answer below this sequence number was forgotten (acknowledged by the client, or
    /// dropped by the per-session bound): a write with a lower sequence number is refused.
    public var acknowledged: UInt64
    /// Whether the session was evicted to bound the table: its answers are gone and every
    /// further write in it is refused with ``StateError/sessionExpired`` until its lease ends.
    public var isEvicted: Bool
    /// The remembered answers, by sequence number.
    public var results: [UInt64: SessionResult]

    /// Creates a record.
    public init(createdRevision: Int64, acknowledged: UInt64 = 0, isEvicted: Bool = false, results: [UInt64: SessionResult] = [:]) {
        self.createdRevision = createdRevision
        self.acknowledged = acknowledged
        self.isEvicted = isEvicted
        self.results = results
    }
}

extension BackendLayout {
    /// The prefix of session records: `m/session/` (id XOR 2^63)(8) holds a session's header,
    /// and `m/session/` (id XOR 2^63)(8) sequence(8) one remembered answer.
    public static let sessionPrefix: [UInt8] = Array("m/session/".utf8)

    /// Returns the backend key of a session's header.
    public static func sessionKey(_ session: Int64) -> [UInt8] {
        var key = sessionPrefix
        key.reserveCapacity(sessionPrefix.count + 16)
        key.appendBigEndian(UInt64(bitPattern: session) ^ (1 << 63))
        return key
    }

    /// Returns the backend key of one remembered answer of a session.
    public static func sessionResultKey(_ session: Int64, sequence: UInt64) -> [UInt8] {
        var key = sessionKey(session)
        key.appendBigEndian(sequence)
        return key
    }

    /// Session header: `0x01` (format), zig-zag varint created revision, varint acknowledged,
    /// one byte evicted flag (0 or 1).
    static func encode(session record: SessionRecord) -> [UInt8] {
        var out: [UInt8] = [1]
        out.appendZigZag(record.createdRevision)
        out.appendVarint(record.acknowledged)
        out.append(record.isEvicted ? 1 : 0)
        return out
    }

    /// Remembered answer: `0x01` (format), then `0x00` and the response's wire encoding
    /// (``StateResponse/encoded()``), or `0x01` and the error's (``StateError/encoded()``).
    static func encode(sessionResult result: SessionResult) -> [UInt8] {
        switch result {
        case .success(let response): return [1, 0] + response.encoded()
        case .failure(let error): return [1, 1] + error.encoded()
        }
    }

    static func decodeSessionHeader(_ value: [UInt8]) throws(ByteDecodingError) -> SessionRecord {
        var reader = ByteReader(value)
        guard try reader.readByte() == 1 else { throw ByteDecodingError("unknown session record format") }
        let created = try reader.readZigZag()
        let acknowledged = try reader.readVarint()
        let evicted = try reader.readByte()
        guard reader.isAtEnd, evicted <= 1 else { throw ByteDecodingError("malformed session record") }
        return SessionRecord(createdRevision: created, acknowledged: acknowledged, isEvicted: evicted == 1)
    }

    static func decodeSessionResult(_ value: [UInt8]) throws(ByteDecodingError) -> SessionResult {
        guard value.count >= 2, value[0] == 1 else { throw ByteDecodingError("unknown session answer format") }
        switch value[1] {
        case 0: return .success(try StateResponse(decoding: Array(value[2...])))
        case 1: return .failure(try StateError(decoding: Array(value[2...])))
        default: throw ByteDecodingError("malformed session answer")
        }
    }

    /// Splits a session key into the session and, for an answer, its sequence number.
    static func decodeSessionKey(_ key: [UInt8]) throws(ByteDecodingError) -> (session: Int64, sequence: UInt64?) {
        let idLength = sessionPrefix.count + 8
        guard key.count == idLength || key.count == idLength + 8 else { throw ByteDecodingError("malformed session key") }
        var reader = ByteReader(key, offset: sessionPrefix.count)
        let session = Int64(bitPattern: try reader.readBigEndianUInt64() ^ (1 << 63))
        guard key.count > idLength else { return (session, nil) }
        return (session, try reader.readBigEndianUInt64())
    }
}

extension StateStore {
    /// Applies a write in a client session, exactly once.
    ///
    /// - If the session's lease does not exist (never granted, expired or revoked), or the session
    ///   was evicted, the answer is ``StateError/sessionExpired`` and nothing is applied: the
    ///   client must start a new session, and cannot know whether the write was applied before.
    /// - If the table remembers the answer to `stamp.sequence`, that answer is returned and
    ///   nothing is applied.
    /// - If `stamp.sequence` is below the session's acknowledged mark (its answer was forgotten),
    ///   the answer is ``StateError/sessionRequestForgotten`` and nothing is applied.
    /// - Otherwise the request is applied as ``apply(_:)`` applies it, and its response or error is
    ///   remembered; answers below `stamp.acknowledged` are forgotten. A session keeps at most
    ///   ``Configuration/maxSessionResults`` answers (the lowest go first) and the table at most
    ///   ``Configuration/maxSessions`` live sessions (the oldest are evicted first).
    ///
    /// Unlike ``apply(_:)`` this never throws: a failed write still changes the table, so its
    /// mutations must be written like any other.
    public mutating func apply(_ request: StateRequest, in stamp: SessionStamp) -> Applied<SessionResult> {
        guard leaseTable[stamp.session] != nil else { return Applied(response: .failure(.sessionExpired)) }
        var mutations: [BackendMutation] = []
        var record: SessionRecord
        if let existing = sessionTable[stamp.session] {
            if existing.isEvicted { return Applied(response: .failure(.sessionExpired)) }
            if let remembered = existing.results[stamp.sequence] { return Applied(response: remembered) }
            if stamp.sequence < existing.acknowledged { return Applied(response: .failure(.sessionRequestForgotten)) }
            record = existing
        } else {
            record = SessionRecord(createdRevision: currentRevision)
            evictSessions(toMakeRoomIn: &mutations)
        }

        let result: SessionResult
        var events: [Event] = []
        do throws(StateError) {
            let applied = try apply(request)
            mutations.append(contentsOf: applied.mutations)
            events = applied.events
            result = .success(applied.response)
        } catch {
            result = .failure(error)
        }
        // A write that revoked the session's own lease ended the session with it.
        guard leaseTable[stamp.session] != nil else { return Applied(response: result, mutations: mutations, events: events) }

        let isNew = sessionTable[stamp.session] == nil
        let acknowledgedBefore = record.acknowledged
        record.results[stamp.sequence] = result
        mutations.append(
            .put(
                key: BackendLayout.sessionResultKey(stamp.session, sequence: stamp.sequence),
                value: BackendLayout.encode(sessionResult: result)))
        let acknowledged = Swift.max(record.acknowledged, Swift.min(stamp.acknowledged, stamp.sequence))
        forget(below: acknowledged, in: &record, session: stamp.session, mutations: &mutations)
        while record.results.count > configuration.maxSessionResults, let lowest = record.results.keys.min() {
            forget(below: lowest + 1, in: &record, session: stamp.session, mutations: &mutations)
        }
        if isNew || record.acknowledged != acknowledgedBefore {
            mutations.append(.put(key: BackendLayout.sessionKey(stamp.session), value: BackendLayout.encode(session: record)))
        }
        sessionTable[stamp.session] = record
        return Applied(response: result, mutations: mutations, events: events)
    }

    /// Returns a session's entry in the session table, if it has one.
    public func session(_ id: Int64) -> SessionRecord? {
        sessionTable[id]
    }

    /// Whether the session table holds the answer to the write `stamp` names (so applying it
    /// again would only return that answer); false for nil.
    public func remembers(_ stamp: SessionStamp?) -> Bool {
        guard let stamp else { return false }
        return sessionTable[stamp.session]?.results[stamp.sequence] != nil
    }

    /// The number of sessions in the table that are not evicted.
    public var liveSessionCount: Int {
        sessionTable.values.reduce(0) { $0 + ($1.isEvicted ? 0 : 1) }
    }

    /// Raises a session's acknowledged mark and drops the answers below it.
    private func forget(below mark: UInt64, in record: inout SessionRecord, session: Int64, mutations: inout [BackendMutation]) {
        guard mark > record.acknowledged else { return }
        record.acknowledged = mark
        for sequence in record.results.keys.sorted() where sequence < mark {
            record.results[sequence] = nil
            mutations.append(.delete(key: BackendLayout.sessionResultKey(session, sequence: sequence)))
        }
    }

    /// Evicts the oldest live sessions until a new one fits under ``Configuration/maxSessions``.
    private mutating func evictSessions(toMakeRoomIn mutations: inout [BackendMutation]) {
        var live = sessionTable.filter { !$0.value.isEvicted }
        while live.count >= Swift.max(configuration.maxSessions, 1) {
            guard
                let (id, record) = live.min(by: {
                    ($0.value.createdRevision, $0.key) < ($1.value.createdRevision, $1.key)
                })
            else { return }
            for sequence in record.results.keys.sorted() {
                mutations.append(.delete(key: BackendLayout.sessionResultKey(id, sequence: sequence)))
            }
            let evicted = SessionRecord(createdRevision: record.createdRevision, acknowledged: record.acknowledged, isEvicted: true)
            sessionTable[id] = evicted
            mutations.append(.put(key: BackendLayout.sessionKey(id), value: BackendLayout.encode(session: evicted)))
            live[id] = nil
        }
    }

    /// Removes a session from the table (its lease ended), returning the deletions to persist.
    mutating func endSession(_ id: Int64) -> [BackendMutation] {
        guard let record = sessionTable.removeValue(forKey: id) else { return [] }
        var mutations: [BackendMutation] = [.delete(key: BackendLayout.sessionKey(id))]
        for sequence in record.results.keys.sorted() {
            mutations.append(.delete(key: BackendLayout.sessionResultKey(id, sequence: sequence)))
        }
        return mutations
    }

    /// Calls `body` with the session table's backend pairs, in key order.
    func forEachSessionPair<E: Error>(_ body: (_ key: [UInt8], _ value: [UInt8]) throws(E) -> Void) throws(E) {
        for id in sessionTable.keys.sorted() {
            guard let record = sessionTable[id] else { continue }
            try body(BackendLayout.sessionKey(id), BackendLayout.encode(session: record))
            for sequence in record.results.keys.sorted() {
                guard let result = record.results[sequence] else { continue }
                try body(BackendLayout.sessionResultKey(id, sequence: sequence), BackendLayout.encode(sessionResult: result))
            }
        }
    }

    /// Rebuilds the session table from its backend pairs (any order).
    mutating func restoreSessions(_ pairs: [([UInt8], [UInt8])]) throws(ByteDecodingError) {
        var headers: [Int64: SessionRecord] = [:]
        var results: [Int64: [UInt64: SessionResult]] = [:]
        for (key, value) in pairs {
            let (session, sequence) = try BackendLayout.decodeSessionKey(key)
            if let sequence {
                results[session, default: [:]][sequence] = try BackendLayout.decodeSessionResult(value)
            } else {
                headers[session] = try BackendLayout.decodeSessionHeader(value)
            }
        }
        for (session, answers) in results {
            guard var record = headers[session], !record.isEvicted else {
                throw ByteDecodingError("session answers without a live session record")
            }
            record.results = answers
            headers[session] = record
        }
        sessionTable = headers
    }
}
