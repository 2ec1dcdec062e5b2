/// An error of the lock and election recipes, with the message etcd's services send.
///
/// etcd returns these as plain Go errors, which its gRPC server sends with code `Unknown` and the
/// error text as message; clients such as jetcd recognise them by the message alone.
public enum RecipeError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A proclamation by a caller that does not hold the leader key it names
    /// (etcd's `concurrency.ErrElectionNotLeader`).
    case notLeader
    /// An election with no candidate (etcd's `concurrency.ErrElectionNoLeader`).
    case noLeader
    /// The caller's own key vanished while it waited its turn, although its lease still exists:
    /// someone deleted it, so the caller does not hold the lock or leadership
    /// (etcd 3.5's `concurrency.ErrSessionExpired`, which etcd 3.4 lacks).
    case sessionExpired
    /// A Proclaim or Resign request without a leader key (etcd's `v3election.ErrMissingLeaderKey`).
    case missingLeaderKey

    /// The exact message etcd sends.
    public var message: String {
        switch self {
        case .notLeader: "election: not leader"
        case .noLeader: "election: no leader"
        case .sessionExpired: "mutex: session is expired"
        case .missingLeaderKey: "\"leader\" field must be provided"
        }
    }

    /// The message, as sent to clients.
    public var description: String { message }
}
