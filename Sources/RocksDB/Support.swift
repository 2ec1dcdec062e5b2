internal import Glibc

extension Array where Element == UInt8 {
    /// Calls `body` with a non-null `const char*` view of the bytes and their count.
    ///
    /// An empty array may have no storage; RocksDB still receives a valid pointer.
    func withCBytes<Result>(_ body: (UnsafePointer<CChar>, Int) throws -> Result) rethrows -> Result {
        try withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress, !buffer.isEmpty else {
                return try withUnsafePointer(to: CChar(0)) { try body($0, 0) }
            }
            return try base.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                try body($0, buffer.count)
            }
        }
    }

    /// Copies `count` bytes starting at `start` (which may be null when `count` is zero).
    init(copying start: UnsafePointer<CChar>?, count: Int) {
        self.init(UnsafeRawBufferPointer(start: start, count: count))
    }

    /// The smallest key greater than every key that begins with `self`,
    /// or `nil` if no such key exists (empty or all-`0xFF` prefix).
    var prefixUpperBound: [UInt8]? {
        var bound = self
        while let last = bound.popLast() {
            if last != 0xFF {
                bound.append(last + 1)
                return bound
            }
        }
        return nil
    }
}

/// A reader–writer lock built on `pthread_rwlock_t`.
///
/// The use of @unchecked Sendable is safe because the lock state lives in a
/// heap allocation that is only touched through the pthread functions, which
/// are designed to be called concurrently from any thread.
final class ReadWriteLock: @unchecked Sendable {
    private let rwlock: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        rwlock = .allocate(capacity: 1)
        rwlock.initialize(to: pthread_rwlock_t())
        let status = pthread_rwlock_init(rwlock, nil)
        precondition(status == 0, "pthread_rwlock_init failed: \(status)")
    }

    deinit {
        pthread_rwlock_destroy(rwlock)
        rwlock.deallocate()
    }

    func withReadLock<Result>(_ body: () throws -> Result) rethrows -> Result {
        pthread_rwlock_rdlock(rwlock)
        defer { pthread_rwlock_unlock(rwlock) }
        return try body()
    }

    func withWriteLock<Result>(_ body: () throws -> Result) rethrows -> Result {
        pthread_rwlock_wrlock(rwlock)
        defer { pthread_rwlock_unlock(rwlock) }
        return try body()
    }
}
