import GRPCCore

/// The one error type the client throws: a code for each error an etcd v3 server can return,
/// and the server's own message.
///
/// The server's gRPC status message is matched exactly against etcd's error strings (as
/// etcd's Go client does), so the same code comes back from Statehouse and from etcd.
public struct StatehouseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// The requested revision has been compacted away.
        case compacted
        /// The requested revision is newer than the store's current revision.
        case futureRevision
        /// The lease does not exist (never granted, expired or revoked).
        case leaseNotFound
        /// A lease with the requested ID already exists.
        case leaseExists
        /// The requested lease TTL is too large.
        case leaseTTLTooLarge
        /// The cluster has no leader (an election is in progress or quorum is lost).
        case noLeader
        /// The leader changed while the request was in flight; it may or may not have been applied.
        case leaderChanged
        /// The cluster is out of space (the NOSPACE alarm is raised): writes are refused.
        case noSpace
        /// A transaction has more operations than the server allows.
        case tooManyOps
        /// A transaction names the same key twice in its writes.
        case duplicateKey
        /// The request is larger than the server's `--max-request-bytes`.
        case requestTooLarge
        /// The server refuses more requests for now.
        case tooManyRequests
        /// The request needs a key and none was given.
        case emptyKey
        /// `ignoreValue` or `ignoreLease` was set on a key that does not exist.
        case keyNotFound
        /// The caller lacks the permission.
        case permissionDenied
        /// The auth token is invalid (expired, or issued before the member restarted).
        case invalidAuthToken
        /// The call's credentials predate the latest change of users, roles or permissions.
        case authRevisionOld
        /// The user name or password is wrong.
        case authenticationFailed
        /// The cluster has authentication enabled and the call carried no credentials.
        case userNameEmpty
        /// The member ID names no member of the cluster.
        case memberNotFound
        /// A member with those peer URLs already exists.
        case peerURLExists
        /// A member with that ID already exists.
        case memberExists
        /// The member is not a learner (promote).
        case memberNotLearner
        /// The learner has not caught up with the leader yet (promote).
        case learnerNotReady
        /// The cluster already has as many learners as it allows.
        case tooManyLearners
        /// The server reports a corrupt cluster.
        case corrupt
        /// The server timed out the request (it may or may not have been applied).
        case timeout
        /// No endpoint could be reached, or the connection was lost.
        case unavailable
        /// The call did not finish before its deadline.
        case deadlineExceeded
        /// The caller cancelled the call.
        case cancelled
        /// A DistributedMutex or Election lost its session, so it holds nothing any more; or the client's
        /// write session expired while a write was retried (it may or may not have been applied).
        case sessionLost
        /// The lock or leadership a guarded write names is no longer held.
        case notHeld
        /// The election has no leader.
        case noElectionLeader
        /// A compare-and-swap update lost the race on every attempt.
        case conflict
        /// The request was malformed (another InvalidArgument from the server).
        case invalidArgument
        /// An error not listed above; the message tells more.
        case unknown
    }

    /// What went wrong.
    public var code: Code
    /// The server's message (for etcd errors, etcd's exact string) or the client's explanation.
    public var message: String
    /// The gRPC status code the server answered with, if the error came from a server.
    public var grpcCode: RPCError.Code?
    /// For `compacted` errors from a watch: the oldest revision that can still be watched.
    public var compactRevision: Int64?

    /// An error with `code` and `message`.
    public init(_ code: Code, _ message: String, grpcCode: RPCError.Code? = nil) {
        self.code = code
        self.message = message
        self.grpcCode = grpcCode
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// etcd's error strings (rpctypes, 3.4) and the code each one means.
    static let knownMessages: [String: Code] = [
        "etcdserver: mvcc: required revision has been compacted": .compacted,
        "etcdserver: mvcc: required revision is a future revision": .futureRevision,
        "etcdserver: requested lease not found": .leaseNotFound,
        "etcdserver: lease already exists": .leaseExists,
        "etcdserver: too large lease TTL": .leaseTTLTooLarge,
        "etcdserver: no leader": .noLeader,
        "etcdserver: leader changed": .leaderChanged,
        "etcdserver: mvcc: database space exceeded": .noSpace,
        "etcdserver: too many operations in txn request": .tooManyOps,
        "etcdserver: duplicate key given in txn request": .duplicateKey,
        "etcdserver: request is too large": .requestTooLarge,
        "etcdserver: too many requests": .tooManyRequests,
        "etcdserver: key is not provided": .emptyKey,
        "etcdserver: key not found": .keyNotFound,
        "etcdserver: permission denied": .permissionDenied,
        "etcdserver: invalid auth token": .invalidAuthToken,
        "etcdserver: revision of auth store is old": .authRevisionOld,
        "etcdserver: authentication failed, invalid user ID or password": .authenticationFailed,
        "etcdserver: user name is empty": .userNameEmpty,
        "etcdserver: member not found": .memberNotFound,
        "etcdserver: Peer URLs already exists": .peerURLExists,
        "etcdserver: can only promote a learner member": .memberNotLearner,
        "etcdserver: can only promote a learner member which is in sync with leader": .learnerNotReady,
        "etcdserver: too many learner members in cluster": .tooManyLearners,
        "etcdserver: corrupt cluster": .corrupt,
        "etcdserver: member ID already exist": .memberExists,
        "etcdserver: not leader": .noLeader,
        "etcdserver: unhealthy cluster": .unavailable,
        "etcdserver: server stopped": .unavailable,
        "etcdserver: request timed out, leader transfer took too long": .timeout,
        "etcdserver: request timed out": .timeout,
        "etcdserver: request timed out, possibly due to previous leader failure": .timeout,
        "etcdserver: request timed out, possibly due to connection lost": .timeout,
        "etcdserver: request timed out, waiting for the applied index took too long": .timeout,
        // Statehouse's exactly-once writes (docs/api.md): the write session is gone.
        "etcdserver: session expired": .sessionLost,
        "etcdserver: session request already acknowledged": .sessionLost,
    ]

    /// The client error for an RPC error from grpc-swift.
    init(_ error: RPCError) {
        grpcCode = error.code
        message = error.message
        if let known = Self.knownMessages[error.message] {
            code = known
            return
        }
        switch error.code {
        case .unavailable: code = .unavailable
        case .deadlineExceeded: code = .deadlineExceeded
        case .cancelled: code = .cancelled
        case .permissionDenied: code = .permissionDenied
        case .invalidArgument: code = .invalidArgument
        case .resourceExhausted where error.message.contains("larger than max"):
            code = .requestTooLarge
        default: code = .unknown
        }
    }

    /// Whether the error means the endpoint could not serve the call (so another endpoint may).
    var isEndpointFailure: Bool {
        guard let grpcCode else { return code == .unavailable }
        return grpcCode == .unavailable && code != .leaderChanged && code != .timeout
    }
}

extension StatehouseError {
    /// Converts any error a call throws into a `StatehouseError`.
    static func from(_ error: any Error) -> StatehouseError {
        switch error {
        case let error as StatehouseError: return error
        case let error as RPCError: return StatehouseError(error)
        case is CancellationError: return StatehouseError(.cancelled, "the call was cancelled")
        case let error as RuntimeError: return StatehouseError(.unavailable, "\(error)")
        default: return StatehouseError(.unknown, "\(error)")
        }
    }
}
