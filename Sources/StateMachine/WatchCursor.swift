/// Where one watcher stands in a member's stream of applied events: the key range it watches,
/// the first revision it has not been given, and whether it is in sync (it gets each applied
/// batch's events as they are published) or catching up from the store's history.
///
/// This is the whole of a watch's delivery rule, with no I/O: the server's watch streams and
/// the simulator's watchers both move through it, so the simulator checks the rule the server
/// runs. Events reach a watcher exactly once and in revision order: a synced cursor takes each
/// published batch whole; a cursor that falls behind (its consumer stopped reading) stops taking
/// batches and replays the store's history in bounded windows until it reaches the current
/// revision; a cursor whose next revision was compacted is cancelled, as etcd cancels the watch.
public struct WatchCursor: Sendable, Hashable {
    /// What a catch-up step produced.
    public enum CatchUp: Sendable, Hashable {
        /// The next events in order (possibly none); `synced` says whether the cursor reached
        /// the current revision and takes published batches again.
        case events([Event], synced: Bool)
        /// The cursor's next revision was compacted (at `compactedRevision`): the watch ends.
        case compacted(compactedRevision: Int64)
    }

    /// The first key watched.
    public var key: [UInt8]
    /// etcd's `range_end`: empty for `key` alone, `[0]` for every key from `key`, otherwise the
    /// end of the interval (exclusive).
    public var rangeEnd: [UInt8]
    /// Whether puts are left out (etcd's `NOPUT` filter).
    public var noPut: Bool
    /// Whether deletes are left out (etcd's `NODELETE` filter).
    public var noDelete: Bool
    /// The first revision not yet delivered.
    public private(set) var nextRevision: Int64
    /// Whether every event before ``nextRevision`` was delivered and later ones come from
    /// published batches; false while the cursor catches up from history.
    public private(set) var synced: Bool
    /// Testing only: after each catch-up window, skip one revision (a delivery bug that the
    /// simulator's watch check must catch).
    @_spi(Testing) public var skipsRevisionAfterCatchUp = false

    /// Creates a cursor for a watch created when the store is at `currentRevision`.
    /// - Parameters:
    ///   - startRevision: The first revision to deliver; 0 or less means "from the next one".
    ///     A start at or before the current revision catches up from history first.
    public init(
        key: [UInt8], rangeEnd: [UInt8] = [], noPut: Bool = false, noDelete: Bool = false, startRevision: Int64,
        currentRevision: Int64
    ) {
        self.key = key
        self.rangeEnd = rangeEnd
        self.noPut = noPut
        self.noDelete = noDelete
        nextRevision = startRevision <= 0 ? currentRevision + 1 : startRevision
        synced = startRevision <= 0 || startRevision > currentRevision
    }

    /// Whether `event` is one this cursor still has to deliver: in its range, not filtered out,
    /// and not before ``nextRevision``.
    public func matches(_ event: Event) -> Bool {
        if event.kv.modRevision < nextRevision { return false }
        switch event.kind {
        case .put where noPut: return false
        case .delete where noDelete: return false
        default: break
        }
        return KeyRange(key: key, rangeEnd: rangeEnd).contains(event.kv.key)
    }

    /// Takes a batch the member applied, which brought the store to `revision`: returns the
    /// events to deliver now. A cursor that is catching up takes nothing; one whose consumer
    /// cannot take more (`writable` false) falls out of sync and takes nothing, to catch up
    /// from history later.
    public mutating func publish(_ events: [Event], revision: Int64, writable: Bool = true) -> [Event] {
        guard synced else { return [] }
        guard writable else {
            synced = false
            return []
        }
        let matching = events.filter(matches)
        nextRevision = max(nextRevision, revision + 1)
        return matching
    }

    /// The store under the cursor was replaced (a snapshot was installed): it catches up from
    /// the new store's history before it takes published batches again.
    public mutating func fallOutOfSync() {
        synced = false
    }

    /// Replays the next window of history from `store`: at most `window` revisions and, as
    /// far as whole revisions allow, `batch` events. Call it again while it answers
    /// `synced: false`. This is ``planCatchUp(from:window:batch:)`` and
    /// ``finishCatchUp(_:reading:currentRevision:)`` at once, reading values through the
    /// store's own reader.
    public mutating func catchUp(from store: StateStore, window: Int64, batch: Int) -> CatchUp {
        switch planCatchUp(from: store, window: window, batch: batch) {
        case .compacted(let compactedRevision):
            return .compacted(compactedRevision: compactedRevision)
        case .window(let window):
            return .events(
                finishCatchUp(window, reading: store.backendReader, currentRevision: store.currentRevision), synced: synced)
        }
    }

    /// One window of history planned by ``planCatchUp(from:window:batch:)``, whose values are
    /// still to be read.
    public struct PlannedWindow: Sendable, Hashable {
        /// The window's events, values not yet read.
        public var events: PendingEvents
        /// The last revision the window covers.
        public var through: Int64
    }

    /// What ``planCatchUp(from:window:batch:)`` found.
    public enum PlannedCatchUp: Sendable, Hashable {
        /// The next window (empty when the cursor is at the current revision).
        case window(PlannedWindow)
        /// The cursor's next revision was compacted (at `compactedRevision`): the watch ends.
        case compacted(compactedRevision: Int64)
    }

    /// Plans the next window of history from `store` (at most `window` revisions and, as far
    /// as whole revisions allow, `batch` events) without moving the cursor: a server reads the
    /// window's values off the member loop and then calls
    /// ``finishCatchUp(_:reading:currentRevision:)`` back on it. Until then the cursor takes no
    /// published batch (it is not synced), so nothing overtakes the window.
    public func planCatchUp(from store: StateStore, window: Int64, batch: Int) -> PlannedCatchUp {
        let current = store.currentRevision
        guard nextRevision <= current else { return .window(PlannedWindow(events: PendingEvents(), through: nextRevision - 1)) }
        let through = window > current - nextRevision ? current : nextRevision + window - 1
        let events: PendingEvents
        do {
            events = try store.planEvents(from: nextRevision, key: key, rangeEnd: rangeEnd, limit: batch, through: through)
        } catch {
            return .compacted(compactedRevision: store.compactedRevision)
        }
        // The window ends early when the event limit was reached (never inside a revision).
        let last = events.count >= batch ? events.lastRevision ?? through : through
        return .window(PlannedWindow(events: events, through: last))
    }

    /// Reads a planned window's values through `reader`, moves the cursor past the window, and
    /// returns the events to deliver. The cursor is synced again if the window reached
    /// `currentRevision`, the store's revision now (which may have moved on since the window
    /// was planned: then another window follows).
    public mutating func finishCatchUp(
        _ window: PlannedWindow, reading reader: (any BackendReader)?, currentRevision: Int64
    ) -> [Event] {
        let deliverable = window.events.finish(reading: reader).filter(matches)
        if window.through >= nextRevision {
            nextRevision = window.through + 1 + (skipsRevisionAfterCatchUp ? 1 : 0)
            synced = window.through >= currentRevision
        } else {
            synced = nextRevision > currentRevision
        }
        return deliverable
    }
}
