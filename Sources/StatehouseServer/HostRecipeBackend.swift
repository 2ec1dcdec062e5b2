import EtcdMapping
import EtcdWire
import Foundation
import GRPCServer
import GRPCStatus
import NIOCore
import Primitives
import Recipes
import ReplicatedMember
import StateMachine

/// The Lock and Election recipes' view of the member: linearizable reads and transactions
/// through the log, and waits fed by the watch hub.
struct HostRecipeBackend: RecipeBackend {
    let host: MemberHost
    /// The call the recipe serves: its credentials are checked on every read and write.
    var call: ServerCall?

    struct Failure: Error {
        let error: ServiceError
    }

    private func submit(_ request: ClientRequest) async throws -> ClientResponse {
        let response = await withCheckedContinuation { (continuation: CheckedContinuation<ClientResponse, Never>) in
            host.submit(request, call: call) { response, _ in continuation.resume(returning: response) }
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
        events(key: prefix, rangeEnd: prefixEnd(prefix), from: revision)
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
}

extension EtcdService {
    /// A response header with the member's identity and term, at `revision`.
    func header(revision: Int64) -> Etcdserverpb_ResponseHeader { header(host.header, revision: revision) }

    /// Runs a recipe call in a task of its own, cancelled when the client cancels the call, and
    /// answers with its result.
    func runRecipe(
        _ responder: UnaryResponder, _ body: @escaping @Sendable () async throws -> any SwiftProtobufMessageSendable
    ) {
        let task = Task {
            do {
                responder.succeed(try await body())
            } catch {
                responder.fail(recipeServiceError(error))
            }
        }
        responder.onCancel { task.cancel() }
    }
}

/// The status etcd's Lock and Election services answer `error` with.
func recipeServiceError(_ error: any Error) -> ServiceError {
    if let failure = error as? HostRecipeBackend.Failure { return failure.error }
    // etcd sends these plain Go errors with code `Unknown` and the error text as message.
    if let recipe = error as? RecipeError { return ServiceError(.unknown, recipe.message) }
    if let mvcc = error as? StateError { return ServiceError(mvcc) }
    let (code, message) = EtcdMapping.status(for: error)
    return ServiceError(code, message)
}
