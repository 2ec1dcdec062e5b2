/// Watch history resolved from the change log and the key index
/// (``StateStore/planEvents(from:key:rangeEnd:limit:through:)``): the events, in revision
/// order, with the values the store still held in memory; the values it released to its
/// backend are read by ``finish(reading:)``, which a server runs off the member loop on a
/// RocksDB snapshot pinned when the events were planned, as for a ``PendingRange``.
public struct PendingEvents: Hashable, Sendable {
    /// A value still to be read: the event it belongs to, whether it is the event's `prevKV`,
    /// and the version record behind it.
    struct UnreadValue: Hashable, Sendable {
        var event: Int
        var isPrevious: Bool
        var record: VersionRecord
    }

    /// The events; a value listed in `unread` is empty until it is read.
    var events: [Event] = []
    var unread: [UnreadValue] = []

    /// The number of events.
    public var count: Int { events.count }
    /// The main revision of the last event, if there is one.
    public var lastRevision: Int64? { events.last?.kv.modRevision }
    /// The number of values ``finish(reading:)`` reads from the backend.
    public var unreadValueCount: Int { unread.count }

    /// Adds the event for version `i` of `entry`, as ``StateStore`` builds it (see
    /// ``KeyEntry/previousVersion(before:)`` for its `prevKV`).
    mutating func append(_ entry: KeyEntry, at i: Int) {
        let record = entry.history[i]
        let position = events.count
        var previous: KeyValue?
        if let j = entry.previousVersion(before: i) {
            let earlier = entry.history[j]
            previous = earlier.keyValue(key: entry.key, value: earlier.value ?? [])
            if earlier.value == nil { unread.append(UnreadValue(event: position, isPrevious: true, record: earlier)) }
        }
        if record.isTombstone {
            events.append(Event(kind: .delete, kv: KeyValue(key: entry.key, modRevision: record.revision.main), prevKV: previous))
            return
        }
        events.append(Event(kind: .put, kv: record.keyValue(key: entry.key, value: record.value ?? []), prevKV: previous))
        if record.value == nil { unread.append(UnreadValue(event: position, isPrevious: false, record: record)) }
    }

    /// Reads the values not in memory through `reader` and returns the events.
    ///
    /// `reader` must see the backend as it was when the events were planned, or later with
    /// nothing deleted since; a version it lacks means the member's storage lost a write, and
    /// the process stops (as ``PendingRange/finish(reading:)`` does).
    public func finish(reading reader: (any BackendReader)?) -> [Event] {
        var read = self
        read.readValues(through: reader)
        return read.events
    }

    /// Reads the values not in memory through `reader` (with the demands of
    /// ``finish(reading:)``), so that none is left to read.
    public mutating func readValues(through reader: (any BackendReader)?) {
        for value in unread {
            let key = events[value.event].kv.key
            let stored = StateStore.storedVersion(of: value.record, key: key, reader: reader).value
            if value.isPrevious { events[value.event].prevKV?.value = stored } else { events[value.event].kv.value = stored }
        }
        unread = []
    }
}
