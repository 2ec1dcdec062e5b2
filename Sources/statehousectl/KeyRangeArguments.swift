import ArgumentParser
import StatehouseClient

/// The client's sort order, named apart from Foundation's `SortOrder`.
typealias KeySortOrder = SortOrder

/// The client's transaction operation, named apart from Foundation's `Operation`.
typealias TxnOperation = Operation

/// The keys a command covers: `KEY [RANGE_END]`, `--prefix` or `--from-key`, as etcdctl takes
/// them.
struct KeyRangeArguments: ParsableArguments {
    @Argument(help: "The key (with --prefix: the prefix; with --from-key: the first key).")
    var key: String

    @Argument(help: "One past the last key of the range (exclusive); not with --prefix or --from-key.")
    var rangeEnd: String?

    @Flag(help: "Every key that starts with KEY (every key if KEY is \"\").")
    var prefix = false

    @Flag(help: "Every key greater than or equal to KEY.")
    var fromKey = false

    mutating func validate() throws {
        _ = try range
    }

    /// The range these arguments describe.
    ///
    /// - Throws: `ValidationError` for a combination etcdctl refuses.
    var range: KeyRange {
        get throws { try Self.range(key: key, end: rangeEnd, prefix: prefix, fromKey: fromKey) }
    }

    /// The range `key`, `end`, `--prefix` and `--from-key` describe.
    ///
    /// - Throws: `ValidationError` for a combination etcdctl refuses.
    static func range(key: String, end: String?, prefix: Bool, fromKey: Bool) throws -> KeyRange {
        if prefix, fromKey { throw ValidationError("--prefix and --from-key cannot be combined") }
        if end != nil, prefix || fromKey {
            throw ValidationError("RANGE_END cannot be combined with --\(prefix ? "prefix" : "from-key")")
        }
        if prefix { return .prefix(key) }
        if fromKey { return key.isEmpty ? .all : .from(key) }
        if key.isEmpty { throw ValidationError("the key is empty (use --prefix \"\" for every key)") }
        if let end { return KeyRange(key: key, end: end) }
        return .key(key)
    }
}
