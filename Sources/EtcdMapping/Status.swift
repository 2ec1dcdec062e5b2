public import GRPCStatus
public import ReplicatedMember
public import StateMachine

/// A wire request that etcd refuses before it reaches the state machine.
public enum WireRequestError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A range's sort order or sort target is not a value etcd defines.
    ///
    /// etcd 3.5 refuses it with `ErrGRPCInvalidSortOption`; etcd 3.4 has no check and its
    /// Range handler dereferences a missing sorter for an unknown target.
    case invalidSortOption
    /// A transaction operation (`RequestOp`) has none of its request fields set.
    ///
    /// etcd's `checkRequestOp` answers this with `ErrGRPCKeyNotFound`.
    case emptyRequestOperation

    /// The gRPC status code etcd returns.
    public var code: StatusCode {
        switch self {
        case .invalidSortOption, .emptyRequestOperation: .invalidArgument
        }
    }

    /// The exact gRPC status message etcd returns.
    public var message: String {
        switch self {
        case .invalidSortOption: "etcdserver: invalid sort option"
        case .emptyRequestOperation: StateError.keyNotFound.message
        }
    }

    /// The message, as sent to clients.
    public var description: String { message }
}

extension StateError {
    /// The gRPC status code etcd returns for this error.
    public var code: StatusCode {
        switch self {
        case .emptyKey, .keyNotFound, .valueProvided, .leaseProvided, .tooManyOperations,
            .duplicateKey, .requestTooLarge:
            .invalidArgument
        case .compacted, .futureRevision, .leaseTTLTooLarge:
            .outOfRange
        case .leaseNotFound:
            .notFound
        case .leaseExists, .sessionExpired, .sessionRequestForgotten:
            .failedPrecondition
        case .noSpace:
            .resourceExhausted
        case .rootUserNotExist, .rootRoleNotExist, .userAlreadyExists, .userNotFound, .roleAlreadyExists,
            .roleNotFound, .roleNotGranted, .permissionNotGranted, .authNotEnabled:
            .failedPrecondition
        case .userEmpty, .roleEmpty, .authFailed, .permissionNotGiven, .invalidAuthManagement, .authOldRevision:
            .invalidArgument
        case .permissionDenied:
            .permissionDenied
        case .invalidAuthToken:
            .unauthenticated
        }
    }
}

extension MemberError {
    /// The gRPC status code etcd returns for this error.
    public var code: StatusCode {
        switch self {
        case .state(let error): error.code
        case .noLeader, .notLeader, .leaderChanged, .timedOutDueToLeaderFailure: .unavailable
        case .tooManyRequests: .resourceExhausted
        case .badLeaderTransferee, .membershipChangePending, .leaderTransferInProgress, .invalidMembershipChange, .learnerNotReady:
            .failedPrecondition
        case .leaderTransferTimeout: .deadlineExceeded
        }
    }
}

/// The gRPC status code and message etcd sends for a state-machine error.
public func status(for error: StateError) -> (code: StatusCode, message: String) {
    (error.code, error.message)
}

/// The gRPC status code and message etcd sends for a member error.
public func status(for error: MemberError) -> (code: StatusCode, message: String) {
    (error.code, error.message)
}

/// The gRPC status code and message etcd sends for a refused wire request.
public func status(for error: WireRequestError) -> (code: StatusCode, message: String) {
    (error.code, error.message)
}

/// The gRPC status code and message for any error a request may end with.
///
/// ``WireRequestError``, `StateError` and `MemberError` get etcd's exact code and message.
/// A `CancellationError` becomes etcd's `ErrGRPCCanceled` (`Canceled`, "etcdserver: request
/// canceled"). Any other error becomes `Unknown` with the error's description, which is what etcd's
/// gRPC layer does with an error it has no status for (the election errors, for example).
public func status(for error: any Error) -> (code: StatusCode, message: String) {
    switch error {
    case let error as StateError: status(for: error)
    case let error as MemberError: status(for: error)
    case let error as WireRequestError: status(for: error)
    case is CancellationError: (.cancelled, "etcdserver: request canceled")
    default: (.unknown, String(describing: error))
    }
}
