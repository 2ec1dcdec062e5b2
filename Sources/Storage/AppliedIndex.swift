import Primitives
public import RaftCore

/// The state machine's applied index, stored under `a/applied` as a little-endian 64-bit
/// integer (as Raft's own integers are stored).
///
/// Put it into the same ``StorageBatch`` as the changes of the entries it covers, so that after
/// a crash the state machine and its applied index always agree.
public enum AppliedIndex {
    /// The key the applied index is stored under.
    public static let key: [UInt8] = Array("a/applied".utf8)

    /// Adds storing `index` as the applied index to `batch`.
    public static func put(_ index: LogIndex, into batch: inout StorageBatch) {
        batch.put(key, encode(index))
    }

    /// Returns the encoded value for `index`.
    public static func encode(_ index: LogIndex) -> [UInt8] {
        var out: [UInt8] = []
        out.appendLittleEndian(index)
        return out
    }

    /// Reads the stored applied index, or 0 when none is stored.
    ///
    /// - Throws: ``StorageError/Kind/corruption`` naming `a/applied` if the value is malformed.
    public static func read(from engine: any StorageEngine) throws(StorageError) -> LogIndex {
        guard let value = try engine.get(key) else { return 0 }
        var reader = ByteReader(value)
        guard let index = try? reader.readLittleEndianUInt64(), reader.isAtEnd else {
            throw StorageError(.corruption, "undecodable applied index (\(value.count) bytes)", key: key)
        }
        return index
    }
}

extension RaftLogStore {
    /// Reads what a member needs to restart, with the applied index stored under `a/applied`.
    public func load() throws(StorageError) -> PersistentState {
        try load(appliedIndex: AppliedIndex.read(from: engine))
    }
}
