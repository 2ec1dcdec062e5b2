import Primitives

// The cluster's replicated metadata beside the key space: its members' names and addresses,
// and the alarms raised on them. etcd keeps the same things in its backend's `members` and
// `alarm` buckets, so a member that catches up from a snapshot learns them too.

/// A member of the cluster as clients see it (etcd's `Member` message).
public struct ClusterMember: Hashable, Sendable {
    /// The member's ID (its Raft node ID).
    public var id: UInt64
    /// The human-readable name; empty until the member has started and published it.
    public var name: String
    /// The URLs peers reach it at.
    public var peerURLs: [String]
    /// The URLs clients reach it at; empty until the member has started and published them.
    public var clientURLs: [String]
    /// Whether the member is a non-voting learner.
    public var isLearner: Bool

    /// Creates a member record.
    public init(id: UInt64, name: String = "", peerURLs: [String] = [], clientURLs: [String] = [], isLearner: Bool = false) {
        self.id = id
        self.name = name
        self.peerURLs = peerURLs
        self.clientURLs = clientURLs
        self.isLearner = isLearner
    }

    /// The attributes carried in a membership change's context: the name and peer URLs
    /// (etcd puts the same in its `ConfChange` context).
    public func encodedAttributes() -> [UInt8] {
        var out: [UInt8] = [1]
        out.appendLengthPrefixed(Array(name.utf8))
        out.appendVarint(UInt64(peerURLs.count))
        for url in peerURLs { out.appendLengthPrefixed(Array(url.utf8)) }
        out.appendVarint(UInt64(clientURLs.count))
        for url in clientURLs { out.appendLengthPrefixed(Array(url.utf8)) }
        return out
    }

    /// Decodes attributes written by ``encodedAttributes()`` for member `id`; empty bytes give
    /// a member without attributes.
    public init(id: UInt64, attributes bytes: [UInt8], isLearner: Bool) throws(ByteDecodingError) {
        self.init(id: id, isLearner: isLearner)
        guard !bytes.isEmpty else { return }
        var reader = ByteReader(bytes)
        guard try reader.readByte() == 1 else { throw ByteDecodingError("unknown member record format") }
        name = try reader.readString()
        peerURLs = try (0..<reader.readCount()).map { _ throws(ByteDecodingError) in try reader.readString() }
        clientURLs = try (0..<reader.readCount()).map { _ throws(ByteDecodingError) in try reader.readString() }
        guard reader.isAtEnd else { throw ByteDecodingError("malformed member record") }
    }
}

/// The kinds of alarm (etcd's `AlarmType`, same numbers).
public enum AlarmType: Int, Hashable, Sendable, CaseIterable {
    /// No alarm; in a request, "every alarm".
    case none = 0
    /// The backend exceeded its quota: writes that add data are refused until it is disarmed.
    case noSpace = 1
    /// A member's data was found to differ from its peers'.
    case corrupt = 2
}

/// An alarm raised on one member.
public struct AlarmMember: Hashable, Sendable {
    /// The member the alarm is raised on.
    public var memberID: UInt64
    /// The kind of alarm.
    public var alarm: AlarmType

    /// Creates an alarm record.
    public init(memberID: UInt64, alarm: AlarmType) {
        self.memberID = memberID
        self.alarm = alarm
    }
}

/// A change to the alarms (etcd's `AlarmRequest`).
public struct AlarmRequest: Hashable, Sendable {
    /// What to do.
    public enum Action: Int, Hashable, Sendable {
        /// List the alarms (served without the log by the server; allowed here for completeness).
        case get = 0
        /// Raise an alarm.
        case activate = 1
        /// Clear an alarm.
        case deactivate = 2
    }

    /// What to do.
    public var action: Action
    /// The member; 0 with `deactivate` means every member.
    public var memberID: UInt64
    /// The kind of alarm; `.none` with `deactivate` means every kind.
    public var alarm: AlarmType

    /// Creates an alarm request.
    public init(action: Action, memberID: UInt64, alarm: AlarmType) {
        self.action = action
        self.memberID = memberID
        self.alarm = alarm
    }
}

/// A member publishing its name and client URLs after it starts (etcd's `publish`).
public struct MemberAttributesRequest: Hashable, Sendable {
    /// The member.
    public var id: UInt64
    /// Its name.
    public var name: String
    /// Its client URLs.
    public var clientURLs: [String]

    /// Creates the request.
    public init(id: UInt64, name: String, clientURLs: [String]) {
        self.id = id
        self.name = name
        self.clientURLs = clientURLs
    }
}

/// A change of a member's peer URLs (etcd's `MemberUpdate`).
public struct MemberPeerURLsRequest: Hashable, Sendable {
    /// The member.
    public var id: UInt64
    /// Its new peer URLs.
    public var peerURLs: [String]

    /// Creates the request.
    public init(id: UInt64, peerURLs: [String]) {
        self.id = id
        self.peerURLs = peerURLs
    }
}

/// The answer to a cluster metadata request: the alarms after it.
public struct ClusterResponse: Hashable, Sendable {
    /// The store revision (`header.revision`).
    public var revision: Int64
    /// For a `get`, every alarm; for `activate` and `deactivate`, the alarms raised or cleared
    /// (etcd's `AlarmResponse`).
    public var alarms: [AlarmMember]

    /// Creates the answer.
    public init(revision: Int64, alarms: [AlarmMember] = []) {
        self.revision = revision
        self.alarms = alarms
    }
}

/// A membership change as the Raft log applies it.
public enum MembershipChange: Hashable, Sendable {
    /// A voter joins, or a learner is promoted (keeping its attributes).
    case addVoter(ClusterMember)
    /// A learner joins.
    case addLearner(ClusterMember)
    /// A member leaves.
    case remove(id: UInt64)
}

extension BackendLayout {
    /// The prefix of member records: `m/member/` id(8).
    public static let memberPrefix: [UInt8] = Array("m/member/".utf8)
    /// The prefix of alarm records: `m/alarm/` id(8) type(1).
    public static let alarmPrefix: [UInt8] = Array("m/alarm/".utf8)

    static func memberKey(_ id: UInt64) -> [UInt8] {
        var key = memberPrefix
        key.appendBigEndian(id)
        return key
    }

    static func alarmKey(_ alarm: AlarmMember) -> [UInt8] {
        var key = alarmPrefix
        key.appendBigEndian(alarm.memberID)
        key.append(UInt8(alarm.alarm.rawValue))
        return key
    }

    static func encode(member: ClusterMember) -> [UInt8] {
        [member.isLearner ? 1 : 0] + member.encodedAttributes()
    }

    static func decodeMember(key: [UInt8], value: [UInt8]) throws(ByteDecodingError) -> ClusterMember {
        guard key.count == memberPrefix.count + 8, let flag = value.first, flag <= 1 else {
            throw ByteDecodingError("malformed member record")
        }
        var reader = ByteReader(key, offset: memberPrefix.count)
        let id = try reader.readBigEndianUInt64()
        return try ClusterMember(id: id, attributes: Array(value.dropFirst()), isLearner: flag == 1)
    }

    static func decodeAlarm(key: [UInt8]) throws(ByteDecodingError) -> AlarmMember {
        guard key.count == alarmPrefix.count + 9, let alarm = AlarmType(rawValue: Int(key[key.count - 1])) else {
            throw ByteDecodingError("malformed alarm record")
        }
        var reader = ByteReader(key, offset: alarmPrefix.count)
        return AlarmMember(memberID: try reader.readBigEndianUInt64(), alarm: alarm)
    }
}

extension StateStore {
    /// The cluster's members, by ID.
    public func members() -> [ClusterMember] {
        memberTable.keys.sorted().map { memberTable[$0]! }
    }

    /// The member with `id`, if it belongs to the cluster.
    public func member(_ id: UInt64) -> ClusterMember? { memberTable[id] }

    /// The alarms raised, ordered by member and kind.
    public func alarms() -> [AlarmMember] {
        alarmTable.sorted { ($0.memberID, $0.alarm.rawValue) < ($1.memberID, $1.alarm.rawValue) }
    }

    /// Whether writes that add data are refused (a NOSPACE alarm is raised).
    public var isOutOfSpace: Bool { alarmTable.contains { $0.alarm == .noSpace } }

    /// Records a membership change the Raft log applied. Returns the backend mutations.
    public mutating func applyMembership(_ change: MembershipChange) -> [BackendMutation] {
        switch change {
        case .addVoter(let member):
            var record = memberTable[member.id] ?? member
            if memberTable[member.id] != nil, !member.peerURLs.isEmpty || !member.name.isEmpty {
                // A promotion carries no attributes; a re-add of a known member may.
                record.peerURLs = member.peerURLs.isEmpty ? record.peerURLs : member.peerURLs
                record.name = member.name.isEmpty ? record.name : member.name
            }
            record.isLearner = false
            memberTable[member.id] = record
            return [.put(key: BackendLayout.memberKey(member.id), value: BackendLayout.encode(member: record))]
        case .addLearner(var member):
            member.isLearner = true
            if let known = memberTable[member.id] { member = known }
            memberTable[member.id] = member
            return [.put(key: BackendLayout.memberKey(member.id), value: BackendLayout.encode(member: member))]
        case .remove(let id):
            guard memberTable.removeValue(forKey: id) != nil else { return [] }
            var mutations: [BackendMutation] = [.delete(key: BackendLayout.memberKey(id))]
            for alarm in alarmTable where alarm.memberID == id {
                alarmTable.remove(alarm)
                mutations.append(.delete(key: BackendLayout.alarmKey(alarm)))
            }
            return mutations
        }
    }

    mutating func publish(_ request: MemberAttributesRequest) -> Applied<ClusterResponse> {
        guard var member = memberTable[request.id] else {
            return Applied(response: ClusterResponse(revision: currentRevision))
        }
        member.name = request.name
        member.clientURLs = request.clientURLs
        memberTable[request.id] = member
        return Applied(
            response: ClusterResponse(revision: currentRevision),
            mutations: [.put(key: BackendLayout.memberKey(member.id), value: BackendLayout.encode(member: member))]
        )
    }

    mutating func updatePeerURLs(_ request: MemberPeerURLsRequest) -> Applied<ClusterResponse> {
        guard var member = memberTable[request.id] else {
            return Applied(response: ClusterResponse(revision: currentRevision))
        }
        member.peerURLs = request.peerURLs
        memberTable[request.id] = member
        return Applied(
            response: ClusterResponse(revision: currentRevision),
            mutations: [.put(key: BackendLayout.memberKey(member.id), value: BackendLayout.encode(member: member))]
        )
    }

    mutating func changeAlarms(_ request: AlarmRequest) -> Applied<ClusterResponse> {
        var mutations: [BackendMutation] = []
        var affected: [AlarmMember] = []
        switch request.action {
        case .get:
            affected = alarms()
        case .activate:
            let alarm = AlarmMember(memberID: request.memberID, alarm: request.alarm)
            // etcd ignores alarms for members that are not in the cluster.
            if request.alarm != .none, memberTable[request.memberID] != nil {
                affected = [alarm]
                if alarmTable.insert(alarm).inserted {
                    mutations.append(.put(key: BackendLayout.alarmKey(alarm), value: [1]))
                }
            }
        case .deactivate:
            for alarm in alarms()
            where (request.memberID == 0 || alarm.memberID == request.memberID)
                && (request.alarm == .none || alarm.alarm == request.alarm)
            {
                alarmTable.remove(alarm)
                affected.append(alarm)
                mutations.append(.delete(key: BackendLayout.alarmKey(alarm)))
            }
        }
        return Applied(response: ClusterResponse(revision: currentRevision, alarms: affected), mutations: mutations)
    }
}
