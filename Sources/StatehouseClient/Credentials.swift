import EtcdWire
import GRPCCore
import Synchronization

/// A user name and password the client authenticates with when the cluster has authentication
/// enabled (etcd's Auth service; docs/security.md).
///
/// The client calls `Authenticate` once, sends the token it gets in the `token` metadata of every
/// call, and authenticates again when a server refuses the token (`etcdserver: invalid auth
/// token`) or the credentials are older than the latest change of users, roles or permissions
/// (`etcdserver: revision of auth store is old`), as etcd's Go client does.
public struct StatehouseCredentials: Sendable, Hashable {
    /// The user's name.
    public var user: String
    /// The user's password.
    public var password: String

    /// Credentials for `user` with `password`.
    public init(user: String, password: String) {
        self.user = user
        self.password = password
    }
}

extension StatehouseError {
    /// Whether the server refused the call's token or its age, so that authenticating again may
    /// let the call through.
    var refusesCredentials: Bool {
        code == .invalidAuthToken || code == .authRevisionOld
    }
}

/// The client's auth token: fetched with `Authenticate` on first use, shared by every call, and
/// dropped when a server refuses it.
final class AuthTokenSource: Sendable {
    private struct State {
        var token: String?
        var pending: Task<String, any Error>?
        var authenticate: (@Sendable () async throws -> String)?
    }

    private let state = Mutex(State())

    /// Sets how a token is obtained (the client's `Authenticate` call).
    func setAuthenticate(_ authenticate: @escaping @Sendable () async throws -> String) {
        state.withLock { $0.authenticate = authenticate }
    }

    /// The current token, authenticating first if there is none (one `Authenticate` at a time,
    /// whatever the number of calls waiting for it).
    func token() async throws -> String {
        enum Next {
            case ready(String)
            case wait(Task<String, any Error>)
        }
        let next = try state.withLock { state throws(StatehouseError) -> Next in
            if let token = state.token { return .ready(token) }
            if let pending = state.pending { return .wait(pending) }
            guard let authenticate = state.authenticate else {
                throw StatehouseError(.unavailable, "the client is shut down")
            }
            let task = Task { try await authenticate() }
            state.pending = task
            return .wait(task)
        }
        switch next {
        case .ready(let token):
            return token
        case .wait(let task):
            do {
                let token = try await task.value
                state.withLock { state in
                    if state.pending == task {
                        state.token = token
                        state.pending = nil
                    }
                }
                return token
            } catch {
                state.withLock { state in
                    if state.pending == task { state.pending = nil }
                }
                throw error
            }
        }
    }

    /// Forgets the current token, so the next call authenticates again.
    func invalidate() {
        state.withLock { $0.token = nil }
    }
}

/// Adds the auth token to the metadata of every call but `Authenticate` itself: unary and
/// streaming calls alike go through it.
struct AuthTokenInterceptor: ClientInterceptor {
    let tokens: AuthTokenSource

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        guard context.descriptor != Methods.authenticate else { return try await next(request, context) }
        let token: String
        do {
            token = try await tokens.token()
        } catch {
            // The call fails with the error of `Authenticate`, as the server said it.
            let failure = StatehouseError.from(error)
            throw RPCError(code: failure.grpcCode ?? failure.code.rpcCode, message: failure.message)
        }
        var request = request
        request.metadata.replaceOrAddString(token, forKey: "token")
        return try await next(request, context)
    }
}

extension StatehouseError.Code {
    /// The gRPC status code a client-side error of this kind stands for.
    fileprivate var rpcCode: RPCError.Code {
        switch self {
        case .unavailable: .unavailable
        case .deadlineExceeded: .deadlineExceeded
        case .cancelled: .cancelled
        default: .unknown
        }
    }
}

extension StatehouseClient {
    /// Authenticates with `credentials` (etcd's `Auth/Authenticate`) and returns the token.
    func authenticate(_ credentials: StatehouseCredentials) async throws -> String {
        var request = Etcdserverpb_AuthenticateRequest()
        request.name = credentials.user
        request.password = credentials.password
        let response: Etcdserverpb_AuthenticateResponse = try await unary(
            Methods.authenticate, request, policy: .idempotent, reauthenticates: false)
        return response.token
    }

    /// If `failure` refuses the client's token, forgets it and returns true (the call may be
    /// sent again, authenticating first); otherwise returns false.
    func dropTokenIfRefused(_ failure: StatehouseError) -> Bool {
        guard let tokens, failure.refusesCredentials else { return false }
        tokens.invalidate()
        return true
    }
}
