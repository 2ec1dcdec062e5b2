/// An error of the workflow library that is not a `StatehouseError`.
public struct WorkflowError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String

        /// An ID (of a run, queue item or consumer) that is empty or contains `/`.
        public static let invalidID = Code(name: "invalidID")
        /// A stored record could not be decoded.
        public static let malformedRecord = Code(name: "malformedRecord")

        public var description: String { name }
    }

    /// What went wrong.
    public var code: Code
    /// What happened, for people.
    public var message: String

    /// An error with `code` and `message`.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    /// Throws `invalidID` unless `id` is non-empty and has no `/`.
    static func checkID(_ id: String) throws {
        guard !id.isEmpty, !id.contains("/") else {
            throw WorkflowError(.invalidID, "\"\(id)\" is not an ID: it must be non-empty and contain no '/'")
        }
    }
}
