import EtcdWire
import Foundation
import GRPCServer
import GRPCStatus
import NIOCore
import NIOPosix
import ReplicatedMember
import StateMachine
import SwiftProtobuf

/// `etcdserverpb.Auth`: every request goes through the log, as in etcd, carrying the caller's
/// credentials so that the state machine checks root rights when it applies it. Passwords are
/// hashed here, off the member loop, before the request is proposed; `Authenticate` checks the
/// password here against the replicated hash and proposes the new token so that every member
/// learns it.
struct AuthService: EtcdService {
    let host: MemberHost

    /// Proposes `request` with the call's credentials and answers with `make(result)`.
    private func propose<Response: AuthResponseMessage>(
        _ request: AuthRequest, _ responder: UnaryResponder, _ make: @escaping @Sendable (AuthResponse) -> Response
    ) {
        submit(.write(.auth(request)), responder) { response, context in
            guard case .write(.auth(let result)) = response else { return nil }
            var message = make(result)
            message.header = header(context, revision: result.revision)
            return message
        }
    }

    /// Hashes `password` off the member loop, then calls `body` with the hash.
    private func withHash(
        _ password: String, _ responder: UnaryResponder, _ body: @escaping @Sendable ([UInt8]) -> Void
    ) {
        let rounds = host.authenticator.passwordRounds
        NIOThreadPool.singleton.runIfActive(eventLoop: host.loop) {
            Authenticator.hash(password: password, rounds: rounds)
        }.whenComplete { result in
            switch result {
            case .success(let hash): body(hash)
            case .failure(let error): responder.fail(ServiceError(.internal, "etcdserver: \(error)"))
            }
        }
    }

    func authEnable(_ request: Etcdserverpb_AuthEnableRequest, _ responder: UnaryResponder) {
        propose(.enable, responder) { _ in Etcdserverpb_AuthEnableResponse() }
    }

    func authDisable(_ request: Etcdserverpb_AuthDisableRequest, _ responder: UnaryResponder) {
        propose(.disable, responder) { _ in Etcdserverpb_AuthDisableResponse() }
    }

    /// `Authenticate`: checks the password against the replicated hash (off the member loop),
    /// then proposes the token so that every member accepts it.
    func authenticate(_ request: Etcdserverpb_AuthenticateRequest, _ responder: UnaryResponder) {
        let host = self.host
        host.loop.execute {
            let auth = host.member.store.authState
            guard auth.isEnabled else { return responder.fail(ServiceError(StateError.authNotEnabled)) }
            guard let user = auth.users[request.name], !user.noPassword else {
                return responder.fail(ServiceError(StateError.authFailed))
            }
            NIOThreadPool.singleton.runIfActive(eventLoop: host.loop) {
                Authenticator.verify(password: request.password, against: user.passwordHash)
            }.whenComplete { result in
                guard case .success(true) = result else { return responder.fail(ServiceError(StateError.authFailed)) }
                // A JWT needs no replicated state: the entry only checks the user still exists.
                let jwt: String?
                if let tokens = host.authenticator.jwt {
                    guard let signed = try? tokens.sign(user: request.name, revision: auth.revision) else {
                        return responder.fail(ServiceError(.internal, "etcdserver: failed to sign the token"))
                    }
                    jwt = signed
                } else {
                    jwt = nil
                }
                let token = jwt == nil ? host.authenticator.newSimpleToken() : ""
                propose(.authenticate(user: request.name, token: token), responder) { result in
                    var response = Etcdserverpb_AuthenticateResponse()
                    response.token = jwt ?? result.token
                    return response
                }
            }
        }
    }

    func userAdd(_ request: Etcdserverpb_AuthUserAddRequest, _ responder: UnaryResponder) {
        let noPassword = request.hasOptions && request.options.noPassword
        guard !request.name.isEmpty else { return responder.fail(ServiceError(StateError.userEmpty)) }
        if noPassword {
            return propose(.userAdd(name: request.name, passwordHash: [], noPassword: true), responder) { _ in
                Etcdserverpb_AuthUserAddResponse()
            }
        }
        withHash(request.password, responder) { hash in
            propose(.userAdd(name: request.name, passwordHash: hash, noPassword: false), responder) { _ in
                Etcdserverpb_AuthUserAddResponse()
            }
        }
    }

    func userGet(_ request: Etcdserverpb_AuthUserGetRequest, _ responder: UnaryResponder) {
        propose(.userGet(name: request.name), responder) { result in
            var response = Etcdserverpb_AuthUserGetResponse()
            response.roles = result.roles
            return response
        }
    }

    func userList(_ request: Etcdserverpb_AuthUserListRequest, _ responder: UnaryResponder) {
        propose(.userList, responder) { result in
            var response = Etcdserverpb_AuthUserListResponse()
            response.users = result.users
            return response
        }
    }

    func userDelete(_ request: Etcdserverpb_AuthUserDeleteRequest, _ responder: UnaryResponder) {
        propose(.userDelete(name: request.name), responder) { _ in Etcdserverpb_AuthUserDeleteResponse() }
    }

    func userChangePassword(_ request: Etcdserverpb_AuthUserChangePasswordRequest, _ responder: UnaryResponder) {
        withHash(request.password, responder) { hash in
            propose(.userChangePassword(name: request.name, passwordHash: hash), responder) { _ in
                Etcdserverpb_AuthUserChangePasswordResponse()
            }
        }
    }

    func userGrantRole(_ request: Etcdserverpb_AuthUserGrantRoleRequest, _ responder: UnaryResponder) {
        propose(.userGrantRole(user: request.user, role: request.role), responder) { _ in
            Etcdserverpb_AuthUserGrantRoleResponse()
        }
    }

    func userRevokeRole(_ request: Etcdserverpb_AuthUserRevokeRoleRequest, _ responder: UnaryResponder) {
        propose(.userRevokeRole(user: request.name, role: request.role), responder) { _ in
            Etcdserverpb_AuthUserRevokeRoleResponse()
        }
    }

    func roleAdd(_ request: Etcdserverpb_AuthRoleAddRequest, _ responder: UnaryResponder) {
        propose(.roleAdd(name: request.name), responder) { _ in Etcdserverpb_AuthRoleAddResponse() }
    }

    func roleGet(_ request: Etcdserverpb_AuthRoleGetRequest, _ responder: UnaryResponder) {
        propose(.roleGet(name: request.role), responder) { result in
            var response = Etcdserverpb_AuthRoleGetResponse()
            response.perm = result.permissions.map { permission in
                var wire = Authpb_Permission()
                wire.permType = Authpb_Permission.TypeEnum(rawValue: permission.type.rawValue) ?? .read
                wire.key = Data(permission.key)
                wire.rangeEnd = Data(permission.rangeEnd)
                return wire
            }
            return response
        }
    }

    func roleList(_ request: Etcdserverpb_AuthRoleListRequest, _ responder: UnaryResponder) {
        propose(.roleList, responder) { result in
            var response = Etcdserverpb_AuthRoleListResponse()
            response.roles = result.roles
            return response
        }
    }

    func roleDelete(_ request: Etcdserverpb_AuthRoleDeleteRequest, _ responder: UnaryResponder) {
        propose(.roleDelete(name: request.role), responder) { _ in Etcdserverpb_AuthRoleDeleteResponse() }
    }

    func roleGrantPermission(_ request: Etcdserverpb_AuthRoleGrantPermissionRequest, _ responder: UnaryResponder) {
        guard request.hasPerm else { return responder.fail(ServiceError(StateError.permissionNotGiven)) }
        guard let type = PermissionType(rawValue: request.perm.permType.rawValue) else {
            return responder.fail(ServiceError(StateError.invalidAuthManagement))
        }
        let permission = Permission(type: type, key: Array(request.perm.key), rangeEnd: Array(request.perm.rangeEnd))
        propose(.roleGrantPermission(role: request.name, permission: permission), responder) { _ in
            Etcdserverpb_AuthRoleGrantPermissionResponse()
        }
    }

    func roleRevokePermission(_ request: Etcdserverpb_AuthRoleRevokePermissionRequest, _ responder: UnaryResponder) {
        propose(.roleRevokePermission(role: request.role, key: Array(request.key), rangeEnd: Array(request.rangeEnd)), responder) { _ in
            Etcdserverpb_AuthRoleRevokePermissionResponse()
        }
    }
}

/// An Auth response message: every one has a `header`.
protocol AuthResponseMessage: SwiftProtobufMessageSendable {
    var header: Etcdserverpb_ResponseHeader { get set }
}

extension Etcdserverpb_AuthEnableResponse: AuthResponseMessage {}
extension Etcdserverpb_AuthDisableResponse: AuthResponseMessage {}
extension Etcdserverpb_AuthenticateResponse: AuthResponseMessage {}
extension Etcdserverpb_AuthUserAddResponse: AuthResponseMessage {}
extension Etcdserverpb_AuthUserGetResponse: AuthResponseMessage {}
extension Etcdserverpb_AuthUserListResponse: AuthResponseMessage {}
extension Etcdserverpb_AuthUserDeleteResponse: AuthResponseMessage {}
extension Etcdserverpb_AuthUserChangePasswordResponse: AuthResponseMessage {}
extension Etcdserverpb_AuthUserGrantRoleResponse: AuthResponseMessage {}
extension Etcdserverpb_AuthUserRevokeRoleResponse: AuthResponseMessage {}
extension Etcdserverpb_AuthRoleAddResponse: AuthResponseMessage {}
extension Etcdserverpb_AuthRoleGetResponse: AuthResponseMessage {}
extension Etcdserverpb_AuthRoleListResponse: AuthResponseMessage {}
extension Etcdserverpb_AuthRoleDeleteResponse: AuthResponseMessage {}
extension Etcdserverpb_AuthRoleGrantPermissionResponse: AuthResponseMessage {}
extension Etcdserverpb_AuthRoleRevokePermissionResponse: AuthResponseMessage {}
