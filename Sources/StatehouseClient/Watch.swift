import AsyncAlgorithms
import EtcdWire
import Foundation
import GRPCCore
import GRPCProtobuf
import Logging
import Synchronization

/// One change to a watched key.
public struct WatchEvent: Sendable, Hashable {
    /// What happened to the key.
    public enum Kind: Sendable, Hashable {
        case put
        case delete
    }

    /// What happened to the key.
    public var kind: Kind
    /// The key after the change (for a delete: the key, its mod revision is the deletion's).
    public var kv: KeyValue
    /// The key before the change, if `prevKV` was asked for and the key existed.
    public var previous: KeyValue?

    /// The revision of the change.
    public var revision: Int64 { kv.modRevision }
}

/// Options of a watch.
public struct WatchOptions: Sendable, Hashable {
    /// The first revision to deliver (0: changes after the current revision).
    public var startRevision: Int64 = 0
    /// Deliver each key's previous value with the event.
    public var prevKV = false
    /// Leave out puts.
    public var noPut = false
    /// Leave out deletes.
    public var noDelete = false

    /// Options with the given values.
    public init(startRevision: Int64 = 0, prevKV: Bool = false, noPut: Bool = false, noDelete: Bool = false) {
        self.startRevision = startRevision
        self.prevKV = prevKV
        self.noPut = noPut
        self.noDelete = noDelete
    }
}

extension StatehouseClient {
    /// The changes to the keys in `range`, as an asynchronous sequence of events.
    ///
    /// The watch starts when iteration starts. When its stream breaks (the endpoint dies, the
    /// member loses its leader), it resumes on another endpoint from the revision after the
    /// last event delivered, so no event is lost or repeated. A start revision that has been
    /// compacted ends the sequence with a ``StatehouseError`` of code `compacted` whose
    /// ``StatehouseError/compactRevision`` tells the oldest revision still available.
    /// Events are delivered as fast as they are consumed: a slow consumer slows the stream
    /// (HTTP/2 flow control), it does not fill memory.
    public func watch(_ range: KeyRange, options: WatchOptions = WatchOptions()) -> WatchSequence {
        WatchSequence(client: self, range: range, options: options)
    }

    /// The changes to one key; see ``watch(_:options:)``.
    public func watch(key: some BytesConvertible, options: WatchOptions = WatchOptions()) -> WatchSequence {
        watch(.key(key), options: options)
    }

    /// The changes to every key under `prefix`; see ``watch(_:options:)``.
    public func watch(prefix: some BytesConvertible, options: WatchOptions = WatchOptions()) -> WatchSequence {
        watch(.prefix(prefix), options: options)
    }
}

/// The events of a watch; see ``StatehouseClient/watch(_:options:)``.
public struct WatchSequence: AsyncSequence, Sendable {
    public typealias Element = WatchEvent

    let client: StatehouseClient
    let range: KeyRange
    let options: WatchOptions

    public func makeAsyncIterator() -> Iterator {
        Iterator(subscription: WatchSubscription(client: client, range: range, options: options))
    }

    /// Iterates the events; the watch stops when the iterator is dropped.
    public struct Iterator: AsyncIteratorProtocol {
        let subscription: WatchSubscription
        var channelIterator: AsyncThrowingChannel<WatchEvent, any Error>.AsyncIterator

        init(subscription: WatchSubscription) {
            self.subscription = subscription
            channelIterator = subscription.channel.makeAsyncIterator()
        }

        public mutating func next() async throws -> WatchEvent? {
            do {
                guard let event = try await channelIterator.next() else {
                    if Task.isCancelled { throw StatehouseError(.cancelled, "the watch was cancelled") }
                    return nil
                }
                return event
            } catch {
                throw StatehouseError.from(error)
            }
        }
    }
}

/// The background side of one watch iterator: the Watch stream, resumed across endpoints.
final class WatchSubscription: Sendable {
    let channel = AsyncThrowingChannel<WatchEvent, any Error>()
    private let task = Synchronization.Mutex<BackgroundTask?>(nil)

    init(client: StatehouseClient, range: KeyRange, options: WatchOptions) {
        let channel = self.channel
        let task = client.background.spawn { [range, options] in
            await Self.run(client: client, range: range, options: options, channel: channel)
        }
        if let task {
            self.task.withLock { $0 = task }
        } else {
            channel.fail(StatehouseError(.unavailable, "the client is shut down"))
        }
    }

    deinit {
        task.withLock { $0 }?.cancel()
        channel.finish()
    }

    /// Keeps a Watch stream open until the watch ends, resuming after the last delivered revision.
    private static func run(
        client: StatehouseClient, range: KeyRange, options: WatchOptions,
        channel: AsyncThrowingChannel<WatchEvent, any Error>
    ) async {
        let next = Cursor(options.startRevision)
        var attempt = 0
        while !Task.isCancelled {
            let connection: EndpointConnection
            do { connection = try client.chooseConnection() } catch {
                channel.fail(error)
                return
            }
            let established = Cursor(0)
            do {
                try await stream(
                    on: connection, range: range, options: options, next: next, established: established,
                    channel: channel)
                // The server ended the stream: open it again.
            } catch let error as StatehouseError where error.code == .compacted {
                channel.fail(error)
                return
            } catch {
                if Task.isCancelled { break }
                let failure = StatehouseError.from(error)
                if failure.isEndpointFailure { connection.recordFailure() }
                // A refused token: the next stream authenticates again.
                _ = client.dropTokenIfRefused(failure)
                client.logger.debug(
                    "watch stream failed; resuming", metadata: ["endpoint": "\(connection.endpoint)", "error": "\(failure)"])
            }
            client.skip(connection)
            if established.value != 0 { attempt = 0 }
            let pause = client.nextDelay(attempt: attempt)
            attempt += 1
            try? await Task.sleep(for: pause)
        }
        channel.finish()
    }

    private static func stream(
        on connection: EndpointConnection, range: KeyRange, options: WatchOptions, next: Cursor,
        established: Cursor, channel: AsyncThrowingChannel<WatchEvent, any Error>
    ) async throws {
        var create = Etcdserverpb_WatchCreateRequest()
        create.key = Data(range.key)
        create.rangeEnd = Data(range.rangeEnd)
        create.startRevision = next.value
        create.prevKv = options.prevKV
        if options.noPut { create.filters.append(.noput) }
        if options.noDelete { create.filters.append(.nodelete) }
        var createRequest = Etcdserverpb_WatchRequest()
        createRequest.createRequest = create
        let request = createRequest
        let done = Signal<Void>()
        var callOptions = CallOptions.defaults
        callOptions.waitForReady = false
        try await connection.grpc.bidirectionalStreaming(
            // A member without a leader cancels the watch, so it resumes on one that has one.
            request: StreamingClientRequest(of: Etcdserverpb_WatchRequest.self, metadata: ["hasleader": "true"]) {
                writer in
                try await writer.write(request)
                _ = await done.wait()
            },
            descriptor: Methods.watch,
            serializer: ProtobufSerializer<Etcdserverpb_WatchRequest>(),
            deserializer: ProtobufDeserializer<Etcdserverpb_WatchResponse>(),
            options: callOptions
        ) { response in
            defer { done.fire(()) }
            for try await message in response.messages {
                if message.created {
                    established.update { $0 = 1 }
                    connection.recordSuccess()
                    next.update { if $0 == 0 { $0 = message.header.revision + 1 } }
                }
                if message.canceled {
                    if message.compactRevision > 0 {
                        var error = StatehouseError(
                            .compacted, "etcdserver: mvcc: required revision has been compacted", grpcCode: .outOfRange)
                        error.compactRevision = message.compactRevision
                        throw error
                    }
                    throw StatehouseError(
                        .unavailable, message.cancelReason.isEmpty ? "the server cancelled the watch" : message.cancelReason)
                }
                for event in message.events {
                    let delivered = WatchEvent(
                        kind: event.type == .delete ? .delete : .put, kv: KeyValue(event.kv),
                        previous: event.hasPrevKv ? KeyValue(event.prevKv) : nil)
                    await channel.send(delivered)
                    if Task.isCancelled { return }
                    next.update { $0 = max($0, delivered.revision + 1) }
                }
                if message.events.isEmpty, !message.created {
                    // A progress notification: every change up to its revision has been sent.
                    next.update { if $0 != 0 { $0 = max($0, message.header.revision + 1) } }
                }
            }
        }
    }
}

/// A number shared between a watch's loop and its stream handler.
final class Cursor: Sendable {
    private let state: Synchronization.Mutex<Int64>

    init(_ value: Int64) {
        state = Synchronization.Mutex(value)
    }

    var value: Int64 { state.withLock { $0 } }

    func update(_ body: (inout Int64) -> Void) {
        state.withLock { body(&$0) }
    }
}
