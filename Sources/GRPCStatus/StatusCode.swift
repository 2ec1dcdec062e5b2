/// A gRPC status code, with the numeric values of the gRPC specification.
public enum StatusCode: Int, Hashable, Sendable, CaseIterable {
    /// Not an error.
    case ok = 0
    /// The operation was cancelled.
    case cancelled = 1
    /// Unknown error.
    case unknown = 2
    /// The client specified an invalid argument.
    case invalidArgument = 3
    /// The deadline expired.
    case deadlineExceeded = 4
    /// An entity was not found.
    case notFound = 5
    /// An entity already exists.
    case alreadyExists = 6
    /// The caller lacks permission.
    case permissionDenied = 7
    /// A resource was exhausted.
    case resourceExhausted = 8
    /// The system is not in a state required for the operation.
    case failedPrecondition = 9
    /// The operation was aborted.
    case aborted = 10
    /// The operation was attempted past the valid range.
    case outOfRange = 11
    /// The operation is not implemented.
    case unimplemented = 12
    /// Internal error.
    case `internal` = 13
    /// The service is unavailable.
    case unavailable = 14
    /// Unrecoverable data loss.
    case dataLoss = 15
    /// The request lacks valid authentication.
    case unauthenticated = 16
}
