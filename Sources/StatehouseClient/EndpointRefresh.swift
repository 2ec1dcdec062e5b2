import GRPCCore
import Logging

extension StatehouseClient {
    /// The endpoints the client calls: the configured ones, then those
    /// ``refreshEndpoints()`` added.
    public var endpoints: [Endpoint] { connections.map(\.endpoint) }

    /// Reads the member list and adds an endpoint for every client URL the client does not call
    /// yet, so that members added to the cluster after the client started are used too.
    ///
    /// Endpoints are only added: a member that was removed keeps its endpoint, whose circuit
    /// breaker skips it once calls to it fail. URLs the client cannot call (`https`) are left
    /// out.
    ///
    /// - Returns: The endpoints added by this call.
    @discardableResult
    public func refreshEndpoints() async throws -> [Endpoint] {
        let advertised = try await members().flatMap(\.clientURLs).compactMap(Endpoint.init)
        var added: [Endpoint] = []
        for endpoint in advertised {
            guard let connection = try addConnection(to: endpoint) else { continue }
            let spawned = background.spawn {
                do { try await connection.grpc.runConnections() } catch {
                    self.logger.debug(
                        "an added endpoint's connection ended", metadata: ["endpoint": "\(endpoint)", "error": "\(error)"])
                }
            }
            if spawned == nil || isShutDown { connection.grpc.beginGracefulShutdown() }
            added.append(endpoint)
            logger.info("added an endpoint from the member list", metadata: ["endpoint": "\(endpoint)"])
        }
        return added
    }

    /// Starts refreshing the endpoints every ``StatehouseClientConfiguration/endpointRefreshInterval``
    /// in the background, if it is set.
    func startRefreshingEndpoints() {
        guard let interval = configuration.endpointRefreshInterval else { return }
        background.spawn {
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: interval)
                    try await self.refreshEndpoints()
                } catch  where !Task.isCancelled {
                    self.logger.debug("refreshing the endpoints failed", metadata: ["error": "\(error)"])
                } catch {
                    return
                }
            }
        }
    }
}
