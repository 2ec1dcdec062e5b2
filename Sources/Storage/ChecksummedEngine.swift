import Primitives

/// A ``StorageEngine`` that stores a checksum with every value written through it and verifies
/// it on every read, so that a damaged disk is detected instead of read as data.
///
/// Each stored value is the caller's value followed by a CRC-32C (32-bit little-endian) over the
/// key's length (32-bit little-endian), the key and the value. Covering the key catches a write
/// that landed under another key (a misdirected write); covering the value catches flipped bits
/// and torn records. A value that fails its checksum, or is too short to hold one, is reported
/// as ``StorageError/Kind/corruption`` naming its key; nothing read from it is returned.
///
/// The format is recorded under ``formatKey``, which lies outside every other owner's prefix
/// (`a/`, `k/`, `l/`, `m/`, `r/`). Opening an engine that holds records but no format record
/// (a data directory written before checksums) rewrites every record with its checksum in one
/// synced batch, after making sure that none of them already carries one (which would mean the
/// format record itself was lost, not that the data is old). A new engine gets the format
/// record with its first write.
public final class ChecksummedEngine: StorageEngine {
    /// The key the format record is stored under.
    public static let formatKey: [UInt8] = Array("f/format".utf8)
    /// The value of the format record this build writes.
    public static let formatValue: [UInt8] = Array("crc32c/1".utf8)
    /// The bytes a checksum adds to each value.
    public static let checksumBytes = 4

    /// The engine the checksummed records are stored in.
    public let base: any StorageEngine
    /// Whether the format record still has to be written (a new, empty engine).
    private var writesFormatRecord: Bool
    /// Whether reads verify checksums (always, except to prove that a checker notices).
    private let verifiesChecksums: Bool

    /// Opens the records in `base`, upgrading a store written without checksums.
    ///
    /// - Throws: ``StorageError/Kind/corruption`` if the format record is unknown, or is
    ///   missing while the records carry checksums; the engine's error if it fails.
    public convenience init(wrapping base: any StorageEngine) throws(StorageError) {
        try self.init(wrapping: base, verifiesChecksums: true)
    }

    /// Opens the records in `base`; with `verifiesChecksums` false, reads strip checksums
    /// without verifying them (a deliberately broken engine, to prove the simulator notices).
    @_spi(Testing) public init(wrapping base: any StorageEngine, verifiesChecksums: Bool) throws(StorageError) {
        self.base = base
        self.verifiesChecksums = verifiesChecksums
        switch try base.get(Self.formatKey) {
        case Self.formatValue?:
            writesFormatRecord = false
        case let other?:
            throw StorageError(
                .corruption, "unknown storage format record (\(other.count) bytes): not written by this version, or damaged",
                key: Self.formatKey)
        case nil:
            let records = try base.scan(from: [], to: nil, limit: nil, reverse: false)
            writesFormatRecord = records.isEmpty
            if !records.isEmpty { try Self.upgrade(records, in: base) }
        }
    }

    /// Rewrites every record of a store written without checksums, with its checksum.
    private static func upgrade(_ records: [StorageRecord], in base: any StorageEngine) throws(StorageError) {
        if let checked = records.first(where: { Self.verified($0.key, $0.value) != nil }) {
            throw StorageError(
                .corruption,
                "the storage format record is missing, yet records carry checksums: the format record was lost, refusing to read the store",
                key: checked.key)
        }
        var batch = StorageBatch()
        for record in records { batch.put(record.key, Self.sealed(record.key, record.value)) }
        batch.put(formatKey, formatValue)
        try base.write(batch, sync: true)
    }

    /// `value` followed by its checksum under `key`.
    public static func sealed(_ key: [UInt8], _ value: [UInt8]) -> [UInt8] {
        let crc = checksum(key, value[...])
        var out = value
        out.reserveCapacity(value.count + checksumBytes)
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: crc >> UInt32(shift))) }
        return out
    }

    /// The value inside `stored`, a record read under `key` straight from the base engine (a
    /// pinned RocksDB snapshot, say), after verifying its checksum.
    ///
    /// - Throws: ``StorageError`` of kind `corruption` if the checksum does not hold.
    public static func unsealed(_ key: [UInt8], _ stored: [UInt8]) throws(StorageError) -> [UInt8] {
        guard let value = verified(key, stored) else { throw damaged(key, stored) }
        return value
    }

    private static func damaged(_ key: [UInt8], _ stored: [UInt8]) -> StorageError {
        StorageError(
            .corruption,
            "checksum mismatch in a stored record of \(stored.count) bytes: the disk returned damaged data, "
                + "refusing to use it",
            key: key)
    }

    /// The value inside `stored` if its checksum under `key` holds, or `nil`.
    static func verified(_ key: [UInt8], _ stored: [UInt8]) -> [UInt8]? {
        guard stored.count >= checksumBytes else { return nil }
        let split = stored.count - checksumBytes
        let recorded = (0..<checksumBytes).reduce(UInt32(0)) { $0 | UInt32(stored[split + $1]) << UInt32(8 * $1) }
        let value = stored[..<split]
        return checksum(key, value) == recorded ? Array(value) : nil
    }

    private static func checksum(_ key: [UInt8], _ value: ArraySlice<UInt8>) -> UInt32 {
        var crc = CRC32(.castagnoli)
        let length = UInt32(truncatingIfNeeded: key.count)
        withUnsafeBytes(of: length.littleEndian) { crc.update($0) }
        crc.update(key)
        crc.update(value)
        return crc.value
    }

    private func open(_ key: [UInt8], _ stored: [UInt8]) throws(StorageError) -> [UInt8] {
        if !verifiesChecksums && stored.count >= Self.checksumBytes { return Array(stored.dropLast(Self.checksumBytes)) }
        guard let value = Self.verified(key, stored) else { throw Self.damaged(key, stored) }
        return value
    }

    /// Returns the value stored for `key`, after verifying its checksum.
    public func get(_ key: [UInt8]) throws(StorageError) -> [UInt8]? {
        guard let stored = try base.get(key) else { return nil }
        return try open(key, stored)
    }

    /// Writes `batch` with a checksum on every value (and the format record, the first time).
    public func write(_ batch: StorageBatch, sync: Bool) throws(StorageError) {
        var sealed = StorageBatch()
        if writesFormatRecord { sealed.put(Self.formatKey, Self.formatValue) }
        for operation in batch.operations {
            switch operation {
            case .put(let key, let value): sealed.put(key, Self.sealed(key, value))
            case .delete, .deleteRange: sealed.append(operation)
            }
        }
        try base.write(sealed, sync: sync)
        writesFormatRecord = false
    }

    /// Returns the records in `start..<end` after verifying each one's checksum (the format
    /// record is left out).
    public func scan(from start: [UInt8], to end: [UInt8]?, limit: Int?, reverse: Bool) throws(StorageError) -> [StorageRecord] {
        let covers = !Self.formatKey.lexicographicallyPrecedes(start) && (end.map { Self.formatKey.lexicographicallyPrecedes($0) } ?? true)
        // One more record than asked for, in case the format record is among them.
        let asked = covers ? limit.map { $0 + 1 } : limit
        var records: [StorageRecord] = []
        for record in try base.scan(from: start, to: end, limit: asked, reverse: reverse) {
            if covers && record.key == Self.formatKey { continue }
            records.append(StorageRecord(key: record.key, value: try open(record.key, record.value)))
        }
        if covers, let asked, records.count == asked { records.removeLast() }
        return records
    }
}
