import BackupFormat
import EtcdMapping
import EtcdWire
import Foundation
import GRPCServer
import GRPCStatus
import NIOCore
import NIOPosix
import ReplicatedMember
import RocksDB
import StateMachine
import Storage
import StorageRocksDB

/// The state machine as one RocksDB snapshot, pinned on the member loop, where the backend
/// pairs and the applied index are written in one batch: it is the state at ``appliedIndex``,
/// whatever the member applies afterwards. `Hash`, `HashKV` and `Snapshot` read it on a thread
/// pool; the snapshot is released when the last reference goes.
struct PinnedState: Sendable {
    let database: Database
    let snapshot: RocksDB.Snapshot
    /// The header of answers about this state.
    let context: HeaderContext
    /// The store revision and Raft applied index the snapshot holds.
    let revision: Int64
    let appliedIndex: UInt64

    /// Pins the current state; call on the member loop.
    init(onLoopOf host: MemberHost) throws {
        database = host.engine.database
        snapshot = try database.snapshot()
        context = host.header
        revision = host.member.store.currentRevision
        appliedIndex = host.member.appliedIndex
    }

    /// An iterator over the state's pairs from `start` (the first state key by default), in key
    /// order. Use it from one thread at a time.
    func iterator(from start: [UInt8] = MemberStorage.stateStart) throws -> Database.Iterator {
        let iterator = try database.makeIterator(
            snapshot: snapshot, lowerBound: MemberStorage.stateStart, upperBound: MemberStorage.stateEnd)
        iterator.seek(to: start)
        return iterator
    }

    /// Calls `body` with each state pair from `start` in key order until it returns `false`.
    func forEachPair(from start: [UInt8] = MemberStorage.stateStart, _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
        let iterator = try iterator(from: start)
        while iterator.isValid {
            let key = iterator.key
            guard try body(key, try ChecksummedEngine.unsealed(key, iterator.value)) else { return }
            iterator.next()
        }
        try iterator.checkError()
    }

    /// `Maintenance.Hash` of this state: equal to `StateStore.digest()` at ``appliedIndex``.
    func digest() throws -> UInt32 {
        var digest = StateDigest()
        try forEachPair { key, value in
            digest.update(key: key, value: value)
            return true
        }
        return digest.value
    }

    /// `Maintenance.HashKV` of this state: equal to `StateStore.hashKV(revision:)` at
    /// ``appliedIndex``, errors included.
    func hashKV(revision: Int64) throws -> HashKVResponse {
        let stored = try KeyValueDigest.storedRevisions(
            current: try stored(BackendLayout.revisionKey), compacted: try stored(BackendLayout.compactedKey))
        var digest = try KeyValueDigest(revision: revision, currentRevision: stored.current, compactedRevision: stored.compacted)
        try forEachPair(from: BackendLayout.versionPrefix) { key, value in
            key.starts(with: BackendLayout.versionPrefix) && digest.update(key: key, value: value)
        }
        return digest.finish()
    }

    /// The value stored under `key` in the snapshot, its checksum verified, or `nil`.
    private func stored(_ key: [UInt8]) throws -> [UInt8]? {
        try database.get(key, snapshot: snapshot).map { stored throws(StorageError) in try ChecksummedEngine.unsealed(key, stored) }
    }

    /// The size of a backup of this state (the first of the backup's two reads).
    func backupSize() throws -> BackupEncoder.Size {
        var size = BackupEncoder.Size()
        try forEachPair { key, value in
            size.add(key: key, value: value)
            return true
        }
        return size
    }
}

/// The state's values as one RocksDB snapshot, pinned on the member loop, for reading a
/// range's released values off the loop (``ClientResponse/pendingRange(_:)``). Unlike
/// ``PinnedState`` it need not wait for a state write in flight: the versions a range answers
/// that are not in memory were written before it was planned.
struct PinnedValues: BackendReader {
    let database: Database
    let snapshot: RocksDB.Snapshot

    init(database: Database) throws {
        self.database = database
        snapshot = try database.snapshot()
    }

    func value(forKey key: [UInt8]) throws -> [UInt8]? {
        try database.get(key, snapshot: snapshot).map { stored throws(StorageError) in try ChecksummedEngine.unsealed(key, stored) }
    }
}

/// Streams a backup of a ``PinnedState`` as `Snapshot` messages: the next chunk is read and
/// encoded on the thread pool only when the call is writable, so at most one chunk (and one
/// pair) is in memory; the pinned snapshot is released when the last chunk is sent or the call
/// ends early.
final class BackupStreamer: @unchecked Sendable {
    // Everything below is confined to `call.eventLoop`, except `iterator` and `encoder`, which
    // the one outstanding thread-pool read owns while `isReading` is true.
    private let call: ServerCall
    private let chunkSize: Int
    private var state: PinnedState?
    private var iterator: Database.Iterator?
    private var encoder: BackupEncoder
    private var isReading = false

    private init(call: ServerCall, state: PinnedState, iterator: Database.Iterator, size: BackupEncoder.Size, chunkSize: Int) {
        self.call = call
        self.state = state
        self.iterator = iterator
        self.chunkSize = chunkSize
        encoder = BackupEncoder(size: size)
    }

    /// Sizes the backup on the thread pool, then streams it; call on `call.eventLoop`'s side of
    /// a future holding the pinned state.
    static func start(call: ServerCall, state: PinnedState, chunkSize: Int = 64 << 10) -> EventLoopFuture<BackupStreamer> {
        NIOThreadPool.singleton.runIfActive(eventLoop: call.eventLoop) {
            let size = try state.backupSize()
            let streamer = BackupStreamer(call: call, state: state, iterator: try state.iterator(), size: size, chunkSize: chunkSize)
            return streamer
        }.map { streamer in
            call.onWritabilityChanged { writable in
                if writable { call.eventLoop.execute { streamer.pump() } }
            }
            streamer.pump()
            return streamer
        }
    }

    /// Releases the pinned snapshot if the call has ended; call on `call.eventLoop`.
    func callEnded() {
        if !isReading { release() }
    }

    private func release() {
        iterator = nil
        state = nil
    }

    private func pump() {
        guard !isReading, state != nil else { return }
        guard !call.isFinished else { return release() }
        guard call.isWritable else { return }
        isReading = true
        NIOThreadPool.singleton.runIfActive(eventLoop: call.eventLoop) { () throws -> [UInt8] in
            try self.readChunk()
        }.whenComplete { result in
            self.isReading = false
            guard let state = self.state, !self.call.isFinished else { return self.release() }
            switch result {
            case .failure(let error):
                self.release()
                self.call.fail(ServiceError(.internal, "etcdserver: reading the backup failed: \(error)"))
            case .success(let chunk):
                var message = Etcdserverpb_SnapshotResponse()
                message.header = EtcdMapping.header(
                    clusterID: state.context.clusterID, memberID: state.context.memberID, revision: state.revision,
                    raftTerm: state.context.raftTerm)
                message.remainingBytes = UInt64(self.encoder.fileBytes - self.encoder.takenBytes)
                message.blob = Data(chunk)
                self.call.send(message)
                if self.encoder.isComplete {
                    self.release()
                    self.call.finish(.ok)
                } else {
                    self.pump()
                }
            }
        }
    }

    /// Encodes pairs until a chunk is ready (or the pairs end) and takes it; runs on the pool.
    private func readChunk() throws -> [UInt8] {
        guard let iterator else { return [] }
        while encoder.pendingBytes < chunkSize && iterator.isValid {
            let key = iterator.key
            encoder.add(key: key, value: try ChecksummedEngine.unsealed(key, iterator.value))
            iterator.next()
        }
        if !iterator.isValid {
            try iterator.checkError()
            try encoder.finish()
        }
        return encoder.take(upTo: chunkSize)
    }
}
