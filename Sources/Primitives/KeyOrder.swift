/// Key order and key ranges, in etcd's conventions: keys are byte strings compared as unsigned
/// bytes, and a range is `[key, rangeEnd)`.

/// Compares two byte strings lexicographically (unsigned bytes, a prefix before its extensions).
///
/// - Returns: A negative number, zero or a positive number.
@inlinable
public func compareBytes(_ a: [UInt8], _ b: [UInt8]) -> Int {
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            let n = Swift.min(pa.count, pb.count)
            var i = 0
            // Eight bytes at a time while they are equal (keys share long prefixes); read
            // big-endian, a word orders as its bytes do, so a differing word gives the same answer.
            let rawA = UnsafeRawBufferPointer(pa)
            let rawB = UnsafeRawBufferPointer(pb)
            while n - i >= 8 {
                let x = UInt64(bigEndian: rawA.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                let y = UInt64(bigEndian: rawB.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                if x != y { return x < y ? -1 : 1 }
                i += 8
            }
            while i < n {
                let x = pa[i]
                let y = pb[i]
                if x != y { return x < y ? -1 : 1 }
                i += 1
            }
            return pa.count - pb.count
        }
    }
}

/// The end of the range holding every key that starts with `prefix` (etcd's `GetPrefixRangeEnd`):
/// the prefix with its last byte below 0xFF incremented and the rest dropped, or `[0]` (every
/// key from the prefix on) when there is no such byte.
public func prefixEnd(_ prefix: [UInt8]) -> [UInt8] {
    var end = prefix
    while let last = end.last {
        if last < 0xFF {
            end[end.count - 1] = last + 1
            return end
        }
        end.removeLast()
    }
    return [0]
}
