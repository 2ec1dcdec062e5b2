import Crypto
import EtcdWire
import Foundation
import GRPCCore
import GRPCProtobuf

/// One endpoint's status.
public struct EndpointStatus: Sendable, Hashable {
    public var header: ResponseHeader
    /// The endpoint that answered.
    public var endpoint: Endpoint
    /// The server's version (etcd's version string).
    public var version: String
    /// The backend database's size in bytes.
    public var dbSize: Int64
    /// The bytes of the database in use.
    public var dbSizeInUse: Int64
    /// The leader's member ID (0 if none).
    public var leader: UInt64
    /// The member's committed Raft index.
    public var raftIndex: UInt64
    /// The member's Raft term.
    public var raftTerm: UInt64
    /// The member's applied Raft index.
    public var raftAppliedIndex: UInt64
    /// Whether the member is a learner.
    public var isLearner: Bool
    /// The member's errors (alarms, no leader).
    public var errors: [String]
}

/// An alarm raised on a member.
public struct Alarm: Sendable, Hashable {
    /// The kind of alarm.
    public enum Kind: Sendable, Hashable {
        /// The backend is out of space: writes are refused until it is disarmed.
        case noSpace
        /// The member's data is corrupt.
        case corrupt
    }

    public var memberID: UInt64
    public var kind: Kind
}

extension StatehouseClient {
    /// The status of `endpoint` (one of the client's endpoints).
    public func status(of endpoint: Endpoint) async throws -> EndpointStatus {
        let response: Etcdserverpb_StatusResponse = try await unary(
            Methods.status, Etcdserverpb_StatusRequest(), policy: .idempotent, endpoint: endpoint)
        return EndpointStatus(
            header: ResponseHeader(response.header), endpoint: endpoint, version: response.version, dbSize: response.dbSize,
            dbSizeInUse: response.dbSizeInUse, leader: response.leader, raftIndex: response.raftIndex,
            raftTerm: response.raftTerm, raftAppliedIndex: response.raftAppliedIndex, isLearner: response.isLearner,
            errors: response.errors)
    }

    /// Whether `endpoint` is healthy as etcdctl's `endpoint health` decides: it answers a
    /// linearizable read (a missing key is fine) within the request timeout; no leader or a
    /// raised alarm (other than NOSPACE) counts as unhealthy.
    public func isHealthy(_ endpoint: Endpoint) async -> Bool {
        do {
            _ =
                try await unary(
                    Methods.range, GetOptions().request(for: .key("health")), policy: .idempotent, endpoint: endpoint)
                as Etcdserverpb_RangeResponse
            return true
        } catch let error as StatehouseError where error.code == .permissionDenied {
            return true
        } catch {
            return false
        }
    }

    /// The raised alarms.
    public func alarms() async throws -> [Alarm] {
        let response: Etcdserverpb_AlarmResponse = try await unary(
            Methods.alarm, Etcdserverpb_AlarmRequest(), policy: .idempotent)
        return response.alarms.compactMap(Alarm.init)
    }

    /// Disarms `alarm` (after the cause, e.g. a full backend, has been dealt with).
    @discardableResult
    public func disarm(_ alarm: Alarm) async throws -> [Alarm] {
        var request = Etcdserverpb_AlarmRequest()
        request.action = .deactivate
        request.memberID = alarm.memberID
        request.alarm = alarm.kind == .noSpace ? .nospace : .corrupt
        let response: Etcdserverpb_AlarmResponse = try await unary(Methods.alarm, request, policy: .idempotent)
        return response.alarms.compactMap(Alarm.init)
    }

    /// Moves the leadership to member `id` (the call must reach the current leader: pass its
    /// endpoint, or let the client try each).
    @discardableResult
    public func moveLeader(to id: UInt64, via endpoint: Endpoint? = nil) async throws -> ResponseHeader {
        var request = Etcdserverpb_MoveLeaderRequest()
        request.targetID = id
        if let endpoint {
            let response: Etcdserverpb_MoveLeaderResponse = try await unary(
                Methods.moveLeader, request, policy: .unsentOnly, endpoint: endpoint)
            return ResponseHeader(response.header)
        }
        // Find the leader's endpoint from the endpoints' status.
        var lastError: (any Error)?
        for connection in connections {
            do {
                let status = try await status(of: connection.endpoint)
                if status.header.memberID == status.leader {
                    let response: Etcdserverpb_MoveLeaderResponse = try await unary(
                        Methods.moveLeader, request, policy: .unsentOnly, endpoint: connection.endpoint)
                    return ResponseHeader(response.header)
                }
            } catch {
                lastError = error
            }
        }
        throw lastError.map(StatehouseError.from)
            ?? StatehouseError(.noLeader, "none of the endpoints is the leader; pass the leader's endpoint")
    }

    /// Defragments the backend of `endpoint`.
    public func defragment(_ endpoint: Endpoint) async throws {
        let _: Etcdserverpb_DefragmentResponse = try await unary(
            Methods.defragment, Etcdserverpb_DefragmentRequest(), policy: .idempotent, timeout: .seconds(60),
            endpoint: endpoint)
    }

    /// The hash of the key-value store at `revision` (0: the latest) on `endpoint`, and the
    /// compact revision it covers from. Members with the same data give the same hash.
    public func hashKV(_ endpoint: Endpoint, revision: Int64 = 0) async throws -> (hash: UInt32, compactRevision: Int64) {
        var request = Etcdserverpb_HashKVRequest()
        request.revision = revision
        let response: Etcdserverpb_HashKVResponse = try await unary(
            Methods.hashKV, request, policy: .idempotent, endpoint: endpoint)
        return (response.hash, response.compactRevision)
    }

    /// Streams a backup of `endpoint`'s database (or the first endpoint that answers) into the
    /// file at `path`, calling `progress` with the bytes received and the bytes still to come.
    ///
    /// The backup ends with a SHA-256 of its contents (as etcd's does); it is checked before
    /// the file is moved into place, so a partial or damaged backup never appears at `path`.
    /// - Returns: The number of bytes written.
    @discardableResult
    public func snapshot(
        to path: String, from endpoint: Endpoint? = nil,
        progress: @escaping @Sendable (_ received: Int64, _ remaining: Int64) -> Void = { _, _ in }
    ) async throws -> Int64 {
        let connection = try endpoint.map { try self.connection(for: $0) } ?? chooseConnection()
        let partial = path + ".part"
        guard FileManager.default.createFile(atPath: partial, contents: nil), let file = FileHandle(forWritingAtPath: partial) else {
            throw StatehouseError(.invalidArgument, "cannot write \(partial)")
        }
        var options = CallOptions.defaults
        options.waitForReady = false
        options.maxResponseMessageBytes = configuration.maxResponseBytes
        do {
            let (size, digest, trailer) = try await connection.grpc.serverStreaming(
                request: ClientRequest(message: Etcdserverpb_SnapshotRequest()),
                descriptor: Methods.snapshot,
                serializer: ProtobufSerializer<Etcdserverpb_SnapshotRequest>(),
                deserializer: ProtobufDeserializer<Etcdserverpb_SnapshotResponse>(),
                options: options
            ) { response in
                var size: Int64 = 0
                var hasher = SHA256()
                var tail: [UInt8] = []
                for try await message in response.messages {
                    try file.write(contentsOf: message.blob)
                    size += Int64(message.blob.count)
                    // Hash everything but the last 32 bytes, which may be the trailer.
                    tail += message.blob
                    if tail.count > 32 {
                        hasher.update(data: tail[..<(tail.count - 32)])
                        tail.removeFirst(tail.count - 32)
                    }
                    progress(size, Int64(message.remainingBytes))
                }
                return (size, Array(hasher.finalize()), tail)
            }
            try file.close()
            if size % 512 == 32 {
                guard trailer == digest else {
                    throw StatehouseError(.corrupt, "the snapshot's SHA-256 does not match its contents")
                }
            }
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
            try FileManager.default.moveItem(atPath: partial, toPath: path)
            return size
        } catch {
            try? file.close()
            try? FileManager.default.removeItem(atPath: partial)
            throw StatehouseError.from(error)
        }
    }
}

extension Alarm {
    init?(_ alarm: Etcdserverpb_AlarmMember) {
        switch alarm.alarm {
        case .nospace: kind = .noSpace
        case .corrupt: kind = .corrupt
        default: return nil
        }
        memberID = alarm.memberID
    }
}
