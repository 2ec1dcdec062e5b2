import StatehouseClient

import struct Foundation.Data
import class Foundation.JSONDecoder

/// An event log in Statehouse: events are keys under the log's prefix, each written in the
/// transaction that made it happen, and read back in revision order from any revision.
///
/// Readers resume: ``events(from:)`` is a watch that continues on another member after a
/// broken stream, and a named consumer (``consume(as:from:onGap:_:)``) keeps its position in the
/// store, so it continues after a restart exactly where it stopped.
///
/// An event's position is the revision that wrote it, so resuming after a position assumes one
/// revision writes at most one event of the log (true when each transaction appends one).
public struct EventLog: Sendable {
    /// The client the log lives on.
    public let client: StatehouseClient
    /// The prefix of the events' keys (ends with `/`).
    public let prefix: String
    /// The prefix of the consumers' positions (ends with `/`).
    public let positionsPrefix: String

    /// The log whose events are under `prefix` and whose consumers' positions are under
    /// `positionsPrefix` (a `/` is appended to each if missing).
    public init(client: StatehouseClient, prefix: String, positionsPrefix: String) {
        self.client = client
        self.prefix = prefix.hasSuffix("/") ? prefix : prefix + "/"
        self.positionsPrefix = positionsPrefix.hasSuffix("/") ? positionsPrefix : positionsPrefix + "/"
    }

    /// The write that appends `value` (JSON) as the event `name` (relative to the prefix);
    /// put it in the transaction whose effect the event reports.
    public func append(_ name: String, encoding value: some Encodable) throws -> Operation {
        try .put(prefix + name, encoding: value)
    }

    /// The events from `revision` on, in revision order, as they are written. Deletions (by
    /// retention) are left out.
    ///
    /// - Throws: (while iterating) `StatehouseError` with code `compacted` if `revision` has
    ///   been compacted away; its `compactRevision` is the oldest revision still kept.
    public func events(from revision: Int64) -> some AsyncSequence<LoggedEvent, any Error> & Sendable {
        let prefix = prefix
        return client.watch(prefix: prefix, options: WatchOptions(startRevision: max(1, revision), noDelete: true)).map {
            LoggedEvent(name: String($0.kv.keyString.dropFirst(prefix.count)), value: $0.kv.value, revision: $0.revision)
        }
    }

    /// The key of consumer `name`'s position.
    public func positionKey(_ name: String) -> String { positionsPrefix + name }

    /// The revision of the last event consumer `name` processed; nil if it has none.
    public func position(of name: String) async throws -> Int64? {
        try await client.get(positionKey(name)).flatMap { Int64($0.valueString) }
    }

    /// Every consumer's position, by name.
    public func positions() async throws -> [String: Int64] {
        let stored = try await client.get(.prefix(positionsPrefix)).kvs
        return Dictionary(
            stored.compactMap { kv in Int64(kv.valueString).map { (String(kv.keyString.dropFirst(positionsPrefix.count)), $0) } },
            uniquingKeysWith: max)
    }

    /// Processes events as consumer `name`, from just after its stored position (or from
    /// `start` if it has none), until `handler` returns `false` or the task is cancelled.
    ///
    /// After each event the position is stored in one transaction with the writes `handler`
    /// returned, and only if the position is still the one this consumer read, so two
    /// processes consuming under the same name never both commit the same event. Effects
    /// outside the store happen at least once (an event whose position was not stored when the
    /// consumer died is processed again); writes returned by `handler` happen exactly once.
    ///
    /// If the history before the position was compacted, consumption continues from the oldest
    /// revision kept, and `onGap` is told the first revision kept.
    ///
    /// - Parameters:
    ///   - name: The consumer's name (no `/`).
    ///   - start: Where a consumer without a position starts.
    ///   - onGap: Told when events were compacted away before they were consumed.
    ///   - handler: Processes one event; returns the writes to commit with the position, and
    ///     whether to go on.
    /// - Throws: `StatehouseError` with code `conflict` if another consumer with the same name
    ///   moved the position meanwhile.
    public func consume(
        as name: String, from start: Int64 = 1, onGap: @Sendable (Int64) -> Void = { _ in },
        _ handler: (LoggedEvent) async throws -> (operations: [Operation], proceed: Bool)
    ) async throws {
        try WorkflowError.checkID(name)
        let key = positionKey(name)
        let stored = try await client.get(key)
        var guardRevision = stored?.modRevision ?? 0
        var next = stored.flatMap { Int64($0.valueString) }.map { $0 + 1 } ?? start
        while true {
            do {
                for try await event in events(from: next) {
                    let (operations, proceed) = try await handler(event)
                    let moved: Compare = guardRevision == 0 ? .createRevision(key) == 0 : .modRevision(key) == guardRevision
                    let result = try await client.txn()
                        .when(moved)
                        .then([.put(key, String(event.revision))] + operations)
                        .commit()
                    guard result.succeeded else {
                        throw StatehouseError(.conflict, "another consumer named \(name) moved its position")
                    }
                    guardRevision = result.header.revision
                    next = event.revision + 1
                    if !proceed { return }
                }
                return
            } catch let error as StatehouseError where error.code == .compacted {
                let oldest = error.compactRevision ?? next
                onGap(oldest)
                next = oldest
            }
        }
    }
}

/// One event of an ``EventLog``.
public struct LoggedEvent: Sendable, Hashable {
    /// The event's key, relative to the log's prefix.
    public var name: String
    /// The event's value.
    public var value: [UInt8]
    /// The revision that wrote it: its position in the log.
    public var revision: Int64

    /// Decodes the value as JSON.
    public func decode<Value: Decodable>(_ type: Value.Type = Value.self) throws -> Value {
        try JSONDecoder().decode(type, from: Data(value))
    }
}
