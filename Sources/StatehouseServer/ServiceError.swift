import EtcdMapping
import GRPCStatus
import ReplicatedMember
import StateMachine

/// An error a call ends with: a gRPC status code and etcd's exact message (etcd's clients match
/// on the message text).
public struct ServiceError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The gRPC status code.
    public var code: StatusCode
    /// The message sent as `grpc-message`.
    public var message: String

    /// Creates an error.
    public init(_ code: StatusCode, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The error a member reported.
    public init(_ error: MemberError) { self.init(error.code, error.message) }

    /// The error the state machine reported.
    public init(_ error: StateError) { self.init(error.code, error.message) }

    public var description: String { "\(code) (\(code.rawValue)): \(message)" }

    // etcd's errors that come from the server rather than the state machine (rpctypes).
    static let noLeader = ServiceError(.unavailable, "etcdserver: no leader")
    static let leaderChanged = ServiceError(.unavailable, "etcdserver: leader changed")
    static let memberNotFound = ServiceError(.notFound, "etcdserver: member not found")
    static let peerURLExists = ServiceError(.failedPrecondition, "etcdserver: Peer URLs already exists")
    static let memberExists = ServiceError(.failedPrecondition, "etcdserver: member ID already exist")
    static let memberNotLearner = ServiceError(.failedPrecondition, "etcdserver: can only promote a learner member")
    static let tooManyLearners = ServiceError(.failedPrecondition, "etcdserver: too many learner members in cluster")
    static let unhealthyCluster = ServiceError(.unavailable, "etcdserver: unhealthy cluster")
    static let noSpace = ServiceError(StateError.noSpace)
    static let watchCanceled = ServiceError(.cancelled, "etcdserver: watch canceled")
}
