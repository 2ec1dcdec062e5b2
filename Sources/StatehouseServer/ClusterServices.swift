import Crypto
import EtcdMapping
import EtcdWire
import Foundation
import GRPCServer
import GRPCStatus
import MVCC
import NIOCore
import NIOPosix
import Node
import RaftCore
import RocksDB
import ServerConfiguration
import StorageRocksDB
import SwiftProtobuf

/// `etcdserverpb.Cluster` and `etcdserverpb.Maintenance`.
struct ClusterServices {
    let host: MemberHost
    /// The cluster token, from which new members' IDs are derived (as the new member derives
    /// its own from `--initial-advertise-peer-urls` and `--initial-cluster-token`).
    let token: String
    /// The version reported by Status and `/version`.
    static let apiVersion = "3.4.0"

    func header(_ context: HeaderContext, revision: Int64) -> Etcdserverpb_ResponseHeader {
        EtcdMapping.header(clusterID: context.clusterID, memberID: context.memberID, revision: revision, raftTerm: context.raftTerm)
    }

    static func wire(_ member: ClusterMember) -> Etcdserverpb_Member {
        var wire = Etcdserverpb_Member()
        wire.id = member.id
        wire.name = member.name
        wire.peerUrls = member.peerURLs
        wire.clientUrls = member.clientURLs
        wire.isLearner = member.isLearner
        return wire
    }

    /// Runs `body` on the member loop, then answers with its result or error.
    func onLoop<Response: SwiftProtobufMessageSendable>(
        _ responder: UnaryResponder, _ body: @escaping @Sendable (@escaping @Sendable (Result<Response, ServiceError>) -> Void) -> Void
    ) {
        host.loop.execute {
            body { result in
                switch result {
                case .success(let response): responder.succeed(response)
                case .failure(let error): responder.fail(error)
                }
            }
        }
    }

    // MARK: Cluster

    func memberList(_ request: Etcdserverpb_MemberListRequest, _ responder: UnaryResponder) {
        let host = self.host
        onLoop(responder) { (done: @escaping @Sendable (Result<Etcdserverpb_MemberListResponse, ServiceError>) -> Void) in
            var response = Etcdserverpb_MemberListResponse()
            response.header = header(host.header, revision: host.member.store.currentRevision)
            response.members = host.member.store.members().map(Self.wire)
            done(.success(response))
        }
    }

    func memberAdd(_ request: Etcdserverpb_MemberAddRequest, _ responder: UnaryResponder) {
        let host = self.host
        let token = self.token
        onLoop(responder) { (done: @escaping @Sendable (Result<Etcdserverpb_MemberAddResponse, ServiceError>) -> Void) in
            guard !request.peerUrls.isEmpty, request.peerUrls.allSatisfy({ MemberHost.hostAndPort($0) != nil }) else {
                return done(.failure(ServiceError(.invalidArgument, "etcdserver: invalid peer URLs \(request.peerUrls)")))
            }
            let members = host.member.store.members()
            if members.contains(where: { !Set($0.peerURLs).isDisjoint(with: request.peerUrls) }) {
                return done(.failure(.peerURLExists))
            }
            let id = ServerConfiguration.memberID(peerURLs: request.peerUrls, token: token)
            if members.contains(where: { $0.id == id }) { return done(.failure(.memberExists)) }
            let record = ClusterMember(id: id, peerURLs: request.peerUrls, isLearner: request.isLearner)
            let change = ConfChange(request.isLearner ? .addLearner : .addVoter, node: id, context: record.encodedAttributes())
            host.proposeConfChangeOnLoop(change) { error in
                if let error { return done(.failure(error)) }
                host.loop.execute {
                    var response = Etcdserverpb_MemberAddResponse()
                    response.header = header(host.header, revision: host.member.store.currentRevision)
                    response.member = Self.wire(host.member.store.member(id) ?? record)
                    response.members = host.member.store.members().map(Self.wire)
                    done(.success(response))
                }
            }
        }
    }

    func memberRemove(_ request: Etcdserverpb_MemberRemoveRequest, _ responder: UnaryResponder) {
        let host = self.host
        onLoop(responder) { (done: @escaping @Sendable (Result<Etcdserverpb_MemberRemoveResponse, ServiceError>) -> Void) in
            guard host.member.store.member(request.id) != nil else { return done(.failure(.memberNotFound)) }
            host.proposeConfChangeOnLoop(ConfChange(.removeNode, node: request.id)) { error in
                if let error { return done(.failure(error)) }
                host.loop.execute {
                    var response = Etcdserverpb_MemberRemoveResponse()
                    response.header = header(host.header, revision: host.member.store.currentRevision)
                    response.members = host.member.store.members().map(Self.wire)
                    done(.success(response))
                }
            }
        }
    }

    func memberPromote(_ request: Etcdserverpb_MemberPromoteRequest, _ responder: UnaryResponder) {
        let host = self.host
        onLoop(responder) { (done: @escaping @Sendable (Result<Etcdserverpb_MemberPromoteResponse, ServiceError>) -> Void) in
            guard let record = host.member.store.member(request.id) else { return done(.failure(.memberNotFound)) }
            guard record.isLearner else { return done(.failure(.memberNotLearner)) }
            host.proposeConfChangeOnLoop(ConfChange(.addVoter, node: request.id)) { error in
                if let error { return done(.failure(error)) }
                host.loop.execute {
                    var response = Etcdserverpb_MemberPromoteResponse()
                    response.header = header(host.header, revision: host.member.store.currentRevision)
                    response.members = host.member.store.members().map(Self.wire)
                    done(.success(response))
                }
            }
        }
    }

    func memberUpdate(_ request: Etcdserverpb_MemberUpdateRequest, _ responder: UnaryResponder) {
        let host = self.host
        onLoop(responder) { (done: @escaping @Sendable (Result<Etcdserverpb_MemberUpdateResponse, ServiceError>) -> Void) in
            guard host.member.store.member(request.id) != nil else { return done(.failure(.memberNotFound)) }
            guard !request.peerUrls.isEmpty, request.peerUrls.allSatisfy({ MemberHost.hostAndPort($0) != nil }) else {
                return done(.failure(ServiceError(.invalidArgument, "etcdserver: invalid peer URLs \(request.peerUrls)")))
            }
            let change = MVCCRequest.updateMemberPeerURLs(MemberPeerURLsRequest(id: request.id, peerURLs: request.peerUrls))
            host.submitOnLoop(.write(change)) { response, context in
                if case .failure(let error) = response { return done(.failure(ServiceError(error))) }
                host.loop.execute {
                    var response = Etcdserverpb_MemberUpdateResponse()
                    response.header = header(context, revision: host.member.store.currentRevision)
                    response.members = host.member.store.members().map(Self.wire)
                    done(.success(response))
                }
            }
        }
    }

    // MARK: Maintenance

    func status(_ request: Etcdserverpb_StatusRequest, _ responder: UnaryResponder) {
        let host = self.host
        onLoop(responder) { (done: @escaping @Sendable (Result<Etcdserverpb_StatusResponse, ServiceError>) -> Void) in
            let status = host.statusOnLoop()
            var response = Etcdserverpb_StatusResponse()
            response.header = header(host.header, revision: status.revision)
            response.version = Self.apiVersion
            let size = host.databaseSize()
            response.dbSize = size
            response.dbSizeInUse = size
            response.leader = status.leader
            response.raftIndex = status.commitIndex
            response.raftTerm = status.term
            response.raftAppliedIndex = status.appliedIndex
            response.isLearner = status.isLearner
            response.errors = status.alarms.map { "memberID:\($0.memberID) alarm:\(Self.alarmName($0.alarm))" }
            if status.leader == noNode { response.errors.append("etcdserver: no leader") }
            done(.success(response))
        }
    }

    static func alarmName(_ alarm: AlarmType) -> String {
        switch alarm {
        case .none: "NONE"
        case .noSpace: "NOSPACE"
        case .corrupt: "CORRUPT"
        }
    }

    func alarm(_ request: Etcdserverpb_AlarmRequest, _ responder: UnaryResponder) {
        let host = self.host
        onLoop(responder) { (done: @escaping @Sendable (Result<Etcdserverpb_AlarmResponse, ServiceError>) -> Void) in
            @Sendable func answer(_ alarms: [AlarmMember], _ context: HeaderContext) {
                var response = Etcdserverpb_AlarmResponse()
                response.header = header(context, revision: host.lastKnownRevision)
                response.alarms = alarms.map { alarm in
                    var wire = Etcdserverpb_AlarmMember()
                    wire.memberID = alarm.memberID
                    wire.alarm = Etcdserverpb_AlarmType(rawValue: alarm.alarm.rawValue) ?? .none
                    return wire
                }
                done(.success(response))
            }
            guard let alarm = AlarmType(rawValue: request.alarm.rawValue),
                let action = AlarmRequest.Action(rawValue: request.action.rawValue)
            else { return done(.failure(ServiceError(.invalidArgument, "etcdserver: unknown alarm action or type"))) }
            if action == .get { return answer(host.member.store.alarms(), host.header) }
            let change = AlarmRequest(action: action, memberID: request.memberID, alarm: alarm)
            host.submitOnLoop(.write(.alarm(change))) { response, context in
                switch response {
                case .write(.cluster(let result)): answer(result.alarms, context)
                case .failure(let error): done(.failure(ServiceError(error)))
                default: done(.failure(ServiceError(.internal, "etcdserver: unexpected response")))
                }
            }
        }
    }

    func hash(_ request: Etcdserverpb_HashRequest, _ responder: UnaryResponder) {
        let host = self.host
        onLoop(responder) { (done: @escaping @Sendable (Result<Etcdserverpb_HashResponse, ServiceError>) -> Void) in
            // etcd hashes its whole backend file; ours hashes every backend pair of the state
            // machine (keys, leases, members, alarms) with CRC-32 (IEEE) over key and value.
            var crc = CRC32()
            host.member.store.forEachBackendPair { key, value in
                crc.update(key)
                crc.update(value)
            }
            var response = Etcdserverpb_HashResponse()
            response.header = header(host.header, revision: host.member.store.currentRevision)
            response.hash = crc.value
            done(.success(response))
        }
    }

    func hashKV(_ request: Etcdserverpb_HashKVRequest, _ responder: UnaryResponder) {
        let host = self.host
        onLoop(responder) { (done: @escaping @Sendable (Result<Etcdserverpb_HashKVResponse, ServiceError>) -> Void) in
            do {
                let result = try host.member.store.hashKV(revision: request.revision)
                var response = Etcdserverpb_HashKVResponse()
                response.header = header(host.header, revision: result.revision)
                response.hash = result.hash
                response.compactRevision = result.compactRevision
                done(.success(response))
            } catch let error as MVCCError {
                done(.failure(ServiceError(error)))
            } catch {
                done(.failure(ServiceError(.internal, "etcdserver: \(error)")))
            }
        }
    }

    func moveLeader(_ request: Etcdserverpb_MoveLeaderRequest, _ responder: UnaryResponder) {
        let host = self.host
        onLoop(responder) { (done: @escaping @Sendable (Result<Etcdserverpb_MoveLeaderResponse, ServiceError>) -> Void) in
            host.transferLeadershipOnLoop(to: request.targetID) { error in
                if let error { return done(.failure(error)) }
                var response = Etcdserverpb_MoveLeaderResponse()
                response.header = header(host.header, revision: host.lastKnownRevision)
                done(.success(response))
            }
        }
    }

    func defragment(_ request: Etcdserverpb_DefragmentRequest, _ responder: UnaryResponder) {
        let host = self.host
        // RocksDB reclaims space by compaction; run a full manual compaction off the member loop.
        NIOThreadPool.singleton.runIfActive(eventLoop: host.loop) {
            try host.engine.database.compactRange()
        }.whenComplete { _ in
            var response = Etcdserverpb_DefragmentResponse()
            response.header = header(host.header, revision: host.lastKnownRevision)
            responder.succeed(response)
        }
    }

    /// `Snapshot`: the state machine's backend pairs as one backup file, streamed in chunks,
    /// padded to a multiple of 512 bytes and followed by the SHA-256 of everything before it
    /// (the rule etcdctl's `snapshot save` checks).
    func snapshot(_ call: ServerCall) -> any ServerCallHandler {
        let host = self.host
        let handler = StreamingCall<Etcdserverpb_SnapshotRequest>(
            call: call,
            onMessage: { _ in
                host.loop.execute {
                    let file = BackupFile.encode(pairs: host.member.store.backendPairs())
                    let context = host.header
                    let revision = host.member.store.currentRevision
                    ChunkSender(call: call, data: file, chunkSize: 64 << 10) { remaining in
                        var response = Etcdserverpb_SnapshotResponse()
                        response.header = header(context, revision: revision)
                        response.remainingBytes = UInt64(remaining)
                        return response
                    }.start()
                }
            })
        return handler
    }
}

/// The type constraint of responses built on the member loop.
typealias SwiftProtobufMessageSendable = SwiftProtobuf.Message & Sendable

/// Streams a byte buffer as chunk messages, pausing while the call is not writable.
final class ChunkSender: @unchecked Sendable {
    let call: ServerCall
    let data: [UInt8]
    let chunkSize: Int
    let makeMessage: @Sendable (Int) -> Etcdserverpb_SnapshotResponse
    private var offset = 0

    init(call: ServerCall, data: [UInt8], chunkSize: Int, makeMessage: @escaping @Sendable (Int) -> Etcdserverpb_SnapshotResponse) {
        self.call = call
        self.data = data
        self.chunkSize = chunkSize
        self.makeMessage = makeMessage
    }

    func start() {
        call.onWritabilityChanged { writable in
            if writable { self.call.eventLoop.execute { self.pump() } }
        }
        call.eventLoop.execute { self.pump() }
    }

    private func pump() {
        while offset < data.count && call.isWritable && !call.isFinished {
            let end = min(offset + chunkSize, data.count)
            var message = makeMessage(data.count - end)
            message.blob = Data(data[offset..<end])
            call.send(message)
            offset = end
        }
        if offset >= data.count && !call.isFinished { call.finish(.ok) }
    }
}

/// The backup file `Maintenance.Snapshot` streams: a magic line, the snapshot codec's encoding
/// of every backend pair, zero padding to a multiple of 512 bytes, and the SHA-256 of all of it.
public enum BackupFile {
    static let magic = Array("statehouse-backup-v1\n".utf8)

    /// Encodes a backup of `pairs`.
    public static func encode(pairs: [([UInt8], [UInt8])]) -> [UInt8] {
        var body = magic
        let payload = SnapshotCodec.encode(pairs)
        var length: [UInt8] = []
        for shift in stride(from: 56, through: 0, by: -8) {
            length.append(UInt8(truncatingIfNeeded: UInt64(payload.count) >> UInt64(shift)))
        }
        body += length + payload
        body += [UInt8](repeating: 0, count: (512 - body.count % 512) % 512)
        return body + Array(SHA256.hash(data: body))
    }

    /// Decodes a backup file, checking its SHA-256.
    public static func decode(_ file: [UInt8]) throws -> [([UInt8], [UInt8])] {
        struct InvalidBackup: Error, CustomStringConvertible { var description: String }
        guard file.count >= magic.count + 8 + 32, file.count % 512 == 32 else {
            throw InvalidBackup(description: "not a Statehouse backup (size \(file.count) is not 512·n + 32)")
        }
        let body = Array(file.dropLast(32))
        guard Array(SHA256.hash(data: body)) == Array(file.suffix(32)) else {
            throw InvalidBackup(description: "the backup's SHA-256 does not match its contents")
        }
        guard Array(body.prefix(magic.count)) == magic else { throw InvalidBackup(description: "not a Statehouse backup") }
        var length = 0
        for byte in body[magic.count..<(magic.count + 8)] { length = length << 8 | Int(byte) }
        let start = magic.count + 8
        guard length >= 0, start + length <= body.count else { throw InvalidBackup(description: "truncated backup") }
        return try SnapshotCodec.decode(Array(body[start..<(start + length)]))
    }
}

/// CRC-32 (IEEE 802.3), for `Maintenance.Hash`.
struct CRC32 {
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }
    private var crc: UInt32 = 0xFFFF_FFFF

    mutating func update(_ bytes: [UInt8]) {
        for byte in bytes { crc = Self.table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
    }

    var value: UInt32 { crc ^ 0xFFFF_FFFF }
}
