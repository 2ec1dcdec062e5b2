import EtcdMapping
import EtcdWire
import Foundation
import GRPCServer
import GRPCStatus
import MVCC
import NIOCore
import Node
import Recipes

/// The Lock and Election recipes' view of the member: linearizable reads and transactions
/// through the log, and waits fed by the watch hub.
struct HostRecipeBackend: RecipeBackend {
    let host: MemberHost

    struct Failure: Error {
        let error: ServiceError
    }

    private func submit(_ request: ClientRequest) async throws -> ClientResponse {
        let response = await withCheckedContinuation { (continuation: CheckedContinuation<ClientResponse, Never>) in
            host.submit(request) { response, _ in continuation.resume(returning: response) }
        }
        if case .failure(let error) = response { throw Failure(error: ServiceError(error)) }
        return response
    }

    func txn(_ request: TxnRequest) async throws -> TxnResponse {
        guard case .write(.txn(let response)) = try await submit(.write(.txn(request))) else {
            throw Failure(error: ServiceError(.internal, "etcdserver: unexpected response"))
        }
        return response
    }

    func range(_ request: RangeRequest) async throws -> RangeResponse {
        guard case .range(let response) = try await submit(.range(request)) else {
            throw Failure(error: ServiceError(.internal, "etcdserver: unexpected response"))
        }
        return response
    }

    func waitForDeletion(of key: [UInt8], after revision: Int64) async throws {
        let stream = events(key: key, rangeEnd: [], from: revision + 1)
        // The key may already be gone at the current revision.
        let current = try await range(RangeRequest(key: key, serializable: true))
        if current.kvs.isEmpty { return }
        for try await batch in stream where batch.contains(where: { $0.kind == .delete && $0.kv.key == key }) {
            return
        }
        try Task.checkCancellation()
    }

    func leaseRemaining(_ id: Int64) async throws -> Int64? {
        guard case .leaseTimeToLive(_, let remaining, _, _) = try await submit(.leaseTimeToLive(id: id, keys: false)) else {
            throw Failure(error: ServiceError(.internal, "etcdserver: unexpected response"))
        }
        return remaining < 0 ? nil : remaining
    }

    func watch(prefix: [UInt8], from revision: Int64) -> AsyncThrowingStream<[Event], any Error> {
        events(key: prefix, rangeEnd: Self.prefixEnd(prefix), from: revision)
    }

    /// Events on a range from `revision`, one element per delivered batch (whole revisions).
    private func events(key: [UInt8], rangeEnd: [UInt8], from revision: Int64) -> AsyncThrowingStream<[Event], any Error> {
        let (stream, continuation) = AsyncThrowingStream<[Event], any Error>.makeStream()
        let host = self.host
        host.loop.execute {
            let handle = host.watches.subscribe(
                key: key, rangeEnd: rangeEnd, from: revision,
                deliver: { continuation.yield($0) },
                cancel: { continuation.finish(throwing: Failure(error: ServiceError($0))) })
            continuation.onTermination = { _ in host.loop.execute { host.watches.unsubscribe(handle) } }
        }
        return stream
    }

    static func prefixEnd(_ prefix: [UInt8]) -> [UInt8] {
        var end = prefix
        while let last = end.last {
            if last < 0xFF {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return [0]
    }
}

/// `v3lockpb.Lock` and `v3electionpb.Election`. Each call runs its recipe in a task of its own,
/// cancelled when the client cancels the call.
struct RecipeServices: Sendable {
    let host: MemberHost

    private var lockRecipe: LockRecipe<HostRecipeBackend> { LockRecipe(backend: HostRecipeBackend(host: host)) }
    private var electionRecipe: ElectionRecipe<HostRecipeBackend> { ElectionRecipe(backend: HostRecipeBackend(host: host)) }

    private func header(revision: Int64) -> Etcdserverpb_ResponseHeader {
        let context = host.header
        return EtcdMapping.header(
            clusterID: context.clusterID, memberID: context.memberID, revision: revision, raftTerm: context.raftTerm)
    }

    static func serviceError(_ error: any Error) -> ServiceError {
        if let failure = error as? HostRecipeBackend.Failure { return failure.error }
        if let recipe = error as? RecipeError { return ServiceError(recipe.code, recipe.message) }
        if let mvcc = error as? MVCCError { return ServiceError(mvcc) }
        let (code, message) = EtcdMapping.status(for: error)
        return ServiceError(code, message)
    }

    /// Runs `body` in a task and answers with its result.
    private func run(
        _ responder: UnaryResponder, _ body: @escaping @Sendable () async throws -> any SwiftProtobufMessageSendable
    ) {
        let task = Task {
            do {
                responder.succeed(try await body())
            } catch {
                responder.fail(Self.serviceError(error))
            }
        }
        responder.onCancel { task.cancel() }
    }

    static func leaderKey(_ wire: V3electionpb_LeaderKey) -> LeaderKey {
        LeaderKey(name: Array(wire.name), key: Array(wire.key), createRevision: wire.rev, lease: wire.lease)
    }

    static func wire(_ key: LeaderKey) -> V3electionpb_LeaderKey {
        var wire = V3electionpb_LeaderKey()
        wire.name = Data(key.name)
        wire.key = Data(key.key)
        wire.rev = key.createRevision
        wire.lease = key.lease
        return wire
    }

    func lock(_ request: V3lockpb_LockRequest, _ responder: UnaryResponder) {
        run(responder) {
            let lock = try await lockRecipe.lock(name: Array(request.name), lease: request.lease)
            var response = V3lockpb_LockResponse()
            response.header = header(revision: lock.revision)
            response.key = Data(lock.key)
            return response
        }
    }

    func unlock(_ request: V3lockpb_UnlockRequest, _ responder: UnaryResponder) {
        run(responder) {
            let revision = try await lockRecipe.unlock(key: Array(request.key))
            var response = V3lockpb_UnlockResponse()
            response.header = header(revision: revision)
            return response
        }
    }

    func campaign(_ request: V3electionpb_CampaignRequest, _ responder: UnaryResponder) {
        run(responder) {
            let leadership = try await electionRecipe.campaign(
                name: Array(request.name), lease: request.lease, value: Array(request.value))
            var response = V3electionpb_CampaignResponse()
            response.header = header(revision: leadership.revision)
            response.leader = Self.wire(leadership.leader)
            return response
        }
    }

    func proclaim(_ request: V3electionpb_ProclaimRequest, _ responder: UnaryResponder) {
        run(responder) {
            guard request.hasLeader else { throw RecipeError.missingLeaderKey }
            let revision = try await electionRecipe.proclaim(Self.leaderKey(request.leader), value: Array(request.value))
            var response = V3electionpb_ProclaimResponse()
            response.header = header(revision: revision)
            return response
        }
    }

    func leader(_ request: V3electionpb_LeaderRequest, _ responder: UnaryResponder) {
        run(responder) {
            let observation = try await electionRecipe.leader(name: Array(request.name))
            var response = V3electionpb_LeaderResponse()
            response.header = header(revision: observation.revision)
            response.kv = Mvccpb_KeyValue(observation.kv)
            return response
        }
    }

    func resign(_ request: V3electionpb_ResignRequest, _ responder: UnaryResponder) {
        run(responder) {
            guard request.hasLeader else { throw RecipeError.missingLeaderKey }
            let revision = try await electionRecipe.resign(Self.leaderKey(request.leader))
            var response = V3electionpb_ResignResponse()
            response.header = header(revision: revision)
            return response
        }
    }

    /// `Observe`: streams the current leader and every change, until the client cancels.
    func observe(_ call: ServerCall) -> any ServerCallHandler {
        let recipe = electionRecipe
        let services = self
        let cancellation = CancellationHooks()
        return StreamingCall<V3electionpb_LeaderRequest>(
            call: call,
            onMessage: { request in
                let task = Task {
                    do {
                        for try await observation in recipe.observe(name: Array(request.name)) {
                            var response = V3electionpb_LeaderResponse()
                            response.header = services.header(revision: observation.revision)
                            response.kv = Mvccpb_KeyValue(observation.kv)
                            call.send(response)
                        }
                        call.finish(.ok)
                    } catch {
                        call.fail(Self.serviceError(error))
                    }
                }
                cancellation.add { task.cancel() }
            },
            onCancel: { cancellation.fire() })
    }
}
