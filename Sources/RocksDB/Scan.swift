extension Database {
    /// A key and its value, as returned by the `scan` methods.
    public struct Entry: Hashable, Sendable {
        /// The key.
        public var key: [UInt8]
        /// The value stored for ``key``.
        public var value: [UInt8]

        /// Creates an entry.
        public init(key: [UInt8], value: [UInt8]) {
            self.key = key
            self.value = value
        }
    }

    /// Calls `body` for each entry with a key in `start..<end`, in ascending
    /// key order or, if `reverse` is `true`, descending order, until `body`
    /// returns `false`.
    ///
    /// - Parameters:
    ///   - start: The smallest key to visit.
    ///   - end: The key after the largest key to visit, or `nil` for no limit.
    ///   - reverse: Whether to visit keys from the largest down.
    ///   - snapshot: A snapshot of this database to read, or `nil` for the
    ///     current state.
    ///   - body: Receives each key and value; returns whether to continue.
    /// - Throws: ``RocksDBError`` if reading fails, or what `body` throws.
    public func scan(
        from start: [UInt8] = [],
        to end: [UInt8]? = nil,
        reverse: Bool = false,
        snapshot: Snapshot? = nil,
        _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Bool
    ) throws {
        if let end, !start.lexicographicallyPrecedes(end) { return }
        let iterator = try makeIterator(snapshot: snapshot, lowerBound: start, upperBound: end)
        if reverse { iterator.seekToLast() } else { iterator.seekToFirst() }
        while iterator.isValid {
            guard try body(iterator.key, iterator.value) else { return }
            if reverse { iterator.previous() } else { iterator.next() }
        }
        try iterator.checkError()
    }

    /// Returns the entries with a key in `start..<end`, in ascending key order
    /// or, if `reverse` is `true`, descending order.
    ///
    /// - Parameters:
    ///   - start: The smallest key to return.
    ///   - end: The key after the largest key to return, or `nil` for no limit.
    ///   - reverse: Whether to return keys from the largest down.
    ///   - limit: The maximum number of entries to return, or `nil` for all.
    ///   - snapshot: A snapshot of this database to read, or `nil` for the
    ///     current state.
    public func scan(
        from start: [UInt8] = [],
        to end: [UInt8]? = nil,
        reverse: Bool = false,
        limit: Int? = nil,
        snapshot: Snapshot? = nil
    ) throws -> [Entry] {
        let limit = limit ?? .max
        precondition(limit >= 0, "negative scan limit")
        var entries: [Entry] = []
        guard limit > 0 else { return entries }
        try scan(from: start, to: end, reverse: reverse, snapshot: snapshot) { key, value in
            entries.append(Entry(key: key, value: value))
            return entries.count < limit
        }
        return entries
    }

    /// Calls `body` for each entry whose key begins with `prefix`, in
    /// ascending key order or, if `reverse` is `true`, descending order, until
    /// `body` returns `false`.
    public func scan(
        prefix: [UInt8],
        reverse: Bool = false,
        snapshot: Snapshot? = nil,
        _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Bool
    ) throws {
        try scan(
            from: prefix, to: prefix.prefixUpperBound, reverse: reverse, snapshot: snapshot, body)
    }

    /// Returns the entries whose key begins with `prefix`, in ascending key
    /// order or, if `reverse` is `true`, descending order.
    ///
    /// - Parameter limit: The maximum number of entries to return, or `nil` for all.
    public func scan(
        prefix: [UInt8],
        reverse: Bool = false,
        limit: Int? = nil,
        snapshot: Snapshot? = nil
    ) throws -> [Entry] {
        try scan(
            from: prefix, to: prefix.prefixUpperBound, reverse: reverse, limit: limit,
            snapshot: snapshot)
    }
}
