import EtcdMapping
import EtcdWire
import Foundation
import GRPCServer
import GRPCStatus
import NIOCore
import NIOPosix
import Primitives
import RaftCore
import ReplicatedMember
import RocksDB
import StateMachine
import StorageRocksDB

/// `etcdserverpb.Maintenance`: status, alarms, hashes, leader transfer, defragmentation and
/// backups.
struct MaintenanceService: EtcdService {
    let host: MemberHost
    /// The version reported by Status and `/version`.
    static let apiVersion = "3.4.0"

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
        onLoop(responder, admin: request.action != .get) {
            (done: @escaping @Sendable (Result<Etcdserverpb_AlarmResponse, ServiceError>) -> Void) in
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
        onLoop(responder, admin: true) { (done: @escaping @Sendable (Result<Etcdserverpb_HashResponse, ServiceError>) -> Void) in
            // etcd hashes its whole backend file; ours hashes every backend pair of the state
            // machine (keys, leases, members, alarms, client sessions) with CRC-32 (IEEE).
            var response = Etcdserverpb_HashResponse()
            response.header = header(host.header, revision: host.member.store.currentRevision)
            response.hash = host.member.store.digest()
            done(.success(response))
        }
    }

    func hashKV(_ request: Etcdserverpb_HashKVRequest, _ responder: UnaryResponder) {
        let host = self.host
        onLoop(responder, admin: true) { (done: @escaping @Sendable (Result<Etcdserverpb_HashKVResponse, ServiceError>) -> Void) in
            do {
                let result = try host.member.store.hashKV(revision: request.revision)
                var response = Etcdserverpb_HashKVResponse()
                response.header = header(host.header, revision: result.revision)
                response.hash = result.hash
                response.compactRevision = result.compactRevision
                done(.success(response))
            } catch let error as StateError {
                done(.failure(ServiceError(error)))
            } catch {
                done(.failure(ServiceError(.internal, "etcdserver: \(error)")))
            }
        }
    }

    func moveLeader(_ request: Etcdserverpb_MoveLeaderRequest, _ responder: UnaryResponder) {
        let host = self.host
        onLoop(responder, admin: true) { (done: @escaping @Sendable (Result<Etcdserverpb_MoveLeaderResponse, ServiceError>) -> Void) in
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
        // Admin only while auth is enabled; RocksDB reclaims space by compaction, which runs off
        // the member loop.
        host.loop.submit { () throws -> Void in try host.checkAdminOnLoop(responder.call) }.flatMap {
            NIOThreadPool.singleton.runIfActive(eventLoop: host.loop) {
                try host.engine.database.compactRange()
            }
        }.whenComplete { result in
            if case .failure(let error as StateError) = result { return responder.fail(ServiceError(error)) }
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
                    do throws(StateError) {
                        try host.checkAdminOnLoop(call)
                    } catch {
                        return call.fail(ServiceError(error))
                    }
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
