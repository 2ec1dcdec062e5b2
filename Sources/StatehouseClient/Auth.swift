import EtcdWire
import Foundation
import SwiftProtobuf

/// What a role may do with a range of keys.
public enum AuthPermissionType: String, Sendable, Hashable, CaseIterable {
    /// Range and watch.
    case read
    /// Put and delete.
    case write
    /// Both.
    case readWrite = "readwrite"
}

/// A role's permission on one key or a range of keys, as etcd's `authpb.Permission`.
public struct AuthPermission: Sendable, Hashable {
    /// What the permission allows.
    public var type: AuthPermissionType
    /// The key, or the start of the range.
    public var key: [UInt8]
    /// The end of the range (exclusive); empty for the single key `key`, `[0]` for every key
    /// from `key` on.
    public var rangeEnd: [UInt8]

    /// A permission of `type` on `key`, or on the range [`key`, `rangeEnd`).
    public init(_ type: AuthPermissionType, key: some BytesConvertible, rangeEnd: some BytesConvertible = [UInt8]()) {
        self.type = type
        self.key = key.statehouseBytes
        self.rangeEnd = rangeEnd.statehouseBytes
    }

    /// A permission of `type` on every key that starts with `prefix`.
    public static func prefix(_ type: AuthPermissionType, _ prefix: some BytesConvertible) -> AuthPermission {
        let range = KeyRange.prefix(prefix)
        return AuthPermission(type, key: range.key, rangeEnd: range.rangeEnd)
    }

    init(_ permission: Authpb_Permission) {
        switch permission.permType {
        case .write: type = .write
        case .readwrite: type = .readWrite
        default: type = .read
        }
        key = Array(permission.key)
        rangeEnd = Array(permission.rangeEnd)
    }

    var wire: Authpb_Permission {
        var permission = Authpb_Permission()
        switch type {
        case .read: permission.permType = .read
        case .write: permission.permType = .write
        case .readWrite: permission.permType = .readwrite
        }
        permission.key = Data(key)
        permission.rangeEnd = Data(rangeEnd)
        return permission
    }
}

/// etcd's Auth service: turning authentication on and off, users and roles (docs/security.md).
/// Every call but ``enableAuth()`` needs root's credentials once authentication is enabled.
extension StatehouseClient {
    /// Turns authentication on; the cluster needs a `root` user with the `root` role.
    @discardableResult
    public func enableAuth() async throws -> ResponseHeader {
        let response: Etcdserverpb_AuthEnableResponse = try await authCall(
            "AuthEnable", Etcdserverpb_AuthEnableRequest(), policy: .idempotent)
        return ResponseHeader(response.header)
    }

    /// Turns authentication off.
    @discardableResult
    public func disableAuth() async throws -> ResponseHeader {
        let response: Etcdserverpb_AuthDisableResponse = try await authCall(
            "AuthDisable", Etcdserverpb_AuthDisableRequest(), policy: .idempotent)
        return ResponseHeader(response.header)
    }

    /// Adds a user with `password`; with `password` nil the user has none and can authenticate
    /// only with a client certificate (etcd's `--no-password`).
    @discardableResult
    public func addUser(_ name: String, password: String?) async throws -> ResponseHeader {
        var request = Etcdserverpb_AuthUserAddRequest()
        request.name = name
        request.password = password ?? ""
        request.options.noPassword = password == nil
        let response: Etcdserverpb_AuthUserAddResponse = try await authCall("UserAdd", request, policy: .unsentOnly)
        return ResponseHeader(response.header)
    }

    /// Deletes a user.
    @discardableResult
    public func deleteUser(_ name: String) async throws -> ResponseHeader {
        var request = Etcdserverpb_AuthUserDeleteRequest()
        request.name = name
        let response: Etcdserverpb_AuthUserDeleteResponse = try await authCall("UserDelete", request, policy: .unsentOnly)
        return ResponseHeader(response.header)
    }

    /// The roles a user holds.
    public func roles(ofUser name: String) async throws -> [String] {
        var request = Etcdserverpb_AuthUserGetRequest()
        request.name = name
        let response: Etcdserverpb_AuthUserGetResponse = try await authCall("UserGet", request, policy: .idempotent)
        return response.roles
    }

    /// The names of all users.
    public func users() async throws -> [String] {
        let response: Etcdserverpb_AuthUserListResponse = try await authCall(
            "UserList", Etcdserverpb_AuthUserListRequest(), policy: .idempotent)
        return response.users
    }

    /// Changes a user's password.
    @discardableResult
    public func changePassword(ofUser name: String, to password: String) async throws -> ResponseHeader {
        var request = Etcdserverpb_AuthUserChangePasswordRequest()
        request.name = name
        request.password = password
        let response: Etcdserverpb_AuthUserChangePasswordResponse = try await authCall(
            "UserChangePassword", request, policy: .unsentOnly)
        return ResponseHeader(response.header)
    }

    /// Grants `role` to a user.
    @discardableResult
    public func grantRole(_ role: String, toUser user: String) async throws -> ResponseHeader {
        var request = Etcdserverpb_AuthUserGrantRoleRequest()
        request.user = user
        request.role = role
        let response: Etcdserverpb_AuthUserGrantRoleResponse = try await authCall("UserGrantRole", request, policy: .unsentOnly)
        return ResponseHeader(response.header)
    }

    /// Takes `role` away from a user.
    @discardableResult
    public func revokeRole(_ role: String, fromUser user: String) async throws -> ResponseHeader {
        var request = Etcdserverpb_AuthUserRevokeRoleRequest()
        request.name = user
        request.role = role
        let response: Etcdserverpb_AuthUserRevokeRoleResponse = try await authCall(
            "UserRevokeRole", request, policy: .unsentOnly)
        return ResponseHeader(response.header)
    }

    /// Adds a role without permissions.
    @discardableResult
    public func addRole(_ name: String) async throws -> ResponseHeader {
        var request = Etcdserverpb_AuthRoleAddRequest()
        request.name = name
        let response: Etcdserverpb_AuthRoleAddResponse = try await authCall("RoleAdd", request, policy: .unsentOnly)
        return ResponseHeader(response.header)
    }

    /// Deletes a role (users lose it).
    @discardableResult
    public func deleteRole(_ name: String) async throws -> ResponseHeader {
        var request = Etcdserverpb_AuthRoleDeleteRequest()
        request.role = name
        let response: Etcdserverpb_AuthRoleDeleteResponse = try await authCall("RoleDelete", request, policy: .unsentOnly)
        return ResponseHeader(response.header)
    }

    /// A role's permissions.
    public func permissions(ofRole name: String) async throws -> [AuthPermission] {
        var request = Etcdserverpb_AuthRoleGetRequest()
        request.role = name
        let response: Etcdserverpb_AuthRoleGetResponse = try await authCall("RoleGet", request, policy: .idempotent)
        return response.perm.map(AuthPermission.init)
    }

    /// The names of all roles.
    public func roles() async throws -> [String] {
        let response: Etcdserverpb_AuthRoleListResponse = try await authCall(
            "RoleList", Etcdserverpb_AuthRoleListRequest(), policy: .idempotent)
        return response.roles
    }

    /// Gives a role a permission (replacing its permission on the same range, if any).
    @discardableResult
    public func grantPermission(_ permission: AuthPermission, toRole role: String) async throws -> ResponseHeader {
        var request = Etcdserverpb_AuthRoleGrantPermissionRequest()
        request.name = role
        request.perm = permission.wire
        let response: Etcdserverpb_AuthRoleGrantPermissionResponse = try await authCall(
            "RoleGrantPermission", request, policy: .unsentOnly)
        return ResponseHeader(response.header)
    }

    /// Takes away a role's permission on `key`, or on the range [`key`, `rangeEnd`).
    @discardableResult
    public func revokePermission(
        key: some BytesConvertible, rangeEnd: some BytesConvertible = [UInt8](), fromRole role: String
    ) async throws -> ResponseHeader {
        var request = Etcdserverpb_AuthRoleRevokePermissionRequest()
        request.role = role
        request.key = Data(key.statehouseBytes)
        request.rangeEnd = Data(rangeEnd.statehouseBytes)
        let response: Etcdserverpb_AuthRoleRevokePermissionResponse = try await authCall(
            "RoleRevokePermission", request, policy: .unsentOnly)
        return ResponseHeader(response.header)
    }

    private func authCall<Request: SwiftProtobuf.Message & Sendable, Response: SwiftProtobuf.Message & Sendable>(
        _ method: String, _ request: Request, policy: RetryPolicy
    ) async throws -> Response {
        try await unary(Methods.auth(method), request, policy: policy)
    }
}
