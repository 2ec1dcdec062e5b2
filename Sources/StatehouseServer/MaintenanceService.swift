import EtcdMapping
import EtcdWire
import Foundation
import GRPCServer
import GRPCStatus
import NIOConcurrencyHelpers
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
        onLoop(responder, admin: true) { (done: @escaping @Sendable (Result<Etcdserverpb_HashResponse, ServiceError>) -> Void) in
            // etcd hashes its whole backend file; ours hashes every backend pair of the state
            // machine (keys, leases, members, alarms, client sessions) with CRC-32 (IEEE), read
            // from a snapshot pinned here, on a thread pool.
            offLoop(responder, done) { state in
                var response = Etcdserverpb_HashResponse()
                response.header = header(state.context, revision: state.revision)
                response.hash = try state.digest()
                return response
            }
        }
    }

    func hashKV(_ request: Etcdserverpb_HashKVRequest, _ responder: UnaryResponder) {
        onLoop(responder, admin: true) { (done: @escaping @Sendable (Result<Etcdserverpb_HashKVResponse, ServiceError>) -> Void) in
            offLoop(responder, done) { state in
                let result = try state.hashKV(revision: request.revision)
                var response = Etcdserverpb_HashKVResponse()
                response.header = header(state.context, revision: result.revision)
                response.hash = result.hash
                response.compactRevision = result.compactRevision
                return response
            }
        }
    }

    /// Pins the state (call on the member loop), then answers with `body` run on the thread pool.
    private func offLoop<Response: Sendable>(
        _ responder: UnaryResponder, _ done: @escaping @Sendable (Result<Response, ServiceError>) -> Void,
        _ body: @escaping @Sendable (PinnedState) throws -> Response
    ) {
        host.whenStateStored {
            let state: PinnedState
            do {
                state = try PinnedState(onLoopOf: self.host)
            } catch {
                return done(.failure(ServiceError(.internal, "etcdserver: \(error)")))
            }
            NIOThreadPool.singleton.runIfActive(eventLoop: responder.call.eventLoop) { try body(state) }.whenComplete { result in
                switch result {
                case .success(let response): done(.success(response))
                case .failure(let error as StateError): done(.failure(ServiceError(error)))
                case .failure(let error): done(.failure(ServiceError(.internal, "etcdserver: \(error)")))
                }
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
    /// (the rule etcdctl's `snapshot save` checks). The state is pinned on the member loop and
    /// read and encoded chunk by chunk on a thread pool (see ``BackupStreamer``).
    func snapshot(_ call: ServerCall) -> any ServerCallHandler {
        let host = self.host
        let streamer = NIOLockedValueBox<BackupStreamer?>(nil)
        let handler = StreamingCall<Etcdserverpb_SnapshotRequest>(
            call: call,
            onMessage: { _ in
                let startBackup: @Sendable () -> Void = {
                    let state: PinnedState
                    do {
                        state = try PinnedState(onLoopOf: host)
                    } catch {
                        return call.fail(ServiceError(.internal, "etcdserver: \(error)"))
                    }
                    BackupStreamer.start(call: call, state: state).whenComplete { result in
                        switch result {
                        case .success(let started): streamer.withLockedValue { $0 = started }
                        case .failure(let error): call.fail(ServiceError(.internal, "etcdserver: \(error)"))
                        }
                    }
                }
                host.loop.execute {
                    do throws(StateError) {
                        try host.checkAdminOnLoop(call)
                    } catch {
                        return call.fail(ServiceError(error))
                    }
                    host.whenStateStored(startBackup)
                }
            },
            onCancel: {
                call.eventLoop.execute { streamer.withLockedValue { $0 }?.callEnded() }
            })
        return handler
    }
}
