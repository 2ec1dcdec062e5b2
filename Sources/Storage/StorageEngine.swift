import Primitives

/// A key and its value, as returned by ``StorageEngine`` scans.
public struct StorageRecord: Sendable, Hashable {
    /// The key.
    public var key: [UInt8]
    /// The value stored for ``key``.
    public var value: [UInt8]

    /// Creates a record.
    public init(key: [UInt8], value: [UInt8]) {
        self.key = key
        self.value = value
    }
}

/// An ordered list of writes that a ``StorageEngine`` applies atomically: after
/// ``StorageEngine/write(_:sync:)`` returns, readers see all of them; if it throws, or a crash
/// interrupts it, they see none of them.
///
/// Operations take effect in the order they were added, so a later `put` overrides an earlier
/// `delete` of the same key and vice versa. A batch is a plain value: the deterministic core
/// builds it without touching any engine.
public struct StorageBatch: Sendable, Hashable {
    /// One write.
    public enum Operation: Sendable, Hashable {
        /// Stores `value` for `key`, replacing any existing value.
        case put(key: [UInt8], value: [UInt8])
        /// Removes the value stored for `key`, if any.
        case delete(key: [UInt8])
        /// Removes every key in `start..<end` (bytewise order).
        case deleteRange(from: [UInt8], to: [UInt8])
    }

    /// The operations, in the order they take effect.
    public private(set) var operations: [Operation] = []

    /// Creates an empty batch.
    public init() {}

    /// Creates a batch holding `operations`.
    public init(_ operations: [Operation]) {
        for operation in operations { append(operation) }
    }

    /// Whether the batch holds no operation.
    public var isEmpty: Bool { operations.isEmpty }

    /// The number of operations.
    public var count: Int { operations.count }

    /// Adds storing `value` for `key`.
    public mutating func put(_ key: [UInt8], _ value: [UInt8]) {
        operations.append(.put(key: key, value: value))
    }

    /// Adds removing the value stored for `key`.
    public mutating func delete(_ key: [UInt8]) {
        operations.append(.delete(key: key))
    }

    /// Adds removing every key in `start..<end`.
    ///
    /// Does nothing if `end` does not sort after `start`, since that range is empty.
    public mutating func deleteRange(from start: [UInt8], to end: [UInt8]) {
        guard start.lexicographicallyPrecedes(end) else { return }
        operations.append(.deleteRange(from: start, to: end))
    }

    /// Adds one operation (an empty `deleteRange` is dropped).
    public mutating func append(_ operation: Operation) {
        switch operation {
        case .put(let key, let value): put(key, value)
        case .delete(let key): delete(key)
        case .deleteRange(let start, let end): deleteRange(from: start, to: end)
        }
    }

    /// Adds every operation of `other` after this batch's own.
    public mutating func append(contentsOf other: StorageBatch) {
        operations.append(contentsOf: other.operations)
    }
}

/// Why a storage operation failed.
///
/// Every error thrown by a ``StorageEngine``, ``RaftLogStore`` or ``AppliedIndex`` is a
/// `StorageError`: the engine's own message (for example RocksDB's status string) is carried
/// unchanged in ``message``.
public struct StorageError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The broad cause.
    public enum Kind: String, Sendable, Hashable {
        /// The engine itself failed (I/O error, closed database, lock held, ...).
        case engine
        /// A stored record cannot be decoded or contradicts the key it is stored under.
        case corruption
        /// The stored log is not contiguous: an entry is missing.
        case missingEntry
        /// The caller asked for something that would break the store's invariants.
        case invalidOperation
    }

    /// The broad cause.
    public var kind: Kind
    /// A human-readable explanation, including the engine's message where there is one.
    public var message: String
    /// The key the problem was found at, if any.
    public var key: [UInt8]?

    /// Creates an error.
    public init(_ kind: Kind, _ message: String, key: [UInt8]? = nil) {
        self.kind = kind
        self.message = message
        self.key = key
    }

    /// The kind, the message and (when there is one) the key in readable form.
    public var description: String {
        if let key {
            "storage error (\(kind.rawValue)) at key \(Self.describe(key: key)): \(message)"
        } else {
            "storage error (\(kind.rawValue)): \(message)"
        }
    }

    /// Renders a key for people: Raft entry keys as `r/e/<index>`, other printable ASCII as is, and
    /// every other byte as `\xNN`.
    public static func describe(key: [UInt8]) -> String {
        if let index = RaftLogStore.Keys.index(fromEntryKey: key) {
            return "r/e/\(index)"
        }
        var text = ""
        for byte in key {
            if byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "\\") {
                text.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = String(byte, radix: 16)
                text += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return text
    }
}

/// The small key-value interface a replicated member writes its log, hard state, snapshot,
/// state machine and applied index through.
///
/// Keys and values are arbitrary byte strings, ordered bytewise (unsigned, lexicographic).
/// Implementations: ``RocksDBEngine`` for servers and ``MemoryEngine`` for the simulator.
/// Every method throws only ``StorageError``.
public protocol StorageEngine: AnyObject {
    /// Returns the value stored for `key`, or `nil` if there is none.
    func get(_ key: [UInt8]) throws(StorageError) -> [UInt8]?

    /// Applies every operation of `batch` atomically, in order.
    ///
    /// - Parameter sync: Whether the batch (and every earlier write) must be durable, surviving
    ///   a machine crash, when this returns. An unsynced write is visible at once but may be lost
    ///   in a crash; a later synced write makes it durable too.
    func write(_ batch: StorageBatch, sync: Bool) throws(StorageError)

    /// Returns the records with a key in `start..<end` (`end == nil`: no upper limit), in
    /// ascending key order, or descending if `reverse`, at most `limit` of them (`nil`: all).
    func scan(
        from start: [UInt8], to end: [UInt8]?, limit: Int?, reverse: Bool
    ) throws(StorageError) -> [StorageRecord]
}

extension StorageEngine {
    /// Returns the records with a key in `start..<end` in ascending key order, at most `limit`.
    public func scan(
        from start: [UInt8], to end: [UInt8]?, limit: Int? = nil
    ) throws(StorageError) -> [StorageRecord] {
        try scan(from: start, to: end, limit: limit, reverse: false)
    }

    /// Returns the records whose key begins with `prefix`, in ascending key order (descending if
    /// `reverse`), at most `limit` of them.
    public func scan(
        prefix: [UInt8], limit: Int? = nil, reverse: Bool = false
    ) throws(StorageError) -> [StorageRecord] {
        try scan(from: prefix, to: keyAfterPrefix(prefix), limit: limit, reverse: reverse)
    }
}

/// The smallest key greater than every key that begins with `prefix`, or `nil` if there is none
/// (an empty or all-`0xFF` prefix).
public func keyAfterPrefix(_ prefix: [UInt8]) -> [UInt8]? {
    // etcd's prefix end, whose `[0]` ("no end") is never the end of a real prefix.
    let end = prefixEnd(prefix)
    return end == [0] ? nil : end
}
