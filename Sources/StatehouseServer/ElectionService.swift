import EtcdMapping
import EtcdWire
import Foundation
import GRPCServer
import GRPCStatus
import Recipes

/// `v3electionpb.Election`: leader election on keys attached to the candidates' leases.
struct ElectionService: EtcdService {
    let host: MemberHost

    /// The recipe on behalf of `call` (its credentials are checked).
    private func recipe(_ call: ServerCall?) -> ElectionRecipe<HostRecipeBackend> {
        ElectionRecipe(backend: HostRecipeBackend(host: host, call: call))
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

    func campaign(_ request: V3electionpb_CampaignRequest, _ responder: UnaryResponder) {
        runRecipe(responder) {
            let leadership = try await recipe(responder.call).campaign(
                name: Array(request.name), lease: request.lease, value: Array(request.value))
            var response = V3electionpb_CampaignResponse()
            response.header = header(revision: leadership.revision)
            response.leader = Self.wire(leadership.leader)
            return response
        }
    }

    func proclaim(_ request: V3electionpb_ProclaimRequest, _ responder: UnaryResponder) {
        runRecipe(responder) {
            guard request.hasLeader else { throw RecipeError.missingLeaderKey }
            let revision = try await recipe(responder.call).proclaim(Self.leaderKey(request.leader), value: Array(request.value))
            var response = V3electionpb_ProclaimResponse()
            response.header = header(revision: revision)
            return response
        }
    }

    func leader(_ request: V3electionpb_LeaderRequest, _ responder: UnaryResponder) {
        runRecipe(responder) {
            let observation = try await recipe(responder.call).leader(name: Array(request.name))
            var response = V3electionpb_LeaderResponse()
            response.header = header(revision: observation.revision)
            response.kv = Mvccpb_KeyValue(observation.kv)
            return response
        }
    }

    func resign(_ request: V3electionpb_ResignRequest, _ responder: UnaryResponder) {
        runRecipe(responder) {
            guard request.hasLeader else { throw RecipeError.missingLeaderKey }
            let revision = try await recipe(responder.call).resign(Self.leaderKey(request.leader))
            var response = V3electionpb_ResignResponse()
            response.header = header(revision: revision)
            return response
        }
    }

    /// `Observe`: streams the current leader and every change, until the client cancels.
    func observe(_ call: ServerCall) -> any ServerCallHandler {
        let recipe = self.recipe(call)
        let service = self
        let cancellation = CancellationHooks()
        return StreamingCall<V3electionpb_LeaderRequest>(
            call: call,
            onMessage: { request in
                let task = Task {
                    do {
                        for try await observation in recipe.observe(name: Array(request.name)) {
                            var response = V3electionpb_LeaderResponse()
                            response.header = service.header(revision: observation.revision)
                            response.kv = Mvccpb_KeyValue(observation.kv)
                            call.send(response)
                        }
                        call.finish(.ok)
                    } catch {
                        call.fail(recipeServiceError(error))
                    }
                }
                cancellation.add { task.cancel() }
            },
            onCancel: { cancellation.fire() })
    }
}
