import Primitives

/// Reads back what a ``StateStore``'s ``BackendMutation``s left in the backend, so that the
/// store need not keep every value in memory.
///
/// The store calls it only for a version whose value it released with
/// ``StateStore/releaseDurableValues()``, that is, after the caller wrote the batch holding the
/// version record; it reads ``BackendLayout/versionKey(_:)`` keys and never writes. Calls come
/// from whichever thread runs the store's methods, one at a time per store.
public protocol BackendReader: Sendable {
    /// Returns the value stored under `key` in the backend, or `nil` if there is none.
    ///
    /// - Throws: The backend's error (an I/O failure, a record that fails its checksum).
    func value(forKey key: [UInt8]) throws -> [UInt8]?
}

extension StateStore {
    /// The reader the store reads released values through, or `nil` if it keeps every value in
    /// memory.
    public var backendReader: (any BackendReader)? { valueReader }

    /// The bytes of key values currently held in memory: those written since the last
    /// ``releaseDurableValues()`` (or every value, for a store without a ``backendReader``).
    public var residentValueBytes: Int { residentBytes }

    /// The number of versions whose values stay in memory until the next
    /// ``releaseDurableValues()``.
    public var pendingValueCount: Int { pendingValues.count }

    /// From now on, drops values from memory at ``releaseDurableValues()`` and reads them back
    /// through `reader`. The values in memory now (a store restored from a Raft snapshot's
    /// pairs, which the caller has yet to write) are released at the next call too.
    public mutating func readValues(from reader: any BackendReader) {
        valueReader = reader
        pendingValues.removeAll()
        for entry in index.chunks.joined() {
            for record in entry.history where !record.isTombstone && record.value != nil {
                pendingValues.append((entry.key, record.revision))
            }
        }
    }

    /// Drops from memory the values of every version applied so far; call once the caller has
    /// written (not necessarily synced) the mutations of those applies to the backend that
    /// ``backendReader`` reads. Later reads of those values go to the backend. Does nothing for
    /// a store without a reader.
    public mutating func releaseDurableValues() {
        guard valueReader != nil else { return }
        for (key, revision) in pendingValues {
            // A version compacted away since it was written is gone already.
            guard let position = index.find(key) else { continue }
            let released = index.modifyHistory(at: position) { history -> Int in
                guard let i = KeyEntry.index(of: revision, in: history) else { return 0 }
                defer { history[i].value = nil }
                return history[i].residentBytes
            }
            residentBytes -= released
        }
        pendingValues.removeAll()
    }

    /// Records a value written by an apply: resident until the next ``releaseDurableValues()``.
    mutating func noteResidentValue(key: [UInt8], record: VersionRecord) {
        residentBytes += record.residentBytes
        if valueReader != nil && !record.isTombstone { pendingValues.append((key, record.revision)) }
    }

    /// The value of `record`, a version of `key`: from memory if resident, else read back from
    /// the backend.
    ///
    /// A released value that the backend does not hold, or holds for another version, means the
    /// member's storage lost or misdirected a write: the process stops with a message that says
    /// so (as it does for any failed storage operation), rather than answer from damaged state.
    func value(of record: VersionRecord, key: [UInt8]) -> [UInt8] {
        if let value = record.value { return value }
        return Self.storedVersion(of: record, key: key, reader: valueReader).value
    }

    /// The key-value of `record`, a version of `key`, with its value (see ``value(of:key:)``).
    func keyValue(of record: VersionRecord, key: [UInt8]) -> KeyValue {
        record.keyValue(key: key, value: value(of: record, key: key))
    }

    /// The backend value of `record`, a version of `key`, exactly as its mutation wrote it.
    /// `backendKey` is the record's backend key if the caller has it already.
    func encodedVersion(of record: VersionRecord, key: [UInt8], backendKey: [UInt8]? = nil) -> [UInt8] {
        if let value = record.value { return BackendLayout.encode(key: key, record: record, value: value) }
        return Self.storedVersion(of: record, key: key, backendKey: backendKey, reader: valueReader).encoded
    }

    /// Reads back a released version through `reader`; stops the process if the backend lost
    /// it (see ``value(of:key:)``).
    static func storedVersion(
        of record: VersionRecord, key: [UInt8], backendKey: [UInt8]? = nil, reader: (any BackendReader)?
    ) -> (value: [UInt8], encoded: [UInt8]) {
        let backendKey = backendKey ?? BackendLayout.versionKey(record.revision)
        // Described only when the process stops: this runs for every value read back.
        var version: String {
            "version \(record.revision.main).\(record.revision.sub) of key \(String(decoding: key, as: UTF8.self).debugDescription)"
        }
        guard let reader else {
            backendDamaged("the value of \(version) is not in memory and the store has no backend reader")
        }
        let stored: [UInt8]?
        do {
            stored = try reader.value(forKey: backendKey)
        } catch {
            backendDamaged("reading the value of \(version) failed: \(error)")
        }
        guard let stored else { backendDamaged("the backend has no record of \(version)") }
        do {
            let decoded = try BackendLayout.decodeVersion(key: backendKey, value: stored)
            var expected = decoded.record
            expected.value = nil
            guard decoded.key == key, expected == record, let value = decoded.record.value else {
                backendDamaged("the backend's record of \(version) belongs to another version")
            }
            return (value, stored)
        } catch {
            backendDamaged("the backend's record of \(version) does not decode: \(error)")
        }
    }

    private static func backendDamaged(_ detail: String) -> Never {
        fatalError(
            "statehouse: the state machine's backend is damaged: \(detail). This member's storage lost or "
                + "misdirected a write; remove it from the cluster and add it back with an empty data directory")
    }
}
