// Watch clients: a few simulated watchers, each a client of one member at a time, moved through
// the same `WatchCursor` the server's watch streams use. They take each applied batch's events
// as the server publishes them, stall now and then (their stream stops being writable, so they
// fall out of sync and catch up from the store's history in small windows), resynchronise when
// their member installs a snapshot, and reconnect to another member from their next revision
// when theirs crashes or at random, as etcd's client does. A compacted next revision ends the
// watch (etcd cancels it); the client then watches again from the current revision.
//
// Checked: every event arrives in revision order and at most once, as it happens; and at the end,
// over each stretch a watch covered, the events received are exactly the committed events in its
// range, in order: no gap, no extra, no duplicate. Every member's applied events are recorded by
// revision (and must agree across members), which is what the watchers are compared with.
//
// Watchers draw from their own generator and change nothing in the members, so adding them
// leaves every other choice of a seed as it was.

import Primitives
@_spi(Testing) import ReplicatedMember
@_spi(Testing) import StateMachine

/// An event as a watcher sees it, reduced to what must agree across members.
struct WatchedEvent: Hashable, CustomStringConvertible {
    var revision: Int64
    var key: [UInt8]
    var kind: StateMachine.Event.Kind
    var value: [UInt8]
    var version: Int64
    var createRevision: Int64

    init(_ event: StateMachine.Event) {
        revision = event.kv.modRevision
        key = event.kv.key
        kind = event.kind
        value = event.kv.value
        version = event.kv.version
        createRevision = event.kv.createRevision
    }

    var description: String {
        let name = String(decoding: key, as: UTF8.self)
        return kind == .put
            ? "put \(name)=\(String(decoding: value, as: UTF8.self)) @\(revision) v\(version)"
            : "delete \(name) @\(revision)"
    }
}

/// One simulated watch client.
struct WatchClient {
    var key: [UInt8]
    var rangeEnd: [UInt8]
    var noPut = false
    var noDelete = false
    /// The member whose stream it reads, and its cursor there; nil while it has no stream.
    var member: Int?
    var cursor: WatchCursor?
    /// The first revision not yet received (kept across streams: a new stream starts here).
    var nextRevision: Int64 = 1
    /// Where the current stretch of continuous coverage began, and the stretches a compaction
    /// ended.
    var coveredFrom: Int64 = 1
    var stretches: [ClosedRange<Int64>] = []
    /// Every event received, in order of arrival.
    var received: [WatchedEvent] = []
    /// Until when its reader stalls (its stream is not writable).
    var stalledUntil: UInt64 = 0
    /// A catch-up window planned on the member and being read "off the loop", as the server
    /// reads a window that needs values from RocksDB: delivered at the watcher's next turn,
    /// after the member may have applied more.
    var pendingWindow: WatchCursor.PlannedWindow?

    /// A probe cursor for the range and filters (to filter recorded events at the end).
    func probe() -> WatchCursor {
        WatchCursor(key: key, rangeEnd: rangeEnd, noPut: noPut, noDelete: noDelete, startRevision: 1, currentRevision: 0)
    }
}

/// The watch clients and what they are checked against.
struct WatchClients {
    var clients: [WatchClient] = []
    var rng: SeededGenerator
    /// Revisions per catch-up window and events per catch-up batch (small, so that catch-up
    /// runs in many windows).
    var window: Int64
    var batch: Int
    /// Every applied revision's events, as the first member to apply it produced them.
    var eventRecord: [Int64: [WatchedEvent]] = [:]
    /// Values of writes a client sent again without a session, and the first revision each put
    /// value was applied at: a retried value at a second revision is a write applied twice
    /// (which the history allows).
    var retriedPlainValues: Set<String> = []
    var firstRevisionOfValue: [[UInt8]: Int64] = [:]
    /// The same events by key, in revision order (revisions are first applied in order).
    var eventsByKey: [[UInt8]: [WatchedEvent]] = [:]

    /// The last event on `key` at or before `revision`, if any.
    func lastEvent(on key: [UInt8], atOrBefore revision: Int64) -> WatchedEvent? {
        guard let events = eventsByKey[key] else { return nil }
        var low = 0
        var high = events.count
        while low < high {
            let middle = (low + high) / 2
            if events[middle].revision <= revision { low = middle + 1 } else { high = middle }
        }
        return low > 0 ? events[low - 1] : nil
    }

    init(seed: UInt64, keyCount: Int) {
        rng = SeededGenerator(seed: seed ^ 0x3A7C_4E55_9017)
        window = 1 + Int64(rng.next(below: 20))
        batch = 1 + Int(rng.next(below: 10))
        func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
        // One key, the key/value keys' prefix, and everything (with a filter now and then).
        clients.append(WatchClient(key: bytes("k\(rng.next(below: UInt64(keyCount)))"), rangeEnd: []))
        clients.append(WatchClient(key: bytes("k"), rangeEnd: bytes("l")))
        var everything = WatchClient(key: [0], rangeEnd: [0])
        switch rng.next(below: 4) {
        case 0: everything.noPut = true
        case 1: everything.noDelete = true
        default: break
        }
        clients.append(everything)
    }
}

extension Simulation {
    /// Whether watchers start streams on, and read from, member `index` now.
    private func servesWatches(_ index: Int) -> Bool {
        members[index].isRunning && !members[index].isPaused && !members[index].isRetired
    }

    /// Opens a stream for watcher `number` on member `index`, from its next revision.
    private func attach(_ number: Int, to index: Int) {
        let current = members[index].withCore { $0.store.currentRevision }
        var cursor = WatchCursor(
            key: watchClients.clients[number].key, rangeEnd: watchClients.clients[number].rangeEnd,
            noPut: watchClients.clients[number].noPut, noDelete: watchClients.clients[number].noDelete,
            startRevision: watchClients.clients[number].nextRevision, currentRevision: current)
        cursor.skipsRevisionAfterCatchUp = options.memberMutation == .watchSkipsRevisionAfterCatchUp
        watchClients.clients[number].member = index
        watchClients.clients[number].cursor = cursor
        watchClients.clients[number].pendingWindow = nil
    }

    /// Member `index` ticked: watchers without a stream may open one on it; its watchers'
    /// readers stall or resume, drop their stream now and then, and catch up one window.
    func tickWatchClients(_ index: Int) {
        guard servesWatches(index) else { return }
        for number in watchClients.clients.indices {
            guard let member = watchClients.clients[number].member, servesWatches(member) else {
                if watchClients.rng.next(below: 2) == 0 { attach(number, to: index) }
                continue
            }
            guard member == index else { continue }
            switch watchClients.rng.next(below: 100) {
            case 0:
                // The client drops its stream (an error, a balancer's choice) and reconnects.
                watchClients.clients[number].member = nil
                watchClients.clients[number].cursor = nil
                watchClients.clients[number].pendingWindow = nil
                continue
            case 1..<6:
                watchClients.clients[number].stalledUntil = now + watchClients.rng.next(below: 2_000_000)
            default: break
            }
            if now >= watchClients.clients[number].stalledUntil { catchUpWatchClient(number) }
        }
    }

    /// Watcher `number` catches up by one window if it is behind. As on the server, a window
    /// is planned on the member (`WatchCursor.planCatchUp`); one that needs values from the
    /// backend is read then but delivered only at the watcher's next turn, against the
    /// member's revision at that point (the server reads it on its read pool meanwhile), so the
    /// cursor's rule for a store that moved on while a window was out is checked too.
    private func catchUpWatchClient(_ number: Int) {
        guard let index = watchClients.clients[number].member, var cursor = watchClients.clients[number].cursor,
            !cursor.synced
        else { return }
        if let window = watchClients.clients[number].pendingWindow {
            watchClients.clients[number].pendingWindow = nil
            let current = members[index].withCore { $0.store.currentRevision }
            let events = cursor.finishCatchUp(window, reading: nil, currentRevision: current)
            watchClients.clients[number].cursor = cursor
            statistics.watchWindowsReadLater += 1
            receive(events, by: number, through: cursor.nextRevision)
            return
        }
        let (window, batch) = (watchClients.window, watchClients.batch)
        let (planned, current) = members[index].withCore { member in
            var planned = cursor.planCatchUp(from: member.store, window: window, batch: batch)
            if case .window(var window) = planned, window.events.unreadValueCount > 0 {
                window.events.readValues(through: member.store.backendReader)
                planned = .window(window)
                return (planned, Int64?.none)
            }
            return (planned, member.store.currentRevision)
        }
        switch planned {
        case .window(let window):
            guard let current else {
                watchClients.clients[number].pendingWindow = window
                return
            }
            let events = cursor.finishCatchUp(window, reading: nil, currentRevision: current)
            watchClients.clients[number].cursor = cursor
            receive(events, by: number, through: cursor.nextRevision)
        case .compacted:
            let current = members[index].withCore { $0.store.currentRevision }
            // etcd cancels the watch; the client watches again from the current revision. The
            // stretch it covered ends where it stood.
            var client = watchClients.clients[number]
            if client.coveredFrom <= client.nextRevision - 1 {
                client.stretches.append(client.coveredFrom...(client.nextRevision - 1))
            }
            client.nextRevision = current + 1
            client.coveredFrom = client.nextRevision
            watchClients.clients[number] = client
            attach(number, to: index)
        }
    }

    /// Member `index` applied a batch that produced `events` (and installed a snapshot if
    /// `installedSnapshot`): records them, then publishes them to its watchers as the server
    /// does, and resynchronises them after a snapshot.
    func publishToWatchClients(_ events: [StateMachine.Event], member index: Int, installedSnapshot: Bool) {
        recordEvents(events, member: index)
        let current = members[index].withCore { $0.store.currentRevision }
        for number in watchClients.clients.indices where watchClients.clients[number].member == index {
            guard var cursor = watchClients.clients[number].cursor else { continue }
            let writable = now >= watchClients.clients[number].stalledUntil
            // As the server does: resynchronise from the new store's history before publishing.
            if installedSnapshot { cursor.fallOutOfSync() }
            let delivered = cursor.publish(events, revision: current, writable: writable)
            watchClients.clients[number].cursor = cursor
            receive(delivered, by: number, through: cursor.nextRevision)
        }
    }

    /// Records a batch's events by revision; a revision another member applied must have had
    /// the same events there.
    private func recordEvents(_ events: [StateMachine.Event], member index: Int) {
        var byRevision: [Int64: [WatchedEvent]] = [:]
        var order: [Int64] = []
        for event in events {
            let watched = WatchedEvent(event)
            if byRevision[watched.revision] == nil { order.append(watched.revision) }
            byRevision[watched.revision, default: []].append(watched)
        }
        for revision in order {
            let batch = byRevision[revision]!
            if let recorded = watchClients.eventRecord[revision] {
                if recorded != batch {
                    fail(
                        "watch events",
                        "member \(members[index].id) produced \(batch) at revision \(revision), another member \(recorded)")
                    return
                }
            } else {
                watchClients.eventRecord[revision] = batch
                for event in batch { watchClients.eventsByKey[event.key, default: []].append(event) }
                countDoubleApplications(batch)
            }
        }
    }

    /// Counts writes retried without a session that were applied a second time.
    private func countDoubleApplications(_ batch: [WatchedEvent]) {
        guard options.retriesUnknownWrites else { return }
        for event in batch where event.kind == .put {
            guard let first = watchClients.firstRevisionOfValue[event.value] else {
                watchClients.firstRevisionOfValue[event.value] = event.revision
                continue
            }
            if first != event.revision && watchClients.retriedPlainValues.contains(String(decoding: event.value, as: UTF8.self)) {
                statistics.writesAppliedTwice += 1
            }
        }
    }

    /// Watcher `number` receives `events`, then stands before `nextRevision`: checks order and
    /// duplicates as they arrive.
    private func receive(_ events: [StateMachine.Event], by number: Int, through nextRevision: Int64) {
        for event in events {
            let watched = WatchedEvent(event)
            if let last = watchClients.clients[number].received.last {
                let sameRevision = watchClients.clients[number].received.reversed().prefix { $0.revision == last.revision }
                if watched.revision < last.revision || (watched.revision == last.revision && sameRevision.contains(watched)) {
                    fail(
                        "watch order",
                        "watcher \(number) received \(watched) after \(last) (member \(watchClients.clients[number].member.map { members[$0].id } ?? 0))"
                    )
                    return
                }
            }
            watchClients.clients[number].received.append(watched)
            statistics.watchEvents += 1
        }
        watchClients.clients[number].nextRevision = max(watchClients.clients[number].nextRevision, nextRevision)
    }

    /// After healing: every watcher catches up on a running member, then what it received over
    /// each stretch it covered must be exactly the committed events in its range.
    @discardableResult
    public func checkWatchClients() -> Bool {
        guard let serving = members.indices.first(where: servesWatches) else { return true }
        for number in watchClients.clients.indices where violation == nil {
            if watchClients.clients[number].member.map(servesWatches) != true { attach(number, to: serving) }
            watchClients.clients[number].stalledUntil = 0
            var steps = 0
            while violation == nil, let cursor = watchClients.clients[number].cursor, !cursor.synced, steps < 1_000_000 {
                catchUpWatchClient(number)
                steps += 1
            }
            let client = watchClients.clients[number]
            let probe = client.probe()
            var stretches = client.stretches
            if client.coveredFrom < client.nextRevision { stretches.append(client.coveredFrom...(client.nextRevision - 1)) }
            for stretch in stretches {
                let got = client.received.filter { stretch.contains($0.revision) }
                var expected: [WatchedEvent] = []
                for revision in stretch {
                    for event in watchClients.eventRecord[revision] ?? [] where probe.matches(event.asEvent) {
                        expected.append(event)
                    }
                }
                if got != expected {
                    let first =
                        zip(got, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                        ?? min(got.count, expected.count)
                    let received = first < got.count ? "\(got[first])" : "nothing"
                    let committed = first < expected.count ? "\(expected[first])" : "nothing"
                    fail(
                        "watch delivery",
                        "watcher \(number) over revisions \(stretch.lowerBound)...\(stretch.upperBound) received \(got.count) events, "
                            + "the committed history has \(expected.count); first difference at event \(first): received \(received), "
                            + "committed \(committed)"
                    )
                    return false
                }
            }
        }
        return violation == nil
    }
}

extension WatchedEvent {
    /// The event rebuilt for a cursor's range and filter test.
    var asEvent: StateMachine.Event {
        StateMachine.Event(
            kind: kind, kv: KeyValue(key: key, createRevision: createRevision, modRevision: revision, version: version, value: value))
    }
}
