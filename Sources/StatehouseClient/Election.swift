import Logging
import Synchronization

/// Proof of leadership in an ``Election``: the candidate's key and its create revision (a
/// fencing token, like ``LockToken``).
public struct LeaderKey: Sendable, Hashable {
    /// The election's name.
    public var name: String
    /// The leader's key (`<name>/<lease in hex>`).
    public var key: [UInt8]
    /// The key's create revision.
    public var revision: Int64
    /// The lease the leadership is held under.
    public var lease: LeaseID
}

/// A leader election held under a ``Session`` (etcd's concurrency recipe): candidates queue
/// under `<name>/` by create revision; the lowest is the leader and its value is the
/// election's value.
public final class Election: Sendable {
    /// The session candidacies are held under.
    public let session: Session
    /// The election's name.
    public let name: String
    private let prefix: [UInt8]
    private let leadership = Synchronization.Mutex<LeaderKey?>(nil)

    /// The election `name`, campaigned in under `session`.
    public init(session: Session, name: String) {
        self.session = session
        self.name = name
        prefix = Array((name.hasSuffix("/") ? name : name + "/").utf8)
    }

    /// The leadership this candidate holds, if it has won.
    public var leaderKey: LeaderKey? { leadership.withLock { $0 } }

    /// Campaigns with `value` and returns once this candidate is the leader. Cancelling the
    /// task withdraws the candidacy.
    @discardableResult
    public func campaign(_ value: some BytesConvertible) async throws -> LeaderKey {
        let client = session.client
        let key = prefix + Array(String(UInt64(bitPattern: session.lease.rawValue), radix: 16).utf8)
        let bytes = value.statehouseBytes
        let result: TxnResult
        do {
            result = try await client.txn()
                .when(.createRevision(key) == 0)
                .then(.put(key, bytes, lease: session.lease))
                .else(.get(key))
                .commit()
        } catch {
            // The call may have been applied although it failed: withdraw the candidacy it may
            // have created, unless this candidate already leads (then the key is the leader's).
            client.cleanUp { client in
                guard self.leaderKey == nil else { return }
                _ = try await client.delete(.key(key))
            }
            throw error
        }
        var revision = result.header.revision
        if !result.succeeded {
            guard let existing = result.results.first?.get?.kvs.first else {
                throw StatehouseError(.sessionLost, "the candidate key vanished while campaigning")
            }
            revision = existing.createRevision
            if existing.value != bytes {
                _ = try await client.txn().when(.createRevision(key) == revision).then(.put(key, bytes, lease: session.lease))
                    .commit()
            }
        }
        do {
            try await session.waitForPredecessors(under: prefix, below: revision)
            guard let mine = try await client.get(key), mine.createRevision == revision else {
                throw StatehouseError(.sessionLost, "the session's lease expired while campaigning")
            }
        } catch {
            let queued = revision
            client.cleanUp { client in
                _ = try await client.txn().when(.createRevision(key) == queued).then(.delete(key)).commit()
            }
            throw error
        }
        let leader = LeaderKey(name: name, key: key, revision: revision, lease: session.lease)
        leadership.withLock { $0 = leader }
        return leader
    }

    /// Sets a new value while leading.
    ///
    /// - Throws: `notHeld` if this candidate is not the leader.
    public func proclaim(_ value: some BytesConvertible) async throws {
        guard let leader = leaderKey else { throw StatehouseError(.notHeld, "not the leader of \(name)") }
        let result = try await session.client.txn()
            .when(.createRevision(leader.key) == leader.revision)
            .then(.put(leader.key, value, lease: leader.lease))
            .commit()
        guard result.succeeded else {
            leadership.withLock { $0 = nil }
            throw StatehouseError(.notHeld, "the leadership of \(name) was lost")
        }
    }

    /// Gives up the leadership (deletes the leader key). Does nothing if not leading.
    public func resign() async throws {
        guard let leader = leaderKey else { return }
        _ = try await session.client.txn()
            .when(.createRevision(leader.key) == leader.revision)
            .then(.delete(leader.key))
            .commit()
        leadership.withLock { $0 = nil }
    }

    /// The current leader's key and value.
    ///
    /// - Throws: `noElectionLeader` if there is no leader.
    public func leader() async throws -> KeyValue {
        try await Self.leader(of: prefix, client: session.client)
    }

    static func leader(of prefix: [UInt8], client: StatehouseClient) async throws -> KeyValue {
        let response = try await client.get(
            .prefix(prefix), options: GetOptions(limit: 1, sort: SortOrder(.createRevision, ascending: true)))
        guard let leader = response.kvs.first else {
            throw StatehouseError(.noElectionLeader, "election: no leader")
        }
        return leader
    }

    /// The election's leaders and values as they change: the current one first, then each
    /// new leader or new value.
    public func observe() -> ElectionObservation {
        session.client.observeElection(name)
    }
}

extension StatehouseClient {
    /// The leaders and values of the election `name` as they change (no session needed).
    public func observeElection(_ name: String) -> ElectionObservation {
        let prefix = Array((name.hasSuffix("/") ? name : name + "/").utf8)
        return ElectionObservation(
            base: BackgroundSequence(client: self) { [self] send in
                var last: KeyValue?
                while true {
                    var options = GetOptions(limit: 1, sort: SortOrder(.createRevision, ascending: true))
                    options.serializable = false
                    let current = try await get(.prefix(prefix), options: options)
                    guard let leader = current.kvs.first else {
                        // No leader: wait for the first candidate to appear.
                        let events = watch(.prefix(prefix), options: WatchOptions(startRevision: current.header.revision + 1))
                        for try await event in events where event.kind == .put { break }
                        continue
                    }
                    if leader != last {
                        await send(leader)
                        last = leader
                    }
                    // Follow the leader's key until it is deleted; report new values.
                    let events = watch(.key(leader.key), options: WatchOptions(startRevision: current.header.revision + 1))
                    for try await event in events {
                        if event.kind == .delete { break }
                        if event.kv.createRevision == leader.createRevision, event.kv != last {
                            await send(event.kv)
                            last = event.kv
                        }
                    }
                }
            })
    }
}

/// The leaders of an election as they change; see ``Election/observe()``.
public struct ElectionObservation: AsyncSequence, Sendable {
    public typealias Element = KeyValue
    let base: BackgroundSequence<KeyValue>

    public func makeAsyncIterator() -> Iterator { Iterator(base: base.makeAsyncIterator()) }

    public struct Iterator: AsyncIteratorProtocol {
        var base: BackgroundSequence<KeyValue>.Iterator

        public mutating func next() async throws -> KeyValue? { try await base.next() }
    }
}
