import ServiceLifecycle

/// A client is a swift-service-lifecycle service: add it to a `ServiceGroup` and the group
/// runs it, and shuts it down gracefully on SIGTERM or when another service ends.
///
/// ```swift
/// let client = try StatehouseClient(configuration: configuration)
/// let group = ServiceGroup(services: [client, orders], logger: logger)
/// try await group.run()
/// ```
///
/// On graceful shutdown the client stops its background work (watches, keep-alives), lets calls
/// in flight finish, refuses new ones with `unavailable`, and ``run()`` returns. Services that
/// use the client should come after it in the group, so they shut down first.
extension StatehouseClient: Service {}
