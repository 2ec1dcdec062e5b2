/// A single integer register with reads and writes, starting at `initialValue`.
public struct RegisterModel: LinearizabilityModel {
    /// A register request.
    public enum Input: Hashable, Sendable {
        /// Reads the register; answered with `Output.value(_:)`.
        case read
        /// Writes the register; answered with `Output.ok`.
        case write(Int)
    }

    /// A register response.
    public enum Output: Hashable, Sendable {
        /// The value read.
        case value(Int)
        /// A write completed.
        case ok
    }

    /// The value before any write.
    public var initialValue: Int

    /// Creates a register model.
    public init(initialValue: Int = 0) {
        self.initialValue = initialValue
    }

    /// The initial value.
    public func initialState(for partitionKey: Int) -> Int { initialValue }

    /// Reads must return the current value; writes replace it.
    public func step(_ state: Int, _ input: Input, _ output: Output) -> Int? {
        switch (input, output) {
        case (.read, .value(let value)): return value == state ? state : nil
        case (.write(let value), .ok): return value
        default: return nil
        }
    }

    /// Reads change nothing; writes replace the value.
    public func stepIgnoringOutput(_ state: Int, _ input: Input) -> Int? {
        if case .write(let value) = input { return value }
        return state
    }
}
