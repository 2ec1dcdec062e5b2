/// An error of the state machine, with etcd v3.4's exact message.
///
/// clientv3 maps errors back to typed errors by the exact message text, so the server must send
/// ``message`` unchanged, with the gRPC code the API layer (`EtcdMapping`) gives each case.
public enum StateError: Error, Hashable, Sendable, CustomStringConvertible {
    /// An empty key was given (`ErrGRPCEmptyKey`).
    case emptyKey
    /// `ignoreValue` or `ignoreLease` was set for a missing key (`ErrGRPCKeyNotFound`).
    case keyNotFound
    /// `ignoreValue` was set together with a non-empty value (`ErrGRPCValueProvided`).
    case valueProvided
    /// `ignoreLease` was set together with a non-zero lease (`ErrGRPCLeaseProvided`).
    case leaseProvided
    /// A transaction has more operations than allowed (`ErrGRPCTooManyOps`).
    case tooManyOperations
    /// A transaction writes one key twice (`ErrGRPCDuplicateKey`).
    case duplicateKey
    /// The requested revision has been compacted (`ErrGRPCCompacted`).
    case compacted
    /// The requested revision is in the future (`ErrGRPCFutureRev`).
    case futureRevision
    /// The lease does not exist (`ErrGRPCLeaseNotFound`).
    case leaseNotFound
    /// A lease with the requested ID already exists (`ErrGRPCLeaseExist`).
    case leaseExists
    /// The requested TTL exceeds the maximum (`ErrGRPCLeaseTTLTooLarge`).
    case leaseTTLTooLarge
    /// The request exceeds the maximum request size (`ErrGRPCRequestTooLarge`).
    case requestTooLarge
    /// A NOSPACE alarm is raised: the backend exceeded its quota (`ErrGRPCNoSpace`).
    case noSpace
    /// A write named a client session whose lease does not exist (it expired or was revoked,
    /// or never existed), or that was evicted from the full session table. Nothing was applied;
    /// the client must start a new session.
    case sessionExpired
    /// A write's sequence number is below its session's acknowledged mark: its answer was
    /// forgotten, so whether it was applied can no longer be told. Nothing was applied.
    case sessionRequestForgotten
    /// Auth enable without a `root` user (`ErrGRPCRootUserNotExist`).
    case rootUserNotExist
    /// Auth enable while `root` lacks the `root` role (`ErrGRPCRootRoleNotExist`).
    case rootRoleNotExist
    /// The user already exists (`ErrGRPCUserAlreadyExist`).
    case userAlreadyExists
    /// No user name was given, or a request without credentials met enabled auth (`ErrGRPCUserEmpty`).
    case userEmpty
    /// The user does not exist (`ErrGRPCUserNotFound`).
    case userNotFound
    /// The role already exists (`ErrGRPCRoleAlreadyExist`).
    case roleAlreadyExists
    /// The role does not exist (`ErrGRPCRoleNotFound`).
    case roleNotFound
    /// No role name was given (`ErrGRPCRoleEmpty`).
    case roleEmpty
    /// Wrong user or password (`ErrGRPCAuthFailed`).
    case authFailed
    /// A grant without a permission (`ErrGRPCPermissionNotGiven`).
    case permissionNotGiven
    /// The user may not do this (`ErrGRPCPermissionDenied`).
    case permissionDenied
    /// The role is not granted to the user (`ErrGRPCRoleNotGranted`).
    case roleNotGranted
    /// The permission is not granted to the role (`ErrGRPCPermissionNotGranted`).
    case permissionNotGranted
    /// Authenticate while auth is disabled (`ErrGRPCAuthNotEnabled`).
    case authNotEnabled
    /// The token is unknown, expired or forged (`ErrGRPCInvalidAuthToken`).
    case invalidAuthToken
    /// A change that would lock the administrator out (`ErrGRPCInvalidAuthMgmt`).
    case invalidAuthManagement
    /// The credentials predate an auth change (`ErrGRPCAuthOldRevision`); clients authenticate again.
    case authOldRevision

    /// The exact gRPC status message etcd returns for this error.
    public var message: String {
        switch self {
        case .emptyKey: return "etcdserver: key is not provided"
        case .keyNotFound: return "etcdserver: key not found"
        case .valueProvided: return "etcdserver: value is provided"
        case .leaseProvided: return "etcdserver: lease is provided"
        case .tooManyOperations: return "etcdserver: too many operations in txn request"
        case .duplicateKey: return "etcdserver: duplicate key given in txn request"
        case .compacted: return "etcdserver: mvcc: required revision has been compacted"
        case .futureRevision: return "etcdserver: mvcc: required revision is a future revision"
        case .leaseNotFound: return "etcdserver: requested lease not found"
        case .leaseExists: return "etcdserver: lease already exists"
        case .leaseTTLTooLarge: return "etcdserver: too large lease TTL"
        case .requestTooLarge: return "etcdserver: request is too large"
        case .noSpace: return "etcdserver: mvcc: database space exceeded"
        case .sessionExpired: return "etcdserver: session expired"
        case .sessionRequestForgotten: return "etcdserver: session request already acknowledged"
        case .rootUserNotExist: return "etcdserver: root user does not exist"
        case .rootRoleNotExist: return "etcdserver: root user does not have root role"
        case .userAlreadyExists: return "etcdserver: user name already exists"
        case .userEmpty: return "etcdserver: user name is empty"
        case .userNotFound: return "etcdserver: user name not found"
        case .roleAlreadyExists: return "etcdserver: role name already exists"
        case .roleNotFound: return "etcdserver: role name not found"
        case .roleEmpty: return "etcdserver: role name is empty"
        case .authFailed: return "etcdserver: authentication failed, invalid user ID or password"
        case .permissionNotGiven: return "etcdserver: permission not given"
        case .permissionDenied: return "etcdserver: permission denied"
        case .roleNotGranted: return "etcdserver: role is not granted to the user"
        case .permissionNotGranted: return "etcdserver: permission is not granted to the role"
        case .authNotEnabled: return "etcdserver: authentication is not enabled"
        case .invalidAuthToken: return "etcdserver: invalid auth token"
        case .invalidAuthManagement: return "etcdserver: invalid auth management"
        case .authOldRevision: return "etcdserver: revision of auth store is old"
        }
    }

    /// The message, as sent to clients.
    public var description: String { message }
}
