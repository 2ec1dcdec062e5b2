// Lock clients: two clients run etcd's lock recipe (clientv3's concurrency.Mutex) against the
// members and write a shared resource while they hold the lock, fenced as etcd recommends. Each
// grants a 2 s lease and keeps it alive, creates `lock/<lease>` under that lease, polls the
// `lock/` prefix until its key has the lowest create revision (it holds the lock), then writes
// `lock-resource` one to three times in a transaction that requires its key to still exist with
// that create revision, and deletes its key. Before a write it pauses now and then (as a garbage
// collector or a stopped VM pauses a process: no keep-alives), sometimes longer than its TTL, so
// its lease expires, the other client takes the lock, and the paused write must be refused.
//
// Checked at every write to the resource that succeeded, against the committed history (every
// member's events, WatchClients.swift): at the write's revision the writer's key existed with
// the create revision it acquired (fencing), and no other `lock/` key with a lower create
// revision existed (mutual exclusion). Jepsen found etcd 3.4's locks unsafe without fencing; the
// `lockWritesWithoutFencing` mutation sends the write without its guard and must be caught.

import Primitives
@_spi(Testing) import ReplicatedMember
@_spi(Testing) import StateMachine

/// Deliberate bugs in the simulated clients' recipes, to show the checker catches them.
@_spi(Testing) public enum ClientMutation: String, Sendable, Hashable, CaseIterable {
    /// Lock clients write the resource without the transaction's guard on their lock key.
    case lockWritesWithoutFencing
}

/// One lock client's progress through the recipe.
struct LockClient {
    enum Phase: Equatable {
        /// Needs a lease.
        case lease
        /// Has a lease; creates its lock key.
        case acquire
        /// Polls the lock prefix until its key is first.
        case queue
        /// Holds the lock (its key was first at `createRevision`); `writes` writes left.
        case write(createRevision: Int64, writes: Int)
        /// Deletes its key.
        case release
    }

    var phase = Phase.lease
    var lease: Int64 = 0
    /// When the client sent the grant or the last keep-alive answered positively.
    var renewed: UInt64 = 0
    /// Set after a pause: the write goes out at once, without a keep-alive first.
    var writeNow = false

    var key: String { "lock/\(lease)" }
}

extension Simulation {
    /// The lock lease's TTL in seconds.
    static let lockTTL: Int64 = 2
    /// The resource the lock protects.
    static let lockResource = "lock-resource"

    /// The client number of lock client `index` (after the key/value clients).
    func lockClientNumber(_ index: Int) -> Int { clientCount + index }

    /// The lock client index of client `number`, if it is one.
    func lockClientIndex(_ number: Int?) -> Int? {
        guard let number, number >= clientCount, number < clientCount + lockClients.count else { return nil }
        return number - clientCount
    }

    /// Lock client `index` takes its next step.
    func submitLockRequest(_ index: Int) {
        let client = lockClientNumber(index)
        var lock = lockClients[index]
        defer { lockClients[index] = lock }
        if lock.phase == .lease {
            submit(.lockLeaseGrant(ttl: Self.lockTTL), at: pickTarget(), client: client)
            return
        }
        if !lock.writeNow && now - lock.renewed > UInt64(Self.lockTTL) * 1_000_000 / 3 {
            submit(.leaseKeepAlive(id: lock.lease), at: pickTarget(), client: client)
            return
        }
        switch lock.phase {
        case .lease:
            break
        case .acquire:
            submit(.lockAcquire(key: lock.key, lease: lock.lease), at: pickTarget(), client: client)
            lock.phase = .queue
        case .queue:
            submit(.lockQueue, at: pickTarget(), client: client)
        case .write(let createRevision, _):
            if !lock.writeNow && rng.chance(0.2) {
                // A pause between deciding to write and writing: no keep-alives meanwhile.
                lock.writeNow = true
                statistics.lockPauses += 1
                queue.schedule(.clientRequest(client: client), at: now + 300_000 + rng.next(below: 2_700_000))
                return
            }
            lock.writeNow = false
            let value = "\(options.valuePrefix)\(operations.count)"
            let fenced = options.clientMutation != .lockWritesWithoutFencing
            submit(
                .lockedWrite(key: lock.key, createRevision: createRevision, value: value, fenced: fenced), at: pickTarget(),
                client: client)
        case .release:
            submit(.lockRelease(key: lock.key), at: pickTarget(), client: client)
            lock.phase = .acquire
        }
    }

    /// A lock client's lease was granted.
    func lockLeaseGranted(_ operation: Int, lease: Int64) {
        guard let index = lockClientIndex(operations[operation].client) else { return }
        lockClients[index].lease = lease
        lockClients[index].renewed = operations[operation].sent
        lockClients[index].phase = .acquire
    }

    /// A lock client's keep-alive was answered with `ttl` (0: the lease is gone), or one of its
    /// requests named a lease that is gone: it starts over with a new lease.
    func lockLeaseAnswered(_ operation: Int, lease: Int64, ttl: Int64) {
        guard let index = lockClientIndex(operations[operation].client), lockClients[index].lease == lease else { return }
        if ttl > 0 {
            lockClients[index].renewed = max(lockClients[index].renewed, operations[operation].sent)
        } else {
            lockClients[index] = LockClient()
        }
    }

    /// A lock client read the lock prefix: it holds the lock once its key is first.
    func lockQueueRead(_ operation: Int, _ kvs: [KeyValue]) {
        guard let index = lockClientIndex(operations[operation].client), lockClients[index].phase == .queue else { return }
        let own = Array(lockClients[index].key.utf8)
        guard let mine = kvs.first(where: { $0.key == own }) else {
            // Its key is gone (the lease expired): start over.
            lockClients[index] = LockClient()
            return
        }
        if kvs.allSatisfy({ $0.key == own || $0.createRevision > mine.createRevision }) {
            lockClients[index].phase = .write(createRevision: mine.createRevision, writes: 1 + Int(rng.next(below: 3)))
        }
    }

    /// A lock client's write to the resource was answered: `succeeded` at `revision`, or refused
    /// by its guard (it lost the lock). A successful write is checked against the history.
    func lockedWriteAnswered(_ operation: Int, succeeded: Bool, revision: Int64) {
        guard case .lockedWrite(let key, let createRevision, _, _) = operations[operation].kind else { return }
        if succeeded {
            statistics.lockWrites += 1
            checkLockedWrite(operation, key: key, createRevision: createRevision, revision: revision)
        } else {
            statistics.lockWritesRefused += 1
        }
        guard let index = lockClientIndex(operations[operation].client), lockClients[index].key == key else { return }
        if !succeeded {
            lockClients[index] = LockClient()
        } else if case .write(let held, let writes) = lockClients[index].phase {
            lockClients[index].phase = writes > 1 ? .write(createRevision: held, writes: writes - 1) : .release
        }
    }

    /// A write made under the lock: at its revision the writer's key must have existed with the
    /// create revision it acquired, and no other lock key with a lower create revision.
    func checkLockedWrite(_ operation: Int, key: String, createRevision: Int64, revision: Int64) {
        let own = watchClients.lastEvent(on: Array(key.utf8), atOrBefore: revision)
        guard let own, own.kind == .put, own.createRevision == createRevision else {
            fail(
                "lock fencing",
                "write \(operation) to \(Self.lockResource) at revision \(revision) was made under \(key) (created at \(createRevision)), which the history has \(own.map { "\($0)" } ?? "absent") there"
            )
            return
        }
        let prefix = Array("lock/".utf8)
        let others = watchClients.eventsByKey.keys.filter { $0.starts(with: prefix) && $0 != own.key }
        for other in others.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            guard let event = watchClients.lastEvent(on: other, atOrBefore: revision), event.kind == .put,
                event.createRevision < createRevision
            else { continue }
            fail(
                "lock mutual exclusion",
                "write \(operation) to \(Self.lockResource) at revision \(revision) was made under \(key) (created at \(createRevision)) while \(event) held the lock"
            )
            return
        }
    }

    /// The request a lock client's operation sends.
    func lockRequest(for kind: Operation.Kind) -> ClientRequest? {
        func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
        switch kind {
        case .lockLeaseGrant(let ttl):
            return .write(.leaseGrant(LeaseGrantRequest(ttl: ttl)))
        case .lockAcquire(let key, let lease):
            // Create the key unless it exists (a retried or repeated acquire finds it).
            return .write(
                .txn(
                    TxnRequest(
                        compares: [Compare(key: bytes(key), target: .createRevision(0), result: .equal)],
                        success: [.put(PutRequest(key: bytes(key), value: [], lease: lease))])))
        case .lockQueue:
            return .range(RangeRequest(key: bytes("lock/"), rangeEnd: bytes("lock0")))
        case .lockedWrite(let key, let createRevision, let value, let fenced):
            let write = PutRequest(key: bytes(Self.lockResource), value: bytes(value))
            guard fenced else { return .write(.put(write)) }
            return .write(
                .txn(
                    TxnRequest(
                        compares: [Compare(key: bytes(key), target: .createRevision(createRevision), result: .equal)],
                        success: [.put(write)])))
        case .lockRelease(let key):
            return .write(.deleteRange(DeleteRangeRequest(key: bytes(key))))
        default:
            return nil
        }
    }
}
