import Primitives

/// The keys under one prefix, used as a key space of their own: keys given to it are relative
/// to the prefix, and keys it returns have the prefix removed.
///
/// Services that share a cluster each take a namespace (`client.namespace("orders/")`) and
/// cannot read or overwrite each other's keys by accident.
///
/// ```swift
/// let orders = client.namespace("tenants/acme/orders/")
/// try await orders.put("1042", "paid")              // writes tenants/acme/orders/1042
/// let all = try await orders.get(.prefix(""))       // every key of the namespace, as "1042", …
/// ```
public struct KeyNamespace: KeyValueStore {
    /// The client the namespace's calls go through.
    public let client: StatehouseClient
    /// The prefix of every key in the namespace.
    public let prefix: [UInt8]

    /// The namespace of the keys under `prefix` on `client`.
    public init(client: StatehouseClient, prefix: some BytesConvertible) {
        self.client = client
        self.prefix = prefix.statehouseBytes
    }

    /// The full key of `key`.
    public func key(_ key: some BytesConvertible) -> [UInt8] { prefix + key.statehouseBytes }

    /// The namespace nested in this one under `prefix`.
    public func namespace(_ prefix: some BytesConvertible) -> KeyNamespace {
        KeyNamespace(client: client, prefix: key(prefix))
    }

    /// Reads the keys in `range` (relative to the namespace).
    public func get(_ range: KeyRange, options: GetOptions = GetOptions()) async throws -> GetResult {
        strip(try await client.get(map(range), options: options))
    }

    /// Reads one key; nil if it does not exist.
    public func get(_ key: some BytesConvertible, serializable: Bool = false) async throws -> KeyValue? {
        try await client.get(self.key(key), serializable: serializable).map(strip)
    }

    /// Writes `value` under `key`, attached to `lease` if given.
    @discardableResult
    public func put(
        _ key: some BytesConvertible, _ value: some BytesConvertible, lease: LeaseID? = nil, prevKV: Bool = false
    ) async throws -> PutResult {
        strip(try await client.put(self.key(key), value, lease: lease, prevKV: prevKV))
    }

    /// Deletes the keys in `range` (relative to the namespace).
    @discardableResult
    public func delete(_ range: KeyRange, prevKV: Bool = false) async throws -> DeleteResult {
        strip(try await client.delete(map(range), prevKV: prevKV))
    }

    /// Sends `txn` (built with `Txn()`, keys relative to the namespace) as one transaction.
    @discardableResult
    public func commit(_ txn: Txn) async throws -> TxnResult {
        strip(try await client.commit(Txn(request: map(txn.request))))
    }

    /// The changes to the keys in `range` (relative to the namespace); see
    /// ``StatehouseClient/watch(_:options:)``.
    public func watch(_ range: KeyRange, options: WatchOptions = WatchOptions()) -> NamespacedWatchSequence {
        NamespacedWatchSequence(base: client.watch(map(range), options: options), namespace: self)
    }

    // MARK: - Mapping keys in and out

    /// `range` moved under the prefix. A range to the end of the key space (`.from`, `.all`)
    /// ends at the end of the namespace.
    func map(_ range: KeyRange) -> KeyRange {
        let end: [UInt8]
        switch range.rangeEnd {
        case []: end = []
        case [0]: end = prefixEnd(prefix)
        default: end = prefix + range.rangeEnd
        }
        let start = range.key == [0] && range.rangeEnd == [0] ? prefix : prefix + range.key
        return KeyRange(key: start, rangeEnd: end)
    }

    func map(_ request: Txn.Request) -> Txn.Request {
        var mapped = Txn.Request()
        mapped.compares = request.compares.map {
            Compare(target: Compare.Target(field: $0.target.field, range: map($0.target.range)), op: $0.op, operand: $0.operand)
        }
        mapped.success = request.success.map(map)
        mapped.failure = request.failure.map(map)
        return mapped
    }

    func map(_ operation: Operation) -> Operation {
        switch operation.kind {
        case .get(let range, let options): Operation(kind: .get(map(range), options))
        case .put(let key, let value, let lease, let prevKV):
            Operation(kind: .put(key: prefix + key, value: value, lease: lease, prevKV: prevKV))
        case .delete(let range, let prevKV): Operation(kind: .delete(map(range), prevKV: prevKV))
        case .txn(let request): Operation(kind: .txn(map(request)))
        }
    }

    func strip(_ kv: KeyValue) -> KeyValue {
        var stripped = kv
        if kv.key.starts(with: prefix) { stripped.key = Array(kv.key.dropFirst(prefix.count)) }
        return stripped
    }

    func strip(_ result: GetResult) -> GetResult {
        var stripped = result
        stripped.kvs = result.kvs.map(strip)
        return stripped
    }

    func strip(_ result: PutResult) -> PutResult {
        var stripped = result
        stripped.previous = result.previous.map(strip)
        return stripped
    }

    func strip(_ result: DeleteResult) -> DeleteResult {
        var stripped = result
        stripped.previous = result.previous.map(strip)
        return stripped
    }

    func strip(_ result: TxnResult) -> TxnResult {
        var stripped = result
        stripped.results = result.results.map { operation in
            switch operation {
            case .get(let get): .get(strip(get))
            case .put(let put): .put(strip(put))
            case .delete(let delete): .delete(strip(delete))
            case .txn(let txn): .txn(strip(txn))
            }
        }
        return stripped
    }
}

extension Txn {
    /// A transaction to commit through a client or namespace, with `request` as its content.
    init(request: Request) {
        self.init()
        self.request = request
    }
}

extension StatehouseClient {
    /// The keys under `prefix`, as a key space of their own; see ``KeyNamespace``.
    public func namespace(_ prefix: some BytesConvertible) -> KeyNamespace {
        KeyNamespace(client: self, prefix: prefix)
    }
}

/// The changes to keys of a ``KeyNamespace``, with the namespace's prefix removed from their keys.
public struct NamespacedWatchSequence: AsyncSequence, Sendable {
    public typealias Element = WatchEvent
    let base: WatchSequence
    let namespace: KeyNamespace

    public func makeAsyncIterator() -> Iterator { Iterator(base: base.makeAsyncIterator(), namespace: namespace) }

    /// Iterates the events of a ``NamespacedWatchSequence``.
    public struct Iterator: AsyncIteratorProtocol {
        var base: WatchSequence.Iterator
        let namespace: KeyNamespace

        public mutating func next() async throws -> WatchEvent? {
            guard var event = try await base.next() else { return nil }
            event.kv = namespace.strip(event.kv)
            event.previous = event.previous.map(namespace.strip)
            return event
        }
    }
}
