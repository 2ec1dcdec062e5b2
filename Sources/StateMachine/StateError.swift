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
        }
    }

    /// The message, as sent to clients.
    public var description: String { message }
}
