import EtcdMapping
import EtcdWire
import Foundation
import GRPCServer
import GRPCStatus
import NIOCore
import Prometheus
import ReplicatedMember
import StateMachine
import SwiftProtobuf

/// One open `Watch` stream and its watchers. Confined to the member loop.
final class WatchStream: @unchecked Sendable {
    struct Watcher {
        var id: Int64
        var prevKV: Bool
        var progressNotify: Bool
        /// The key range, filters and delivery position (the rule the simulator checks too).
        var cursor: WatchCursor
        /// The catch-up window whose values are being read off the loop, if one is: the watcher
        /// plans no other window until that one is delivered.
        var catchUpRead: UInt64?
        var synced: Bool { cursor.synced }
    }

    let call: ServerCall
    let requiresLeader: Bool
    var watchers: [Int64: Watcher] = [:]
    var nextWatchID: Int64 = 0
    var writable = true
    var closed = false
    /// Whether the next catch-up window of this stream's unsynced watchers is scheduled.
    var catchUpScheduled = false
    var ticksWithoutLeader: UInt64 = 0
    /// Requests that arrived while a create waits for its caller's credentials, answered in
    /// order once it is done (clients match create responses to requests by order); nil when
    /// nothing waits.
    var deferred: [Etcdserverpb_WatchRequest]?

    init(call: ServerCall, requiresLeader: Bool) {
        self.call = call
        self.requiresLeader = requiresLeader
    }
}

/// The watch registry: matches applied events against every watcher, replays history from the
/// MVCC store, and keeps slow streams from buffering without bound. Runs on the member loop.
///
/// A stream whose HTTP/2 window is exhausted stops receiving events; its watchers fall out of
/// sync and, once the stream drains, catch up from the store's history (etcd's "victim" and
/// "unsynced" watchers). A watcher whose next revision was compacted meanwhile is cancelled
/// with `compact_revision`, as etcd does.
final class WatchHub: @unchecked Sendable {
    weak var host: MemberHost?
    private var streams: [ObjectIdentifier: WatchStream] = [:]
    /// Events per catch-up response.
    let catchUpBatch = 1_000
    /// Revisions an unsynced watcher catches up by per turn of the member loop (etcd syncs 1,000
    /// revisions at a time), so that a watcher far behind never holds the loop for its whole gap.
    let catchUpWindow: Int64 = 1_000
    /// The number of the next catch-up window read off the loop.
    private var nextCatchUpRead: UInt64 = 1
    /// Ticks between progress notifications (etcd: 10 minutes).
    var progressIntervalTicks: UInt64 = 6_000

    var watcherCount: Int { streams.values.reduce(0) { $0 + $1.watchers.count } + subscribers.count }

    /// A server-internal watcher (the Lock and Election services): gets matching events of every
    /// batch from `nextRevision` on, in order, on the member loop.
    struct Subscriber {
        var cursor: WatchCursor
        var deliver: ([Event]) -> Void
        var cancel: (StateError) -> Void
    }
    private var subscribers: [UInt64: Subscriber] = [:]
    private var nextSubscriberID: UInt64 = 1

    /// Subscribes to events on a key range from `revision` on (history first). Returns a handle
    /// for ``unsubscribe(_:)``; `cancel` runs if the revision is compacted.
    func subscribe(
        key: [UInt8], rangeEnd: [UInt8], from revision: Int64, deliver: @escaping ([Event]) -> Void,
        cancel: @escaping (StateError) -> Void
    ) -> UInt64 {
        let id = nextSubscriberID
        nextSubscriberID += 1
        guard let store = host?.member.store else { return id }
        let start = max(revision, 1)
        if start <= store.currentRevision {
            do {
                let history = try store.events(from: start, key: key, rangeEnd: rangeEnd)
                if !history.isEmpty { deliver(history) }
            } catch {
                cancel(error)
                return id
            }
        }
        subscribers[id] = Subscriber(
            cursor: WatchCursor(key: key, rangeEnd: rangeEnd, startRevision: 0, currentRevision: store.currentRevision),
            deliver: deliver, cancel: cancel)
        return id
    }

    func unsubscribe(_ id: UInt64) { subscribers[id] = nil }

    private func publishToSubscribers(_ events: [Event], revision: Int64) {
        for id in subscribers.keys.sorted() {
            guard var subscriber = subscribers[id] else { continue }
            let matching = subscriber.cursor.publish(events, revision: revision)
            subscribers[id] = subscriber
            if !matching.isEmpty { subscriber.deliver(matching) }
        }
    }

    func open(_ stream: WatchStream) {
        streams[ObjectIdentifier(stream)] = stream
    }

    func close(_ stream: WatchStream) {
        stream.closed = true
        streams[ObjectIdentifier(stream)] = nil
    }

    func closeAll() {
        for stream in streams.values {
            stream.closed = true
            stream.call.finish(.unavailable, message: "etcdserver: server stopped")
        }
        streams.removeAll()
    }

    private func responseHeader(revision: Int64? = nil) -> Etcdserverpb_ResponseHeader {
        guard let host else { return Etcdserverpb_ResponseHeader() }
        let context = host.header
        return EtcdMapping.header(
            clusterID: context.clusterID, memberID: context.memberID,
            revision: revision ?? host.member.store.currentRevision, raftTerm: context.raftTerm)
    }

    private func send(_ response: Etcdserverpb_WatchResponse, on stream: WatchStream) {
        guard !stream.closed, let bytes: [UInt8] = try? response.serializedBytes() else { return }
        stream.call.send(bytes)
    }

    // MARK: - Requests

    func handle(_ request: Etcdserverpb_WatchRequest, on stream: WatchStream) {
        guard !stream.closed else { return }
        if stream.deferred != nil {
            stream.deferred?.append(request)
            return
        }
        switch request.requestUnion {
        case .createRequest(let create)?: self.create(create, on: stream)
        case .cancelRequest(let cancel)?: self.cancel(cancel.watchID, on: stream)
        case .progressRequest?: progress(on: stream)
        case nil: break
        }
    }

    /// Creates a watcher. With auth enabled the caller's read permission is checked first; that
    /// may wait for this member to learn the caller's token (``MemberHost/withCredentialsOnLoop(of:_:)``),
    /// and the stream's later requests wait with it.
    private func create(_ request: Etcdserverpb_WatchCreateRequest, on stream: WatchStream) {
        guard let host, host.member.store.authState.isEnabled else {
            create(request, on: stream, by: .success(.anonymous))
            return
        }
        stream.deferred = []
        host.withCredentialsOnLoop(of: stream.call) { resolved in
            self.create(request, on: stream, by: resolved)
            var later = stream.deferred ?? []
            stream.deferred = nil
            while !later.isEmpty, stream.deferred == nil {
                self.handle(later.removeFirst(), on: stream)
            }
            stream.deferred?.insert(contentsOf: later, at: 0)
        }
    }

    private func create(
        _ request: Etcdserverpb_WatchCreateRequest, on stream: WatchStream, by credentials: Result<AuthInfo, StateError>
    ) {
        guard !stream.closed, let store = host?.member.store else { return }
        var response = Etcdserverpb_WatchResponse()
        response.header = responseHeader()
        response.created = true
        var id = request.watchID
        if id == 0 {
            while stream.watchers[stream.nextWatchID] != nil { stream.nextWatchID += 1 }
            id = stream.nextWatchID
            stream.nextWatchID += 1
        } else if stream.watchers[id] != nil || id < 0 {
            // etcd: a watch ID already in use on this stream is refused.
            response.watchID = id
            response.canceled = true
            response.cancelReason = "etcdserver: duplicate watch ID"
            send(response, on: stream)
            return
        }
        var key = [UInt8](request.key)
        var rangeEnd = [UInt8](request.rangeEnd)
        if key.isEmpty && rangeEnd == [0] { key = [0] }
        if rangeEnd.isEmpty == false && rangeEnd != [0] && !key.lexicographicallyPrecedes(rangeEnd) {
            rangeEnd = []  // an empty range watches nothing in etcd; a single key is the closest valid reading
        }
        if store.authState.isEnabled {
            // etcd checks read permission on the watched range when the watch is created, and
            // answers a refusal with a created-and-canceled response for watch ID -1.
            do throws(StateError) {
                try store.checkPermission(try credentials.get(), for: .range(RangeRequest(key: key, rangeEnd: rangeEnd)))
            } catch {
                response.watchID = -1
                response.canceled = true
                response.cancelReason = error.message
                send(response, on: stream)
                return
            }
        }
        var watcher = WatchStream.Watcher(
            id: id, prevKV: request.prevKv, progressNotify: request.progressNotify,
            cursor: WatchCursor(
                key: key, rangeEnd: rangeEnd, noPut: request.filters.contains(.noput),
                noDelete: request.filters.contains(.nodelete), startRevision: request.startRevision,
                currentRevision: store.currentRevision))
        response.watchID = id
        send(response, on: stream)
        stream.watchers[id] = watcher
        if !watcher.synced {
            catchUp(&watcher, on: stream)
            if stream.watchers[id] != nil { stream.watchers[id] = watcher }
        }
    }

    private func cancel(_ id: Int64, on stream: WatchStream) {
        guard stream.watchers.removeValue(forKey: id) != nil else { return }
        var response = Etcdserverpb_WatchResponse()
        response.header = responseHeader()
        response.watchID = id
        response.canceled = true
        send(response, on: stream)
    }

    private func progress(on stream: WatchStream) {
        // etcd 3.4 answers only when every watcher of the stream is in sync.
        guard stream.watchers.values.allSatisfy(\.synced) else { return }
        var response = Etcdserverpb_WatchResponse()
        response.header = responseHeader()
        response.watchID = -1
        send(response, on: stream)
    }

    // MARK: - Delivery

    private func wireEvents(_ events: [Event], for watcher: WatchStream.Watcher) -> [Mvccpb_Event] {
        events.map { event in
            var wire = Mvccpb_Event(event)
            if !watcher.prevKV { wire.clearPrevKv() }
            return wire
        }
    }

    /// Delivers a batch's events (all applied, in revision order) to synced watchers.
    func publish(_ events: [Event], revision: Int64) {
        publishToSubscribers(events, revision: revision)
        for stream in streams.values {
            for id in stream.watchers.keys.sorted() {
                guard var watcher = stream.watchers[id], watcher.synced else { continue }
                // A slow consumer (stream not writable) falls out of sync and catches up from
                // history later.
                let matching = watcher.cursor.publish(events, revision: revision, writable: stream.writable)
                stream.watchers[id] = watcher
                if !matching.isEmpty {
                    var response = Etcdserverpb_WatchResponse()
                    response.header = responseHeader(revision: revision)
                    response.watchID = id
                    response.events = wireEvents(matching, for: watcher)
                    send(response, on: stream)
                }
            }
        }
    }

    /// Replays one window of history (at most ``catchUpWindow`` revisions and about
    /// ``catchUpBatch`` events) to an unsynced watcher; if it is still behind, schedules the
    /// next window on a later turn of the member loop. Cancels it (with the compaction revision)
    /// if its next revision was compacted.
    ///
    /// The window is planned on the loop from the change log and the key index; a window that
    /// needs more values from RocksDB than a range may read in place is read on the thread pool
    /// from a snapshot pinned now (``MemberHost/readOffLoop(_:then:)``) and delivered back on the
    /// loop, so a watch from revision 1 over a long history never holds up Raft.
    private func catchUp(_ watcher: inout WatchStream.Watcher, on stream: WatchStream) {
        guard let host, stream.writable, !stream.closed, watcher.catchUpRead == nil else { return }
        let store = host.member.store
        switch watcher.cursor.planCatchUp(from: store, window: catchUpWindow, batch: catchUpBatch) {
        case .compacted(let compactedRevision):
            var response = Etcdserverpb_WatchResponse()
            response.header = responseHeader()
            response.watchID = watcher.id
            response.canceled = true
            response.compactRevision = compactedRevision
            response.cancelReason = StateError.compacted.message
            send(response, on: stream)
            stream.watchers[watcher.id] = nil
        case .window(let window) where window.events.unreadValueCount <= MemberHost.maxValuesReadOnLoop:
            let events = watcher.cursor.finishCatchUp(window, reading: store.backendReader, currentRevision: store.currentRevision)
            deliverCatchUp(events, to: watcher, on: stream)
        case .window(let window):
            let read = nextCatchUpRead
            nextCatchUpRead += 1
            watcher.catchUpRead = read
            host.metrics.watchCatchUpsReadOffLoop.increment()
            let id = watcher.id
            host.readOffLoop({ values in
                var done = window
                done.events.readValues(through: values)
                return done
            }) { done in
                host.loop.execute { self.finishCatchUp(read, of: id, done, on: stream) }
            }
        }
    }

    /// Catch-up window `read` of watcher `id` was read off the loop: the cursor moves past it
    /// and its events go out, unless the watcher or its stream is gone (a watcher created since
    /// with the same ID waits for no such read). Runs on the loop.
    private func finishCatchUp(_ read: UInt64, of id: Int64, _ window: WatchCursor.PlannedWindow, on stream: WatchStream) {
        guard let host, !stream.closed, var watcher = stream.watchers[id], watcher.catchUpRead == read else { return }
        watcher.catchUpRead = nil
        // The window holds every value now: the reader is not used.
        let events = watcher.cursor.finishCatchUp(window, reading: nil, currentRevision: host.member.store.currentRevision)
        stream.watchers[id] = watcher
        deliverCatchUp(events, to: watcher, on: stream)
    }

    /// Sends a catch-up window's events, and schedules the next window if the watcher is still
    /// behind.
    private func deliverCatchUp(_ events: [Event], to watcher: WatchStream.Watcher, on stream: WatchStream) {
        if !events.isEmpty {
            var response = Etcdserverpb_WatchResponse()
            response.header = responseHeader()
            response.watchID = watcher.id
            response.events = wireEvents(events, for: watcher)
            send(response, on: stream)
        }
        if !watcher.synced { scheduleCatchUp(on: stream) }
    }

    /// Runs the next catch-up window of `stream`'s unsynced watchers on a later loop turn.
    private func scheduleCatchUp(on stream: WatchStream) {
        guard !stream.catchUpScheduled, let host else { return }
        stream.catchUpScheduled = true
        host.loop.execute {
            stream.catchUpScheduled = false
            self.catchUpUnsynced(on: stream)
        }
    }

    /// Catches up each unsynced watcher of `stream` by one window.
    private func catchUpUnsynced(on stream: WatchStream) {
        guard stream.writable, !stream.closed else { return }
        for id in stream.watchers.keys.sorted() {
            guard var watcher = stream.watchers[id], !watcher.synced else { continue }
            catchUp(&watcher, on: stream)
            if stream.watchers[id] != nil { stream.watchers[id] = watcher }
        }
    }

    /// A stream's writability changed (HTTP/2 flow control).
    func setWritable(_ writable: Bool, stream: WatchStream) {
        stream.writable = writable
        catchUpUnsynced(on: stream)
    }

    /// The store was replaced by a snapshot: watchers resynchronise from the new store's history.
    func storeReplaced() {
        guard let store = host?.member.store else { return }
        for id in subscribers.keys.sorted() {
            guard var subscriber = subscribers[id] else { continue }
            // A subscriber takes the whole gap at once (a server-internal watcher reads no wire).
            subscriber.cursor.fallOutOfSync()
            switch subscriber.cursor.catchUp(from: store, window: .max, batch: .max) {
            case .events(let missed, _):
                subscribers[id] = subscriber
                if !missed.isEmpty { subscriber.deliver(missed) }
            case .compacted:
                subscribers[id] = nil
                subscriber.cancel(.compacted)
            }
        }
        for stream in streams.values {
            for id in stream.watchers.keys.sorted() {
                guard var watcher = stream.watchers[id] else { continue }
                watcher.cursor.fallOutOfSync()
                catchUp(&watcher, on: stream)
                if stream.watchers[id] != nil { stream.watchers[id] = watcher }
            }
        }
    }

    /// Called every tick: progress notifications, and ending `hasleader` streams that have had
    /// no leader for three election timeouts (etcd's `monitorLeader`).
    func tick(_ ticks: UInt64, hasLeader: Bool, electionTicks: UInt64) {
        for stream in Array(streams.values) {
            if stream.requiresLeader {
                stream.ticksWithoutLeader = hasLeader ? 0 : stream.ticksWithoutLeader + 1
                if stream.ticksWithoutLeader > 3 * electionTicks {
                    stream.call.finish(.unavailable, message: "etcdserver: no leader")
                    close(stream)
                    continue
                }
            }
            guard ticks % progressIntervalTicks == 0 else { continue }
            for watcher in stream.watchers.values where watcher.progressNotify && watcher.synced {
                var response = Etcdserverpb_WatchResponse()
                response.header = responseHeader()
                response.watchID = watcher.id
                send(response, on: stream)
            }
        }
    }
}
