internal import CRocksDB

extension Database {
    /// A cursor over the keys of a ``Database`` (or of a ``Snapshot``) in
    /// bytewise order.
    ///
    /// An iterator reads a consistent view: the snapshot it was created with,
    /// or an implicit one taken at creation. It starts out positioned at no
    /// entry; call a seek method first. While ``isValid`` is `true`,
    /// ``key`` and ``value`` describe the current entry.
    ///
    /// When ``isValid`` becomes `false`, either iteration reached the end or
    /// an error occurred; call ``checkError()`` to tell them apart.
    ///
    /// ```swift
    /// let iterator = try database.makeIterator()
    /// iterator.seek(to: start)
    /// while iterator.isValid {
    ///     process(iterator.key, iterator.value)
    ///     iterator.next()
    /// }
    /// try iterator.checkError()
    /// ```
    ///
    /// An iterator is not thread-safe; use it from one thread at a time. It
    /// keeps its database (and snapshot) alive and prevents
    /// ``Database/close()`` until it is released.
    public final class Iterator {
        private let database: Database
        /// Keeps the snapshot alive while the iterator reads from it.
        private let snapshot: Snapshot?
        private let handle: OpaquePointer
        private let readOptions: OpaquePointer
        /// Owns the bound bytes that `readOptions` points into.
        private let boundStorage: UnsafeMutableRawBufferPointer

        /// Call only while holding `database`'s lock with `databaseHandle` open,
        /// after counting this iterator as a dependent.
        init(
            database: Database,
            databaseHandle: OpaquePointer,
            snapshot: Snapshot?,
            lowerBound: [UInt8]?,
            upperBound: [UInt8]?
        ) {
            self.database = database
            self.snapshot = snapshot
            readOptions = rocksdb_readoptions_create()
            if let snapshot {
                rocksdb_readoptions_set_snapshot(readOptions, snapshot.handle)
            }
            // RocksDB keeps pointers to the bounds, so copy them into storage we own.
            let lowerCount = lowerBound?.count ?? 0
            boundStorage = .allocate(
                byteCount: max(1, lowerCount + (upperBound?.count ?? 0)), alignment: 1)
            let base = boundStorage.baseAddress!
            if let lowerBound {
                UnsafeMutableRawBufferPointer(rebasing: boundStorage[..<lowerCount])
                    .copyBytes(from: lowerBound)
                rocksdb_readoptions_set_iterate_lower_bound(
                    readOptions, base.assumingMemoryBound(to: CChar.self), lowerCount)
            }
            if let upperBound {
                UnsafeMutableRawBufferPointer(
                    rebasing: boundStorage[lowerCount..<(lowerCount + upperBound.count)]
                ).copyBytes(from: upperBound)
                rocksdb_readoptions_set_iterate_upper_bound(
                    readOptions, (base + lowerCount).assumingMemoryBound(to: CChar.self),
                    upperBound.count)
            }
            handle = rocksdb_create_iterator(databaseHandle, readOptions)
        }

        deinit {
            rocksdb_iter_destroy(handle)
            rocksdb_readoptions_destroy(readOptions)
            boundStorage.deallocate()
            database.dependentReleased()
        }

        /// Whether the iterator is positioned at an entry.
        public var isValid: Bool {
            rocksdb_iter_valid(handle) != 0
        }

        /// The key of the current entry.
        ///
        /// - Precondition: ``isValid`` is `true`.
        public var key: [UInt8] {
            precondition(isValid, "key read from an invalid iterator")
            var count = 0
            let pointer = rocksdb_iter_key(handle, &count)
            return [UInt8](copying: pointer, count: count)
        }

        /// The value of the current entry.
        ///
        /// - Precondition: ``isValid`` is `true`.
        public var value: [UInt8] {
            precondition(isValid, "value read from an invalid iterator")
            var count = 0
            let pointer = rocksdb_iter_value(handle, &count)
            return [UInt8](copying: pointer, count: count)
        }

        /// Positions the iterator at the first key (at or after the lower bound).
        public func seekToFirst() {
            rocksdb_iter_seek_to_first(handle)
        }

        /// Positions the iterator at the last key (before the upper bound).
        public func seekToLast() {
            rocksdb_iter_seek_to_last(handle)
        }

        /// Positions the iterator at the first key greater than or equal to `key`.
        public func seek(to key: [UInt8]) {
            key.withCBytes { rocksdb_iter_seek(handle, $0, $1) }
        }

        /// Positions the iterator at the last key less than or equal to `key`.
        public func seekForPrev(_ key: [UInt8]) {
            key.withCBytes { rocksdb_iter_seek_for_prev(handle, $0, $1) }
        }

        /// Moves to the next key.
        ///
        /// - Precondition: ``isValid`` is `true`.
        public func next() {
            precondition(isValid, "next() called on an invalid iterator")
            rocksdb_iter_next(handle)
        }

        /// Moves to the previous key.
        ///
        /// - Precondition: ``isValid`` is `true`.
        public func previous() {
            precondition(isValid, "previous() called on an invalid iterator")
            rocksdb_iter_prev(handle)
        }

        /// Throws the error that stopped iteration, if any.
        ///
        /// Call this when ``isValid`` becomes `false` to distinguish reaching the
        /// end of the data from a failure such as a corrupted or unreadable file.
        public func checkError() throws {
            try withErrorPointer { rocksdb_iter_get_error(handle, $0) }
        }
    }
}
