import Primitives

// etcd's auth store as replicated state: users, roles, key-range permissions, the enabled flag
// and the auth revision. It is deterministic: passwords arrive already hashed (the proposing
// member hashes them, as etcd 3.5 does), and tokens are made by the shell and carried in the
// request, so every replica applies the same bytes.

/// The kind of access a permission grants (etcd's `authpb.Permission.Type`, same numbers).
public enum PermissionType: Int, Hashable, Sendable {
    /// Range, watch and the compares of a transaction.
    case read = 0
    /// Put and delete.
    case write = 1
    /// Both.
    case readWrite = 2
}

/// A key-range permission of a role (etcd's `authpb.Permission`).
///
/// `rangeEnd` follows etcd: empty means the single key `key`; `[0]` means every key `>= key`;
/// anything else means `[key, rangeEnd)`.
public struct Permission: Hashable, Sendable {
    /// What the permission allows.
    public var type: PermissionType
    /// The first key (or the only key).
    public var key: [UInt8]
    /// The exclusive end of the range; see the type documentation.
    public var rangeEnd: [UInt8]

    /// Creates a permission.
    public init(type: PermissionType, key: [UInt8], rangeEnd: [UInt8] = []) {
        self.type = type
        self.key = key
        self.rangeEnd = rangeEnd
    }
}

/// A user of the auth store (etcd's `authpb.User`).
public struct AuthUser: Hashable, Sendable {
    /// The name.
    public var name: String
    /// The password hash the proposing member computed (empty for a user without password).
    public var passwordHash: [UInt8]
    /// The granted roles, sorted.
    public var roles: [String]
    /// Whether the user has no password and can authenticate only by certificate.
    public var noPassword: Bool

    /// Creates a user.
    public init(name: String, passwordHash: [UInt8] = [], roles: [String] = [], noPassword: Bool = false) {
        self.name = name
        self.passwordHash = passwordHash
        self.roles = roles.sorted()
        self.noPassword = noPassword
    }

    /// Whether the user holds the `root` role.
    public var isRoot: Bool { roles.contains(AuthState.rootRole) }
}

/// A role of the auth store (etcd's `authpb.Role`).
public struct AuthRole: Hashable, Sendable {
    /// The name.
    public var name: String
    /// The key-range permissions, sorted by key.
    public var permissions: [Permission]

    /// Creates a role.
    public init(name: String, permissions: [Permission] = []) {
        self.name = name
        self.permissions = permissions
    }
}

/// Who a client request is made for, as the proposing member resolved it (etcd's
/// `RequestHeader.username` and `auth_revision`).
///
/// A revision of 0 means no credentials were given: with auth enabled, such a request is
/// refused with ``StateError/userEmpty``.
public struct AuthInfo: Hashable, Sendable {
    /// The user name, empty if none.
    public var user: String
    /// The auth revision the credentials were checked at.
    public var revision: UInt64

    /// Creates the header.
    public init(user: String, revision: UInt64) {
        self.user = user
        self.revision = revision
    }

    /// A request without credentials.
    public static let anonymous = AuthInfo(user: "", revision: 0)
}

/// The replicated auth state.
public struct AuthState: Hashable, Sendable {
    /// The name of the administrator user and role.
    public static let rootRole = "root"
    /// The name of the administrator user.
    public static let rootUser = "root"

    /// Whether authentication is enabled.
    public internal(set) var isEnabled = false
    /// The auth revision: raised by every change of users, roles or permissions (etcd starts at 1).
    public internal(set) var revision: UInt64 = 1
    /// Users by name.
    public internal(set) var users: [String: AuthUser] = [:]
    /// Roles by name.
    public internal(set) var roles: [String: AuthRole] = [:]

    /// Creates an empty, disabled auth state.
    public init() {}

    /// Whether a user holds the role.
    public func user(_ name: String, hasRole role: String) -> Bool {
        users[name]?.roles.contains(role) ?? false
    }

    /// Checks a key-range access, as etcd's `isOpPermitted`: nothing is checked while auth is
    /// disabled; otherwise the request must carry credentials at the current auth revision, and
    /// the user must be root or hold permissions whose union covers the whole range.
    ///
    /// - Throws: ``StateError/userEmpty``, ``StateError/authOldRevision``,
    ///   ``StateError/permissionDenied``.
    public func checkAccess(
        _ info: AuthInfo, key: [UInt8], rangeEnd: [UInt8] = [], type: PermissionType
    ) throws(StateError) {
        guard isEnabled else { return }
        guard info.revision != 0 else { throw .userEmpty }
        guard info.revision >= revision else { throw .authOldRevision }
        guard let user = users[info.user] else { throw .permissionDenied }
        if user.isRoot { return }
        var intervals: [(start: [UInt8], end: [UInt8]?)] = []
        for roleName in user.roles {
            for permission in roles[roleName]?.permissions ?? []
            where permission.type == .readWrite || permission.type == type {
                intervals.append(Self.interval(key: permission.key, rangeEnd: permission.rangeEnd))
            }
        }
        let wanted = Self.interval(key: key, rangeEnd: rangeEnd)
        guard Self.covers(intervals, wanted) else { throw .permissionDenied }
    }

    /// Checks that a request is made by a root user (etcd's `IsAdminPermitted`).
    ///
    /// - Throws: ``StateError/userEmpty``, ``StateError/userNotFound``,
    ///   ``StateError/permissionDenied``.
    public func checkAdmin(_ info: AuthInfo) throws(StateError) {
        guard isEnabled else { return }
        guard !info.user.isEmpty else { throw .userEmpty }
        guard let user = users[info.user] else { throw .userNotFound }
        guard user.isRoot else { throw .permissionDenied }
    }

    /// The half-open interval a key range denotes; a nil end is unbounded.
    static func interval(key: [UInt8], rangeEnd: [UInt8]) -> (start: [UInt8], end: [UInt8]?) {
        if rangeEnd.isEmpty { return (key, key + [0]) }
        if rangeEnd == [0] { return (key, nil) }
        return (key, rangeEnd)
    }

    /// Whether the union of `intervals` covers `wanted`.
    static func covers(_ intervals: [(start: [UInt8], end: [UInt8]?)], _ wanted: (start: [UInt8], end: [UInt8]?)) -> Bool {
        if let end = wanted.end, compareBytes(wanted.start, end) >= 0 { return true }
        let sorted = intervals.sorted { compareBytes($0.start, $1.start) < 0 }
        var cursor = wanted.start
        for interval in sorted {
            if compareBytes(interval.start, cursor) > 0 { break }
            guard let end = interval.end else { return true }
            if compareBytes(end, cursor) > 0 { cursor = end }
            if let wantedEnd = wanted.end, compareBytes(cursor, wantedEnd) >= 0 { return true }
        }
        return false
    }
}

/// A change to, or a query of, the auth store (etcd's `Auth*Request` messages as Raft applies them).
public enum AuthRequest: Hashable, Sendable {
    /// Enables authentication; requires the `root` user with the `root` role.
    case enable
    /// Disables authentication.
    case disable
    /// Records a successful authentication. The proposing member checked the password; `token`
    /// is the simple token every member learns (empty for JWT tokens, which need no state).
    case authenticate(user: String, token: String)
    /// Adds a user.
    case userAdd(name: String, passwordHash: [UInt8], noPassword: Bool)
    /// Reads a user's roles.
    case userGet(name: String)
    /// Lists the users.
    case userList
    /// Deletes a user.
    case userDelete(name: String)
    /// Replaces a user's password hash.
    case userChangePassword(name: String, passwordHash: [UInt8])
    /// Grants a role to a user.
    case userGrantRole(user: String, role: String)
    /// Revokes a role from a user.
    case userRevokeRole(user: String, role: String)
    /// Adds a role.
    case roleAdd(name: String)
    /// Reads a role's permissions.
    case roleGet(name: String)
    /// Lists the roles.
    case roleList
    /// Deletes a role (and revokes it from every user).
    case roleDelete(name: String)
    /// Grants (or changes the type of) a permission.
    case roleGrantPermission(role: String, permission: Permission)
    /// Revokes the permission on exactly `key`..`rangeEnd`.
    case roleRevokePermission(role: String, key: [UInt8], rangeEnd: [UInt8])

    /// Whether only a root user may make the request (etcd's `needAdminPermission`).
    public var needsAdmin: Bool {
        switch self {
        case .authenticate, .userGet, .roleGet: false
        default: true
        }
    }

    /// Whether the request changes nothing.
    public var isReadOnly: Bool {
        switch self {
        case .userGet, .userList, .roleGet, .roleList: true
        default: false
        }
    }
}

/// The answer to an ``AuthRequest``.
public struct AuthResponse: Hashable, Sendable {
    /// The store revision (`header.revision`).
    public var revision: Int64
    /// The auth revision after the request.
    public var authRevision: UInt64
    /// The token, for `authenticate`.
    public var token: String
    /// The user's roles (`userGet`), or every role name (`roleList`).
    public var roles: [String]
    /// Every user name (`userList`).
    public var users: [String]
    /// The role's permissions (`roleGet`).
    public var permissions: [Permission]

    /// Creates an answer.
    public init(
        revision: Int64, authRevision: UInt64, token: String = "", roles: [String] = [], users: [String] = [],
        permissions: [Permission] = []
    ) {
        self.revision = revision
        self.authRevision = authRevision
        self.token = token
        self.roles = roles
        self.users = users
        self.permissions = permissions
    }
}

// MARK: - Applying

extension StateStore {
    /// The auth state.
    public var authState: AuthState { auth }

    /// Applies an auth request made by `info` (nil: by the cluster itself, unchecked).
    mutating func applyAuth(_ request: AuthRequest, as info: AuthInfo?) throws(StateError) -> Applied<AuthResponse> {
        if let info {
            if request.needsAdmin { try auth.checkAdmin(info) }
            switch request {
            case .userGet(let name) where auth.isEnabled && name != info.user:
                try auth.checkAdmin(info)
            case .roleGet(let name) where auth.isEnabled && !auth.user(info.user, hasRole: name):
                try auth.checkAdmin(info)
            default: break
            }
        }
        var state = auth
        var response = AuthResponse(revision: currentRevision, authRevision: state.revision)
        var changed = true
        switch request {
        case .enable:
            if state.isEnabled { return Applied(response: response) }
            guard let root = state.users[AuthState.rootUser] else { throw .rootUserNotExist }
            guard root.isRoot else { throw .rootRoleNotExist }
            state.isEnabled = true
            // etcd does not raise the revision on enable.
            auth = state
            return Applied(response: response, mutations: [.put(key: BackendLayout.authEnabledKey, value: [1])])
        case .disable:
            guard state.isEnabled else { return Applied(response: response) }
            state.isEnabled = false
        case .authenticate(let user, let token):
            guard state.isEnabled else { throw .authNotEnabled }
            guard let record = state.users[user], !record.noPassword else { throw .authFailed }
            response.token = token
            return Applied(response: response)
        case .userAdd(let name, let hash, let noPassword):
            guard !name.isEmpty else { throw .userEmpty }
            guard state.users[name] == nil else { throw .userAlreadyExists }
            state.users[name] = AuthUser(name: name, passwordHash: noPassword ? [] : hash, noPassword: noPassword)
        case .userGet(let name):
            guard let user = state.users[name] else { throw .userNotFound }
            response.roles = user.roles
            changed = false
        case .userList:
            response.users = state.users.keys.sorted()
            changed = false
        case .userDelete(let name):
            if state.isEnabled && name == AuthState.rootUser { throw .invalidAuthManagement }
            guard state.users.removeValue(forKey: name) != nil else { throw .userNotFound }
        case .userChangePassword(let name, let hash):
            guard state.users[name] != nil else { throw .userNotFound }
            state.users[name]?.passwordHash = hash
        case .userGrantRole(let name, let role):
            guard var user = state.users[name] else { throw .userNotFound }
            if role != AuthState.rootRole && state.roles[role] == nil { throw .roleNotFound }
            if user.roles.contains(role) { return Applied(response: response) }
            user.roles = (user.roles + [role]).sorted()
            state.users[name] = user
        case .userRevokeRole(let name, let role):
            if state.isEnabled && name == AuthState.rootUser && role == AuthState.rootRole { throw .invalidAuthManagement }
            guard var user = state.users[name] else { throw .userNotFound }
            guard user.roles.contains(role) else { throw .roleNotGranted }
            user.roles.removeAll { $0 == role }
            state.users[name] = user
        case .roleAdd(let name):
            guard !name.isEmpty else { throw .roleEmpty }
            guard state.roles[name] == nil else { throw .roleAlreadyExists }
            state.roles[name] = AuthRole(name: name)
        case .roleGet(let name):
            guard let role = state.roles[name] else { throw .roleNotFound }
            response.permissions = role.permissions
            changed = false
        case .roleList:
            response.roles = state.roles.keys.sorted()
            changed = false
        case .roleDelete(let name):
            if state.isEnabled && name == AuthState.rootRole { throw .invalidAuthManagement }
            guard state.roles.removeValue(forKey: name) != nil else { throw .roleNotFound }
            for userName in state.users.keys where state.users[userName]!.roles.contains(name) {
                state.users[userName]!.roles.removeAll { $0 == name }
            }
        case .roleGrantPermission(let name, let permission):
            guard Self.isValidPermissionRange(key: permission.key, rangeEnd: permission.rangeEnd) else {
                throw .invalidAuthManagement
            }
            guard var role = state.roles[name] else { throw .roleNotFound }
            if let i = role.permissions.firstIndex(where: { $0.key == permission.key && $0.rangeEnd == permission.rangeEnd }) {
                role.permissions[i].type = permission.type
            } else {
                role.permissions.append(permission)
                role.permissions.sort { compareBytes($0.key, $1.key) < 0 }
            }
            state.roles[name] = role
        case .roleRevokePermission(let name, let key, let rangeEnd):
            guard var role = state.roles[name] else { throw .roleNotFound }
            let before = role.permissions.count
            role.permissions.removeAll { $0.key == key && $0.rangeEnd == rangeEnd }
            guard role.permissions.count != before else { throw .permissionNotGranted }
            state.roles[name] = role
        }
        guard changed else { return Applied(response: response) }
        let mutations = Self.authMutations(from: auth, to: &state)
        auth = state
        response.authRevision = state.revision
        return Applied(response: response, mutations: mutations)
    }

    /// etcd's `isValidPermissionRange`: a key, and an end that is empty, `[0]` or above the key.
    static func isValidPermissionRange(key: [UInt8], rangeEnd: [UInt8]) -> Bool {
        guard !key.isEmpty else { return false }
        return rangeEnd.isEmpty || rangeEnd == [0] || compareBytes(key, rangeEnd) < 0
    }

    /// Raises the revision of `new` and returns the backend changes from `old` to it.
    private static func authMutations(from old: AuthState, to new: inout AuthState) -> [BackendMutation] {
        new.revision += 1
        var mutations: [BackendMutation] = []
        if old.isEnabled != new.isEnabled {
            mutations.append(.put(key: BackendLayout.authEnabledKey, value: [new.isEnabled ? 1 : 0]))
        }
        mutations.append(.put(key: BackendLayout.authRevisionKey, value: BackendLayout.encodeInt(Int64(bitPattern: new.revision))))
        for name in Set(old.users.keys).union(new.users.keys).sorted() where old.users[name] != new.users[name] {
            let key = BackendLayout.authUserKey(name)
            if let user = new.users[name] {
                mutations.append(.put(key: key, value: BackendLayout.encode(user: user)))
            } else {
                mutations.append(.delete(key: key))
            }
        }
        for name in Set(old.roles.keys).union(new.roles.keys).sorted() where old.roles[name] != new.roles[name] {
            let key = BackendLayout.authRoleKey(name)
            if let role = new.roles[name] {
                mutations.append(.put(key: key, value: BackendLayout.encode(role: role)))
            } else {
                mutations.append(.delete(key: key))
            }
        }
        return mutations
    }

    /// Checks that `info` may make `request`, as etcd's auth applier does before applying it.
    ///
    /// - Throws: ``StateError/userEmpty``, ``StateError/authOldRevision``,
    ///   ``StateError/permissionDenied``, ``StateError/userNotFound``.
    public func checkPermission(_ info: AuthInfo, for request: StateRequest) throws(StateError) {
        guard auth.isEnabled else { return }
        switch request {
        case .range(let r):
            try auth.checkAccess(info, key: r.key, rangeEnd: r.rangeEnd, type: .read)
        case .put(let r):
            try checkPut(info, r)
        case .deleteRange(let r):
            try checkDelete(info, r)
        case .txn(let r):
            try checkTxn(info, r)
        case .leaseRevoke(let r):
            try checkLeaseKeys(info, lease: r.id)
        case .compaction, .alarm:
            try auth.checkAdmin(info)
        case .auth, .authorized:
            break
        case .leaseGrant, .leaseCheckpoint, .publishMember, .updateMemberPeerURLs:
            guard info.revision != 0 || !info.user.isEmpty else { throw .userEmpty }
        }
    }

    private func checkPut(_ info: AuthInfo, _ r: PutRequest) throws(StateError) {
        try auth.checkAccess(info, key: r.key, type: .write)
        if r.lease != 0 { try checkLeaseKeys(info, lease: r.lease) }
        if r.prevKV { try auth.checkAccess(info, key: r.key, type: .read) }
    }

    private func checkDelete(_ info: AuthInfo, _ r: DeleteRangeRequest) throws(StateError) {
        try auth.checkAccess(info, key: r.key, rangeEnd: r.rangeEnd, type: .write)
        if r.prevKV { try auth.checkAccess(info, key: r.key, rangeEnd: r.rangeEnd, type: .read) }
    }

    /// Every compare and every operation of both branches, nested transactions included.
    private func checkTxn(_ info: AuthInfo, _ r: TxnRequest) throws(StateError) {
        for compare in r.compares {
            try auth.checkAccess(info, key: compare.key, rangeEnd: compare.rangeEnd, type: .read)
        }
        for op in r.success + r.failure {
            switch op {
            case .range(let range): try auth.checkAccess(info, key: range.key, rangeEnd: range.rangeEnd, type: .read)
            case .put(let put): try checkPut(info, put)
            case .deleteRange(let delete): try checkDelete(info, delete)
            case .txn(let nested): try checkTxn(info, nested)
            }
        }
    }

    /// etcd's `checkLeasePuts`: a root user, or write access to every key attached to the lease.
    private func checkLeaseKeys(_ info: AuthInfo, lease: Int64) throws(StateError) {
        if (try? auth.checkAdmin(info)) != nil { return }
        if info.revision == 0 { throw .userEmpty }
        for key in keys(attachedTo: lease) {
            try auth.checkAccess(info, key: key, type: .write)
        }
    }
}

// MARK: - Backend records

extension BackendLayout {
    /// The key of the enabled flag (`0x01` enabled, `0x00` or absent disabled).
    public static let authEnabledKey: [UInt8] = Array("m/auth/enabled".utf8)
    /// The key of the auth revision, 8-byte big-endian (absent means 1).
    public static let authRevisionKey: [UInt8] = Array("m/auth/revision".utf8)
    /// The prefix of user records: `m/auth/user/` name.
    public static let authUserPrefix: [UInt8] = Array("m/auth/user/".utf8)
    /// The prefix of role records: `m/auth/role/` name.
    public static let authRolePrefix: [UInt8] = Array("m/auth/role/".utf8)

    static func authUserKey(_ name: String) -> [UInt8] { authUserPrefix + Array(name.utf8) }
    static func authRoleKey(_ name: String) -> [UInt8] { authRolePrefix + Array(name.utf8) }

    /// User record: `0x01` (format), flags (bit 0: no password), length-prefixed name,
    /// length-prefixed password hash, a varint count of roles, each length-prefixed.
    static func encode(user: AuthUser) -> [UInt8] {
        var out: [UInt8] = [1, user.noPassword ? 1 : 0]
        out.appendLengthPrefixed(Array(user.name.utf8))
        out.appendLengthPrefixed(user.passwordHash)
        out.appendVarint(UInt64(user.roles.count))
        for role in user.roles { out.appendLengthPrefixed(Array(role.utf8)) }
        return out
    }

    static func decodeUser(_ value: [UInt8]) throws(ByteDecodingError) -> AuthUser {
        var reader = ByteReader(value)
        guard try reader.readByte() == 1 else { throw ByteDecodingError("unknown user record format") }
        let flags = try reader.readByte()
        let name = try reader.readString()
        let hash = try reader.readLengthPrefixed()
        let roles = try (0..<reader.readCount()).map { _ throws(ByteDecodingError) in try reader.readString() }
        guard reader.isAtEnd, flags <= 1 else { throw ByteDecodingError("malformed user record") }
        return AuthUser(name: name, passwordHash: hash, roles: roles, noPassword: flags == 1)
    }

    /// Role record: `0x01` (format), length-prefixed name, a varint count of permissions, each
    /// a type byte, a length-prefixed key and a length-prefixed range end.
    static func encode(role: AuthRole) -> [UInt8] {
        var out: [UInt8] = [1]
        out.appendLengthPrefixed(Array(role.name.utf8))
        out.appendVarint(UInt64(role.permissions.count))
        for permission in role.permissions {
            out.append(UInt8(permission.type.rawValue))
            out.appendLengthPrefixed(permission.key)
            out.appendLengthPrefixed(permission.rangeEnd)
        }
        return out
    }

    static func decodeRole(_ value: [UInt8]) throws(ByteDecodingError) -> AuthRole {
        var reader = ByteReader(value)
        guard try reader.readByte() == 1 else { throw ByteDecodingError("unknown role record format") }
        let name = try reader.readString()
        let permissions = try (0..<reader.readCount()).map { _ throws(ByteDecodingError) in
            guard let type = PermissionType(rawValue: Int(try reader.readByte())) else {
                throw ByteDecodingError("invalid permission type")
            }
            return Permission(type: type, key: try reader.readLengthPrefixed(), rangeEnd: try reader.readLengthPrefixed())
        }
        guard reader.isAtEnd else { throw ByteDecodingError("malformed role record") }
        return AuthRole(name: name, permissions: permissions)
    }
}

extension StateStore {
    /// Calls `body` with the auth state's backend pairs, in key order.
    func forEachAuthPair<E: Error>(_ body: (_ key: [UInt8], _ value: [UInt8]) throws(E) -> Void) throws(E) {
        if auth.isEnabled { try body(BackendLayout.authEnabledKey, [1]) }
        if auth.revision != 1 {
            try body(BackendLayout.authRevisionKey, BackendLayout.encodeInt(Int64(bitPattern: auth.revision)))
        }
        for name in auth.roles.keys.sorted(by: { compareBytes(Array($0.utf8), Array($1.utf8)) < 0 }) {
            try body(BackendLayout.authRoleKey(name), BackendLayout.encode(role: auth.roles[name]!))
        }
        for name in auth.users.keys.sorted(by: { compareBytes(Array($0.utf8), Array($1.utf8)) < 0 }) {
            try body(BackendLayout.authUserKey(name), BackendLayout.encode(user: auth.users[name]!))
        }
    }

    /// Restores one auth backend pair; returns false if `key` is not an auth key.
    mutating func restoreAuthPair(key: [UInt8], value: [UInt8]) throws(ByteDecodingError) -> Bool {
        if key == BackendLayout.authEnabledKey {
            auth.isEnabled = value == [1]
        } else if key == BackendLayout.authRevisionKey {
            auth.revision = UInt64(bitPattern: try BackendLayout.decodeInt(value))
        } else if BackendLayout.hasPrefix(key, BackendLayout.authUserPrefix) {
            let user = try BackendLayout.decodeUser(value)
            guard BackendLayout.authUserKey(user.name) == key else { throw ByteDecodingError("user key mismatch") }
            auth.users[user.name] = user
        } else if BackendLayout.hasPrefix(key, BackendLayout.authRolePrefix) {
            let role = try BackendLayout.decodeRole(value)
            guard BackendLayout.authRoleKey(role.name) == key else { throw ByteDecodingError("role key mismatch") }
            auth.roles[role.name] = role
        } else {
            return false
        }
        return true
    }
}
