import EtcdWire
import Foundation
import GRPCServer
import GRPCStatus
import Recipes

/// `v3lockpb.Lock`: distributed locks held as keys attached to the caller's lease.
struct LockService: EtcdService {
    let host: MemberHost

    /// The recipe on behalf of `call` (its credentials are checked).
    private func recipe(_ call: ServerCall?) -> LockRecipe<HostRecipeBackend> {
        LockRecipe(backend: HostRecipeBackend(host: host, call: call))
    }

    func lock(_ request: V3lockpb_LockRequest, _ responder: UnaryResponder) {
        runRecipe(responder) {
            let lock = try await recipe(responder.call).lock(name: Array(request.name), lease: request.lease)
            var response = V3lockpb_LockResponse()
            response.header = header(revision: lock.revision)
            response.key = Data(lock.key)
            return response
        }
    }

    func unlock(_ request: V3lockpb_UnlockRequest, _ responder: UnaryResponder) {
        runRecipe(responder) {
            let revision = try await recipe(responder.call).unlock(key: Array(request.key))
            var response = V3lockpb_UnlockResponse()
            response.header = header(revision: revision)
            return response
        }
    }
}
