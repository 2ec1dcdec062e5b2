import StateMachine

/// UTF-8 bytes of a string.
func b(_ s: String) -> [UInt8] { Array(s.utf8) }

/// The keys of a range answer, as strings.
func keys(_ kvs: [KeyValue]) -> [String] { kvs.map { String(decoding: $0.key, as: UTF8.self) } }

/// The values of a range answer, as strings.
func values(_ kvs: [KeyValue]) -> [String] { kvs.map { String(decoding: $0.value, as: UTF8.self) } }

extension StateStore {
    /// Puts a string key and value.
    @discardableResult
    mutating func set(_ key: String, _ value: String, lease: Int64 = 0) throws -> Applied<PutResponse> {
        try put(PutRequest(key: b(key), value: b(value), lease: lease))
    }

    /// Deletes a string key (or range).
    @discardableResult
    mutating func remove(_ key: String, _ end: String = "") throws -> Applied<DeleteRangeResponse> {
        try deleteRange(DeleteRangeRequest(key: b(key), rangeEnd: b(end)))
    }

    /// Reads a string key (or range).
    func get(_ key: String, _ end: String = "", revision: Int64 = 0) throws -> RangeResponse {
        try range(RangeRequest(key: b(key), rangeEnd: b(end), revision: revision))
    }

    /// The current value of a string key, if it exists.
    func value(of key: String) throws -> String? {
        try get(key).kvs.first.map { String(decoding: $0.value, as: UTF8.self) }
    }
}

/// An in-memory stand-in for the RocksDB backend: applies mutation batches, yields pairs in key order.
struct FakeBackend {
    private var storage: [[UInt8]: [UInt8]] = [:]

    mutating func write(_ mutations: [BackendMutation]) {
        for mutation in mutations {
            switch mutation {
            case .put(let key, let value): storage[key] = value
            case .delete(let key): storage[key] = nil
            }
        }
    }

    /// The pairs in byte order of the keys, as a RocksDB iterator yields them.
    var pairs: [([UInt8], [UInt8])] {
        storage.keys.sorted { $0.lexicographicallyPrecedes($1) }.map { ($0, storage[$0]!) }
    }
}

/// Compares two pair lists.
func samePairs(_ a: [([UInt8], [UInt8])], _ c: [([UInt8], [UInt8])]) -> Bool {
    a.count == c.count && zip(a, c).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
}

extension BackendLayout {
    /// A well-formed lease record (format 1, ID, TTL 10, no checkpoint), for corruption tests.
    static func encodeLeaseForTest(id: Int64) -> [UInt8] {
        var out: [UInt8] = [1]
        for v in [UInt64(bitPattern: id), 10, 0] {
            for shift in stride(from: 56, through: 0, by: -8) {
                out.append(UInt8(truncatingIfNeeded: v >> UInt64(shift)))
            }
        }
        return out
    }
}
