import Testing

@testable import StateMachine

@Suite("Auth store")
struct AuthTests {
    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    /// A store with `root` (root role), `alice` (role `app`: readwrite on prefix `app/`, read on
    /// `[cfg/a, cfg/m)`) and auth enabled.
    static func store() throws -> StateStore {
        var store = StateStore()
        for request: AuthRequest in [
            .userAdd(name: "root", passwordHash: [1], noPassword: false),
            .userGrantRole(user: "root", role: "root"),
            .roleAdd(name: "app"),
            .roleGrantPermission(role: "app", permission: Permission(type: .readWrite, key: bytes("app/"), rangeEnd: bytes("app0"))),
            .roleGrantPermission(role: "app", permission: Permission(type: .read, key: bytes("cfg/a"), rangeEnd: bytes("cfg/m"))),
            .userAdd(name: "alice", passwordHash: [2], noPassword: false),
            .userGrantRole(user: "alice", role: "app"),
            .enable,
        ] {
            _ = try store.apply(.auth(request))
        }
        return store
    }

    func alice(_ store: StateStore) -> AuthInfo { AuthInfo(user: "alice", revision: store.authState.revision) }
    func root(_ store: StateStore) -> AuthInfo { AuthInfo(user: "root", revision: store.authState.revision) }

    @Test("enable needs root with the root role")
    func enableNeedsRoot() throws {
        var store = StateStore()
        #expect(throws: StateError.rootUserNotExist) { try store.apply(.auth(.enable)) }
        _ = try store.apply(.auth(.userAdd(name: "root", passwordHash: [1], noPassword: false)))
        #expect(throws: StateError.rootRoleNotExist) { try store.apply(.auth(.enable)) }
        _ = try store.apply(.auth(.userGrantRole(user: "root", role: "root")))
        _ = try store.apply(.auth(.enable))
        #expect(store.authState.isEnabled)
        #expect(throws: StateError.invalidAuthManagement) { try store.apply(.auth(.userDelete(name: "root"))) }
        #expect(throws: StateError.invalidAuthManagement) {
            try store.apply(.auth(.userRevokeRole(user: "root", role: "root")))
        }
        #expect(throws: StateError.invalidAuthManagement) { try store.apply(.auth(.roleDelete(name: "root"))) }
    }

    @Test("prefix and range permissions, read and write")
    func permissions() throws {
        var store = try Self.store()
        let alice = alice(store)
        _ = try store.apply(.authorized(alice, .put(PutRequest(key: Self.bytes("app/x"), value: [1]))))
        _ = try store.apply(.authorized(alice, .range(RangeRequest(key: Self.bytes("app/"), rangeEnd: Self.bytes("app0")))))
        _ = try store.apply(.authorized(alice, .range(RangeRequest(key: Self.bytes("cfg/b"), rangeEnd: Self.bytes("cfg/c")))))
        #expect(throws: StateError.permissionDenied) {
            try store.apply(.authorized(alice, .put(PutRequest(key: Self.bytes("cfg/b"), value: [1]))))
        }
        #expect(throws: StateError.permissionDenied) {
            try store.apply(.authorized(alice, .range(RangeRequest(key: Self.bytes("cfg/a"), rangeEnd: Self.bytes("cfg/z")))))
        }
        #expect(throws: StateError.permissionDenied) {
            try store.apply(.authorized(alice, .range(RangeRequest(key: Self.bytes("a"), rangeEnd: [0]))))
        }
        #expect(throws: StateError.userEmpty) {
            try store.apply(.authorized(.anonymous, .range(RangeRequest(key: Self.bytes("app/x")))))
        }
        // Root may do anything; requests the cluster makes itself are not checked.
        _ = try store.apply(.authorized(root(store), .put(PutRequest(key: Self.bytes("z"), value: [1]))))
        _ = try store.apply(.put(PutRequest(key: Self.bytes("y"), value: [1])))
    }

    @Test("every compare and operation of a transaction, nested ones included")
    func txnBranches() throws {
        var store = try Self.store()
        let alice = alice(store)
        let allowed = RequestOp.put(PutRequest(key: Self.bytes("app/1"), value: [1]))
        let denied = RequestOp.put(PutRequest(key: Self.bytes("other"), value: [1]))
        _ = try store.apply(.authorized(alice, .txn(TxnRequest(success: [allowed], failure: [allowed]))))
        #expect(throws: StateError.permissionDenied) {
            try store.apply(.authorized(alice, .txn(TxnRequest(success: [allowed], failure: [denied]))))
        }
        #expect(throws: StateError.permissionDenied) {
            try store.apply(.authorized(alice, .txn(TxnRequest(success: [.txn(TxnRequest(failure: [denied]))]))))
        }
        let compare = Compare(key: Self.bytes("secret"), target: .version(0), result: .equal)
        #expect(throws: StateError.permissionDenied) {
            try store.apply(.authorized(alice, .txn(TxnRequest(compares: [compare], success: [allowed]))))
        }
    }

    @Test("a change of users or roles makes older credentials stale")
    func revision() throws {
        var store = try Self.store()
        let old = alice(store)
        _ = try store.apply(.authorized(root(store), .auth(.roleAdd(name: "other"))))
        #expect(store.authState.revision == old.revision + 1)
        #expect(throws: StateError.authOldRevision) {
            try store.apply(.authorized(old, .put(PutRequest(key: Self.bytes("app/x"), value: [1]))))
        }
        #expect(throws: StateError.permissionDenied) {
            try store.apply(.authorized(alice(store), .auth(.userList)))
        }
        // A user may read itself and its roles.
        _ = try store.apply(.authorized(alice(store), .auth(.userGet(name: "alice"))))
        _ = try store.apply(.authorized(alice(store), .auth(.roleGet(name: "app"))))
        #expect(throws: StateError.permissionDenied) { try store.apply(.authorized(alice(store), .auth(.roleGet(name: "other")))) }
    }

    @Test("revoking a lease needs write access to its keys")
    func leaseRevoke() throws {
        var store = try Self.store()
        let grant = try store.apply(.leaseGrant(LeaseGrantRequest(ttl: 60, id: 7)))
        _ = grant
        _ = try store.apply(.authorized(root(store), .put(PutRequest(key: Self.bytes("other"), value: [1], lease: 7))))
        #expect(throws: StateError.permissionDenied) {
            try store.apply(.authorized(alice(store), .leaseRevoke(LeaseRevokeRequest(id: 7))))
        }
        #expect(throws: StateError.permissionDenied) {
            try store.apply(.authorized(alice(store), .put(PutRequest(key: Self.bytes("app/k"), value: [1], lease: 7))))
        }
        _ = try store.apply(.authorized(root(store), .leaseRevoke(LeaseRevokeRequest(id: 7))))
    }

    @Test("auth state survives a restore, is in the backend pairs and in the state digest")
    func restore() throws {
        let store = try Self.store()
        let restored = try StateStore(restoringFrom: store.backendPairs())
        #expect(restored.authState == store.authState)
        #expect(restored.digest() == store.digest())
        var changed = store
        _ = try changed.apply(.auth(.roleAdd(name: "x")))
        #expect(changed.digest() != store.digest())
        #expect(try changed.hashKV().hash == store.hashKV().hash)
    }

    @Test("requests and answers round-trip through the wire codec")
    func wire() throws {
        let store = try Self.store()
        let requests: [StateRequest] = [
            .auth(.roleGrantPermission(role: "r", permission: Permission(type: .write, key: [1], rangeEnd: [0]))),
            .auth(.userAdd(name: "u", passwordHash: [9, 9], noPassword: true)),
            .authorized(alice(store), .put(PutRequest(key: [1], value: [2]))),
        ]
        for request in requests {
            #expect(try StateRequest(decoding: request.encoded()) == request)
        }
        let response = StateResponse.auth(
            AuthResponse(
                revision: 3, authRevision: 4, token: "t", roles: ["a"], users: ["b"], permissions: [Permission(type: .read, key: [1])]))
        #expect(try StateResponse(decoding: response.encoded()) == response)
        for error in [StateError.permissionDenied, .authOldRevision, .noSpace, .invalidAuthToken] {
            #expect(try StateError(decoding: error.encoded()) == error)
        }
    }
}
