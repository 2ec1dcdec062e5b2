import Primitives

/// A key interval in etcd's `key`/`range_end` convention.
enum KeyRange: Hashable, Sendable {
    /// Exactly one key.
    case single([UInt8])
    /// Every key greater than or equal to the bound (`range_end == "\0"`).
    case from([UInt8])
    /// Keys in `[lower, upper)`; empty if `upper <= lower`.
    case interval([UInt8], [UInt8])

    /// Creates the interval etcd reads for `key` and `rangeEnd`.
    init(key: [UInt8], rangeEnd: [UInt8]) {
        if rangeEnd.isEmpty {
            self = .single(key)
        } else if rangeEnd.count == 1 && rangeEnd[0] == 0 {
            self = .from(key)
        } else {
            self = .interval(key, rangeEnd)
        }
    }

    /// The smallest key in the interval.
    var lowerBound: [UInt8] {
        switch self {
        case .single(let k), .from(let k), .interval(let k, _): return k
        }
    }

    /// Returns whether `key` lies in the interval.
    func contains(_ key: [UInt8]) -> Bool {
        switch self {
        case .single(let k): return k == key
        case .from(let k): return compareBytes(key, k) >= 0
        case .interval(let lo, let hi): return compareBytes(key, lo) >= 0 && compareBytes(key, hi) < 0
        }
    }

    /// Returns whether `key` is past the end of the interval (for a forward scan from the lower bound).
    func isPastEnd(_ key: [UInt8]) -> Bool {
        switch self {
        case .single(let k): return compareBytes(key, k) > 0
        case .from: return false
        case .interval(_, let hi): return compareBytes(key, hi) >= 0
        }
    }
}
