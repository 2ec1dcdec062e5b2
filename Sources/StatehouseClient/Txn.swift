import EtcdWire
import Foundation

/// One comparison of a transaction's guard: a key's value, version, create or mod revision, or
/// lease, compared with a constant.
///
/// Written with operators: `.value("k") == "v"`, `.version("k") == 0`,
/// `.modRevision("k") < 42`, `.createRevision("lock") == token`, `.lease("k") != 0`.
public struct Compare: Sendable, Hashable {
    /// What is compared.
    public struct Target: Sendable, Hashable {
        enum Field: Sendable, Hashable { case value, version, createRevision, modRevision, lease }
        let field: Field
        let range: KeyRange

        /// The key's value.
        public static func value(_ key: some BytesConvertible) -> Target { Target(field: .value, range: .key(key)) }
        /// The key's version (0 if the key does not exist).
        public static func version(_ key: some BytesConvertible) -> Target { Target(field: .version, range: .key(key)) }
        /// The key's create revision (0 if the key does not exist).
        public static func createRevision(_ key: some BytesConvertible) -> Target {
            Target(field: .createRevision, range: .key(key))
        }
        /// The key's mod revision (0 if the key does not exist).
        public static func modRevision(_ key: some BytesConvertible) -> Target {
            Target(field: .modRevision, range: .key(key))
        }
        /// The key's lease (0 if none).
        public static func lease(_ key: some BytesConvertible) -> Target { Target(field: .lease, range: .key(key)) }

        /// The same field of every key in `range` (each must satisfy the comparison).
        public func over(_ range: KeyRange) -> Target { Target(field: field, range: range) }
    }

    enum Operator: Sendable, Hashable { case equal, notEqual, less, greater }
    enum Operand: Sendable, Hashable {
        case number(Int64)
        case bytes([UInt8])
    }

    let target: Target
    let op: Operator
    let operand: Operand

    var wire: Etcdserverpb_Compare {
        var compare = Etcdserverpb_Compare()
        compare.key = Data(target.range.key)
        compare.rangeEnd = Data(target.range.rangeEnd)
        switch op {
        case .equal: compare.result = .equal
        case .notEqual: compare.result = .notEqual
        case .less: compare.result = .less
        case .greater: compare.result = .greater
        }
        let number: Int64
        switch operand {
        case .number(let value): number = value
        case .bytes: number = 0
        }
        switch target.field {
        case .value:
            compare.target = .value
            if case .bytes(let bytes) = operand { compare.value = Data(bytes) }
        case .version:
            compare.target = .version
            compare.version = number
        case .createRevision:
            compare.target = .create
            compare.createRevision = number
        case .modRevision:
            compare.target = .mod
            compare.modRevision = number
        case .lease:
            compare.target = .lease
            compare.lease = number
        }
        return compare
    }
}

extension Compare.Target {
    public static func == (target: Self, value: Int64) -> Compare { Compare(target: target, op: .equal, operand: .number(value)) }
    public static func != (target: Self, value: Int64) -> Compare {
        Compare(target: target, op: .notEqual, operand: .number(value))
    }
    public static func < (target: Self, value: Int64) -> Compare { Compare(target: target, op: .less, operand: .number(value)) }
    public static func > (target: Self, value: Int64) -> Compare { Compare(target: target, op: .greater, operand: .number(value)) }
    public static func == (target: Self, value: some BytesConvertible) -> Compare {
        Compare(target: target, op: .equal, operand: .bytes(value.statehouseBytes))
    }
    public static func != (target: Self, value: some BytesConvertible) -> Compare {
        Compare(target: target, op: .notEqual, operand: .bytes(value.statehouseBytes))
    }
    public static func < (target: Self, value: some BytesConvertible) -> Compare {
        Compare(target: target, op: .less, operand: .bytes(value.statehouseBytes))
    }
    public static func > (target: Self, value: some BytesConvertible) -> Compare {
        Compare(target: target, op: .greater, operand: .bytes(value.statehouseBytes))
    }
}

/// One operation of a transaction branch.
public struct Operation: Sendable {
    indirect enum Kind: Sendable {
        case get(KeyRange, GetOptions)
        case put(key: [UInt8], value: [UInt8], lease: Int64, prevKV: Bool)
        case delete(KeyRange, prevKV: Bool)
        case txn(Txn.Request)
    }

    let kind: Kind

    /// Reads `range`.
    public static func get(_ range: KeyRange, options: GetOptions = GetOptions()) -> Operation {
        Operation(kind: .get(range, options))
    }
    /// Reads one key.
    public static func get(_ key: some BytesConvertible) -> Operation { Operation(kind: .get(.key(key), GetOptions())) }
    /// Writes `value` under `key`.
    public static func put(
        _ key: some BytesConvertible, _ value: some BytesConvertible, lease: LeaseID? = nil, prevKV: Bool = false
    ) -> Operation {
        Operation(kind: .put(key: key.statehouseBytes, value: value.statehouseBytes, lease: lease?.rawValue ?? 0, prevKV: prevKV))
    }
    /// Deletes the keys in `range`.
    public static func delete(_ range: KeyRange, prevKV: Bool = false) -> Operation {
        Operation(kind: .delete(range, prevKV: prevKV))
    }
    /// Deletes one key.
    public static func delete(_ key: some BytesConvertible) -> Operation { Operation(kind: .delete(.key(key), prevKV: false)) }
    /// A nested transaction.
    public static func txn(_ txn: Txn) -> Operation { Operation(kind: .txn(txn.request)) }

    var isReadOnly: Bool {
        switch kind {
        case .get: true
        case .put, .delete: false
        case .txn(let request): request.isReadOnly
        }
    }

    var wire: Etcdserverpb_RequestOp {
        var op = Etcdserverpb_RequestOp()
        switch kind {
        case .get(let range, let options): op.requestRange = options.request(for: range)
        case .put(let key, let value, let lease, let prevKV):
            op.requestPut = putRequest(key: key, value: value, lease: lease, prevKV: prevKV)
        case .delete(let range, let prevKV): op.requestDeleteRange = deleteRequest(range: range, prevKV: prevKV)
        case .txn(let request): op.requestTxn = request.wire
        }
        return op
    }
}

/// A transaction: if every comparison holds, the `then` operations run, otherwise the `else`
/// operations, all in one revision.
///
/// ```swift
/// let result = try await client.txn()
///     .when(.version("config") == 0)
///     .then(.put("config", "v1"))
///     .else(.get("config"))
///     .commit()
/// ```
public struct Txn: Sendable {
    struct Request: Sendable {
        var compares: [Compare] = []
        var success: [Operation] = []
        var failure: [Operation] = []

        var isReadOnly: Bool { success.allSatisfy(\.isReadOnly) && failure.allSatisfy(\.isReadOnly) }

        var wire: Etcdserverpb_TxnRequest {
            var request = Etcdserverpb_TxnRequest()
            request.compare = compares.map(\.wire)
            request.success = success.map(\.wire)
            request.failure = failure.map(\.wire)
            return request
        }
    }

    let client: StatehouseClient?
    var request = Request()

    /// A transaction to nest in another one with ``Operation/txn(_:)``.
    public init() {
        client = nil
    }

    init(client: StatehouseClient) {
        self.client = client
    }

    /// Adds comparisons to the guard (all must hold).
    public func when(_ compares: Compare...) -> Txn { when(compares) }
    /// Adds comparisons to the guard (all must hold).
    public func when(_ compares: [Compare]) -> Txn {
        var copy = self
        copy.request.compares += compares
        return copy
    }
    /// Adds operations to run when the guard holds.
    public func then(_ operations: Operation...) -> Txn { then(operations) }
    /// Adds operations to run when the guard holds.
    public func then(_ operations: [Operation]) -> Txn {
        var copy = self
        copy.request.success += operations
        return copy
    }
    /// Adds operations to run when the guard fails.
    public func `else`(_ operations: Operation...) -> Txn { self.else(operations) }
    /// Adds operations to run when the guard fails.
    public func `else`(_ operations: [Operation]) -> Txn {
        var copy = self
        copy.request.failure += operations
        return copy
    }

    /// Sends the transaction. A read-only transaction is retried like a read; one that writes
    /// goes through the client's write session, as ``StatehouseClient/put(_:_:lease:prevKV:)``.
    @discardableResult
    public func commit() async throws -> TxnResult {
        guard let client else {
            throw StatehouseError(.invalidArgument, "a nested transaction is committed by its parent")
        }
        let response: Etcdserverpb_TxnResponse =
            request.isReadOnly
            ? try await client.unary(Methods.txn, request.wire, policy: .idempotent)
            : try await client.sessionWrite(Methods.txn, request.wire)
        return TxnResult(response)
    }
}

/// What a transaction did.
public struct TxnResult: Sendable {
    /// The result of one operation.
    public enum OperationResult: Sendable {
        case get(GetResult)
        case put(PutResult)
        case delete(DeleteResult)
        case txn(TxnResult)

        /// The read's result, if this was a read.
        public var get: GetResult? {
            if case .get(let result) = self { return result }
            return nil
        }
    }

    public var header: ResponseHeader
    /// Whether the guard held (so the `then` branch ran).
    public var succeeded: Bool
    /// The results of the branch that ran, in order.
    public var results: [OperationResult]

    init(_ response: Etcdserverpb_TxnResponse) {
        header = ResponseHeader(response.header)
        succeeded = response.succeeded
        results = response.responses.compactMap { op in
            switch op.response {
            case .responseRange(let range): .get(GetResult(range))
            case .responsePut(let put): .put(PutResult(put))
            case .responseDeleteRange(let delete): .delete(DeleteResult(delete))
            case .responseTxn(let txn): .txn(TxnResult(txn))
            case nil: nil
            }
        }
    }
}

extension StatehouseClient {
    /// Starts a transaction; see ``Txn``.
    public func txn() -> Txn { Txn(client: self) }
}
