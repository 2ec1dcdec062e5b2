/// What reads, writes and transactions need from a key space: a ``StatehouseClient`` (the
/// whole key space) or a ``KeyNamespace`` (the keys under one prefix).
///
/// The `Codable` reads and writes (``get(_:as:decoder:)``, ``put(_:encoding:lease:encoder:)``)
/// and the compare-and-swap loop (``update(_:as:maxAttempts:encoder:decoder:_:)``) are written
/// once over this protocol, so they work the same on both.
public protocol KeyValueStore: Sendable {
    /// Reads one key; nil if it does not exist.
    func get(_ key: some BytesConvertible, serializable: Bool) async throws -> KeyValue?

    /// Writes `value` under `key`, attached to `lease` if given.
    @discardableResult
    func put(
        _ key: some BytesConvertible, _ value: some BytesConvertible, lease: LeaseID?, prevKV: Bool
    ) async throws
        -> PutResult

    /// Sends `txn` (built with `Txn()`) as one transaction.
    @discardableResult
    func commit(_ txn: Txn) async throws -> TxnResult
}

extension StatehouseClient: KeyValueStore {
    /// Sends `txn` (built with `Txn()`) as one transaction; the same as building it with
    /// ``txn()`` and calling ``Txn/commit()``.
    @discardableResult
    public func commit(_ txn: Txn) async throws -> TxnResult {
        var bound = Txn(client: self)
        bound.request = txn.request
        return try await bound.commit()
    }
}
