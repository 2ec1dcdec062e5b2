// The workload: closed-loop clients that send puts, linearizable gets, deletes,
// compare-and-swaps, compactions and lease requests, keep write sessions, and retry refused or
// unanswered requests as etcd's client does; what each request became is its `Outcome`.

import Linearizability
import Primitives
@_spi(Testing) import RaftCore
@_spi(Testing) import ReplicatedMember
import StateMachine

/// What a client learned about one of its requests.
public enum Outcome: Sendable, Hashable {
    /// No answer yet.
    case pending
    /// The write was applied at `index` (or the read was served at `index`).
    case succeeded(index: LogIndex)
    /// The request was refused or provably not committed.
    case failed
    /// The client gave up waiting: the write may or may not have happened.
    case unknown
}

extension Simulation {
    /// A client request and what became of it.
    struct Operation {
        enum Kind: Equatable {
            case put(key: String, value: String)
            case get(key: String)
            case delete(key: String)
            case compareAndSwap(key: String, expected: String?, new: String)
            /// One transaction putting the same value to several keys.
            case multiPut(keys: [String], value: String)
            /// One transaction reading several keys (at one revision).
            case multiGet(keys: [String])
            /// The lock recipe's steps (LockClients.swift): a lease for the lock key, the key's
            /// creation, a read of the lock prefix, a write under the lock (guarded by the key
            /// unless `fenced` is false) and the key's deletion.
            case lockLeaseGrant(ttl: Int64)
            case lockAcquire(key: String, lease: Int64)
            case lockQueue
            case lockedWrite(key: String, createRevision: Int64, value: String, fenced: Bool)
            case lockRelease(key: String)
            case confChange(ConfChange)
            case leaseGrant(ttl: Int64)
            case leaseKeepAlive(id: Int64)
            case leaseRevoke(id: Int64)
            case leasePut(key: String, lease: Int64)
            case compact(revision: Int64)
            /// A lease grant that opens a client's write session.
            case sessionGrant
        }
        var kind: Kind
        var member: Int
        /// The closed-loop client that issued it, if any (scripted requests have none).
        var client: Int?
        /// The write's place in its client's write session (exactly-once writes), if any.
        var session: SessionStamp?
        /// Which attempt of the client's request this is (0 for the first; retries send the same
        /// request, a write with the same session stamp).
        var attempt = 0
        /// How many earlier attempts of the request ended with an unknown outcome (they may
        /// have taken effect); 0 when every earlier one was refused before it was proposed.
        var unknownAttempts = 0
        /// Set when the client retried this attempt: the last attempt stands for the request in
        /// the history (with the first attempt's start).
        var isRetried = false
        /// The member a refusal named as leader, where the client sends its retry.
        var redirect: Int?
        /// Set when the server refused the write's session (expired or forgotten): not retried.
        var sessionRefused = false
        /// Set when the state machine answered with an error (a definite answer, also for a
        /// retry, which gets the first attempt's answer).
        var failedInStateMachine = false
        /// When the client first sent the request (a retry keeps its first attempt's start).
        var start: UInt64
        /// When this attempt was sent.
        var sent: UInt64 = 0
        var requiredIndex: LogIndex
        var outcome: Outcome = .pending
        var output: KeyValueModel.Output?
        /// A multi-key read's answer, one output per key.
        var outputs: [KeyValueModel.Output] = []
        var end: UInt64 = 0

        var isWrite: Bool {
            switch kind {
            case .put, .delete, .compareAndSwap, .multiPut: true
            default: false
            }
        }

        /// Whether the operation belongs in the key/value history (puts, gets, deletes and
        /// compare-and-swaps).
        /// The value a put, compare-and-swap or multi-key put writes.
        var writtenValue: String? {
            switch kind {
            case .put(_, let value), .multiPut(_, let value): value
            case .compareAndSwap(_, _, let new): new
            default: nil
            }
        }

        var isKeyValue: Bool {
            if case .get = kind { return true }
            if case .multiGet = kind { return true }
            return isWrite
        }
    }

    /// What the session client (client 0) knows of a lease.
    struct LeaseRecord {
        var ttl: Int64
        /// When the client sent the last grant or keep-alive that was answered positively: the
        /// lease is promised to last at least TTL from then (the leader renews after receipt).
        var lastAcknowledged: UInt64
    }

    /// A background client's write session: a lease named on each write with a sequence
    /// number, so that the client can retry a write whose outcome it does not know.
    struct WriteSession {
        var lease: Int64?
        var nextSequence: UInt64 = 1
        /// Sequence numbers whose answer the client has not received.
        var outstanding: Set<UInt64> = []
        /// When the client sent the grant or the last keep-alive answered positively.
        var renewed: UInt64 = 0
    }

    /// The most attempts a client makes for one write in a session.
    static let maxSessionAttempts = 5

    func pickTarget() -> Int {
        if leaderHint != noNode && Int(leaderHint) <= members.count && rng.chance(0.7) { return Int(leaderHint) - 1 }
        return Int(rng.next(below: UInt64(members.count)))
    }

    /// Each client sends one request at a time and waits for its answer (or its timeout) before
    /// the next, as real clients do; this bounds how many requests are in flight.
    func submitRandomRequest(from client: Int) {
        if let index = lockClientIndex(client) {
            submitLockRequest(index)
            return
        }
        if client == 0 {
            submitSessionRequest()
            return
        }
        guard !options.writeSessions || writeSessions[client]?.lease != nil else {
            submit(.sessionGrant, at: pickTarget(), client: client)
            return
        }
        if let session = writeSessions[client], let lease = session.lease,
            now - session.renewed > UInt64(Self.writeSessionTTL) * 1_000_000 / 3
        {
            // Keep the session alive, as the Swift client does every third of its TTL; under
            // faults it may still expire, and the server then refuses its writes.
            submit(.leaseKeepAlive(id: lease), at: pickTarget(), client: client)
            return
        }
        let key = "k\(rng.next(below: UInt64(keyCount)))"
        let value = "\(options.valuePrefix)\(operations.count)"
        let kind: Operation.Kind
        switch rng.next(below: 100) {
        case 0..<2 where highestRevisionSeen > 30:
            kind = .compact(revision: highestRevisionSeen - 20)
        case 0..<36: kind = .put(key: key, value: value)
        case 36..<40: kind = .multiPut(keys: multiKeys(with: key), value: value)
        case 40..<66: kind = .get(key: key)
        case 66..<70: kind = .multiGet(keys: multiKeys(with: key))
        case 70..<80: kind = .delete(key: key)
        default:
            let recent = operations.last { if case .put(key, _) = $0.kind { true } else { false } }
            var expected: String?
            if case .put(_, let value)? = recent?.kind { expected = value }
            kind = .compareAndSwap(key: key, expected: expected, new: value)
        }
        let operation = operations.count
        var stamp: SessionStamp?
        if case .put = kind { stamp = nextStamp(for: client) }
        if case .delete = kind { stamp = nextStamp(for: client) }
        if case .compareAndSwap = kind { stamp = nextStamp(for: client) }
        if case .multiPut = kind { stamp = nextStamp(for: client) }
        if stamp != nil { sessionWriteValues[value] = operation }
        submit(kind, at: pickTarget(), client: client, session: stamp)
    }

    /// Two or three distinct keys, `key` first.
    func multiKeys(with key: String) -> [String] {
        var keys = [key]
        let count = 2 + Int(rng.next(below: 2))
        while keys.count < min(count, keyCount) {
            let other = "k\(rng.next(below: UInt64(keyCount)))"
            if !keys.contains(other) { keys.append(other) }
        }
        return keys
    }

    /// The write sessions' lease TTL in seconds: short, so that faults make some expire.
    static let writeSessionTTL: Int64 = 4

    /// The next sequence number of `client`'s write session, with its acknowledged mark.
    func nextStamp(for client: Int) -> SessionStamp? {
        guard var session = writeSessions[client], let lease = session.lease else { return nil }
        let sequence = session.nextSequence
        session.nextSequence += 1
        session.outstanding.insert(sequence)
        writeSessions[client] = session
        return SessionStamp(session: lease, sequence: sequence, acknowledged: session.outstanding.min() ?? sequence)
    }

    /// Client 0 keeps a session: it grants a lease, attaches keys to it and keeps it alive, and
    /// now and then revokes it or stops renewing it so that it expires.
    func submitSessionRequest() {
        guard let lease = sessionLease else {
            submit(.leaseGrant(ttl: 2 + Int64(rng.next(below: 3))), at: pickTarget(), client: 0)
            return
        }
        switch rng.next(below: 40) {
        case 0:
            submit(.leaseRevoke(id: lease), at: pickTarget(), client: 0)
        case 1:
            // Walk away: the lease must expire, but not before its TTL.
            sessionLease = nil
            queue.schedule(.clientRequest(client: 0), at: now + 1_000_000)
        case 2..<12:
            submit(.leasePut(key: "session/\(rng.next(below: 4))", lease: lease), at: pickTarget(), client: 0)
        default:
            submit(.leaseKeepAlive(id: lease), at: pickTarget(), client: 0)
        }
    }

    @discardableResult
    func submit(
        _ kind: Operation.Kind, at member: Int, client: Int? = nil, session: SessionStamp? = nil, retrying previous: Int? = nil
    ) -> Int {
        let operation = operations.count
        // A read must reflect every write acknowledged, and every entry committed, before it began.
        let committed = LogIndex(committedRecord.count - 1)
        var entry = Operation(
            kind: kind, member: member, client: client, session: session, start: now, sent: now,
            requiredIndex: max(maxAcknowledgedIndex, committed))
        if let previous {
            entry.attempt = operations[previous].attempt + 1
            entry.unknownAttempts = operations[previous].unknownAttempts + (operations[previous].outcome == .unknown ? 1 : 0)
            entry.start = operations[previous].start
            entry.requiredIndex = operations[previous].requiredIndex
        }
        operations.append(entry)
        record(.request(operation: operation, member: member))
        if !members[member].isRunning {
            finish(operation, .failed)
        } else if options.clientMaxDelay == 0 && options.clientLossRate == 0 {
            deliver(.request(operation: operation), to: member)
        } else {
            // Over the client network: the client gives up after its timeout whatever happens.
            queue.schedule(.requestTimeout(operation: operation), at: now + options.requestTimeout)
            if !clientMessageLost() {
                queue.schedule(.clientArrive(operation: operation, member: member), at: now + clientDelay())
            }
        }
        return operation
    }

    /// Whether a client request or answer is lost (only during the fault phase).
    func clientMessageLost() -> Bool {
        inFaultPhase && options.clientLossRate > 0 && rng.chance(options.clientLossRate)
    }

    /// A delay on the client network.
    func clientDelay() -> UInt64 {
        options.clientMaxDelay == 0 ? 0 : rng.next(below: options.clientMaxDelay + 1)
    }

    /// A request crossed the client network: the member takes it, or the client finds the
    /// connection refused (the member went down meanwhile) and the request was never sent.
    func clientRequestArrived(_ operation: Int, at member: Int) {
        guard operations[operation].outcome == .pending else { return }
        guard members[member].isRunning else {
            finish(operation, .failed)
            return
        }
        deliver(.request(operation: operation), to: member)
    }

    /// A member answers a request: over the client network (delayed, or lost during the fault
    /// phase) or at once. A read's applied index is taken now, where it was served.
    func answer(_ operation: Int, with response: ClientResponse, at index: LogIndex?) {
        guard options.clientMaxDelay != 0 || options.clientLossRate != 0 else {
            complete(operation, with: response, at: index)
            return
        }
        let member = operations[operation].member
        let appliedAt = index ?? members[member].withCore { $0.appliedIndex }
        guard !clientMessageLost() else { return }
        queue.schedule(.clientAnswer(operation: operation, response: response, appliedAt: appliedAt), at: now + clientDelay())
    }

    func clientRequest(for kind: Operation.Kind) -> ClientRequest {
        func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
        switch kind {
        case .put(let key, let value):
            return .write(.put(PutRequest(key: bytes(key), value: bytes(value))))
        case .get(let key):
            return .range(RangeRequest(key: bytes(key)))
        case .delete(let key):
            return .write(.deleteRange(DeleteRangeRequest(key: bytes(key))))
        case .compareAndSwap(let key, let expected, let new):
            let compare =
                expected.map { Compare(key: bytes(key), target: .value(bytes($0)), result: .equal) }
                ?? Compare(key: bytes(key), target: .version(0), result: .equal)
            return .write(.txn(TxnRequest(compares: [compare], success: [.put(PutRequest(key: bytes(key), value: bytes(new)))])))
        case .multiPut(let keys, let value):
            return .write(.txn(TxnRequest(success: keys.map { .put(PutRequest(key: bytes($0), value: bytes(value))) })))
        case .multiGet(let keys):
            return .write(.txn(TxnRequest(success: keys.map { .range(RangeRequest(key: bytes($0))) })))
        case .leaseGrant(let ttl):
            return .write(.leaseGrant(LeaseGrantRequest(ttl: ttl)))
        case .leaseKeepAlive(let id):
            return .leaseKeepAlive(id: id)
        case .leaseRevoke(let id):
            return .write(.leaseRevoke(LeaseRevokeRequest(id: id)))
        case .leasePut(let key, let lease):
            return .write(.put(PutRequest(key: bytes(key), value: bytes("v"), lease: lease)))
        case .compact(let revision):
            return .write(.compaction(CompactionRequest(revision: revision)))
        case .sessionGrant:
            return .write(.leaseGrant(LeaseGrantRequest(ttl: Self.writeSessionTTL)))
        case .lockLeaseGrant, .lockAcquire, .lockQueue, .lockedWrite, .lockRelease:
            return lockRequest(for: kind)!
        case .confChange(let change):
            return .confChange(change)
        }
    }

    /// Records a member's answer to an operation. `index` is where a write was applied.
    func complete(_ operation: Int, with response: ClientResponse, at index: LogIndex?) {
        let appliedAt = index ?? members[operations[operation].member].core?.appliedIndex ?? 0
        switch (operations[operation].kind, response) {
        case (.put, .write(.put(let put))):
            operations[operation].output = .ok
            highestRevisionSeen = max(highestRevisionSeen, put.revision)
        case (.compact, .write(.compaction)):
            statistics.compactions += 1
        case (.delete, .write(.deleteRange(let deleted))):
            operations[operation].output = .deleted(Int(deleted.deleted))
        case (.compareAndSwap, .write(.txn(let txn))):
            operations[operation].output = .swapped(txn.succeeded)
        case (.lockLeaseGrant, .write(.leaseGrant(let grant))):
            leaseRecords[grant.id] = LeaseRecord(ttl: grant.ttl, lastAcknowledged: operations[operation].sent)
            lockLeaseGranted(operation, lease: grant.id)
        case (.lockAcquire, .write(.txn)), (.lockRelease, .write(.deleteRange)):
            break
        case (.confChange, .confChangeApplied):
            statistics.membershipChangesApplied += 1
        case (.lockQueue, .range(let range)):
            lockQueueRead(operation, range.kvs)
        case (.lockedWrite, .write(.txn(let txn))):
            lockedWriteAnswered(operation, succeeded: txn.succeeded, revision: txn.revision)
        case (.lockedWrite, .write(.put(let put))):
            lockedWriteAnswered(operation, succeeded: true, revision: put.revision)
        case (.multiPut, .write(.txn(let txn))):
            operations[operation].output = .ok
            highestRevisionSeen = max(highestRevisionSeen, txn.revision)
        case (.multiGet(let keys), .write(.txn(let txn))):
            let kvs = txn.responses.map { response -> KeyValue? in
                if case .range(let range) = response { return range.kvs.first }
                return nil
            }
            operations[operation].outputs = kvs.map { kv in
                .value(kv.map { String(decoding: $0.value, as: UTF8.self) }, version: kv?.version ?? 0)
            }
            checkSnapshotRead(keys: keys, kvs: kvs, revision: txn.revision, operation: operation)
            checkReadIndex(operation, servedAt: appliedAt)
            statistics.readsServed += 1
        case (.get, .range(let range)):
            let kv = range.kvs.first
            operations[operation].output = .value(kv.map { String(decoding: $0.value, as: UTF8.self) }, version: kv?.version ?? 0)
            checkReadIndex(operation, servedAt: appliedAt)
            statistics.readsServed += 1
        case (.leaseGrant, .write(.leaseGrant(let grant))):
            leaseRecords[grant.id] = LeaseRecord(ttl: grant.ttl, lastAcknowledged: operations[operation].sent)
            sessionLease = grant.id
        case (.leaseKeepAlive(let id), .leaseKeepAlive(_, let ttl)):
            if ttl > 0 { checkRenewal(operation) }
            lockLeaseAnswered(operation, lease: id, ttl: ttl)
            if ttl > 0, var record = leaseRecords[id] {
                record.lastAcknowledged = max(record.lastAcknowledged, operations[operation].sent)
                leaseRecords[id] = record
            } else if sessionLease == id {
                sessionLease = nil
            }
            if let client = operations[operation].client, var session = writeSessions[client], session.lease == id {
                session.renewed = max(session.renewed, operations[operation].sent)
                writeSessions[client] = ttl > 0 ? session : nil
            }
        case (.leaseRevoke(let id), .write(.leaseRevoke)):
            leaseRecords[id] = nil
            if sessionLease == id { sessionLease = nil }
        case (.leasePut, .write(.put)):
            break
        case (.sessionGrant, .write(.leaseGrant(let grant))):
            if let client = operations[operation].client {
                writeSessions[client] = WriteSession(lease: grant.id, renewed: operations[operation].sent)
            }
            leaseRecords[grant.id] = LeaseRecord(ttl: grant.ttl, lastAcknowledged: operations[operation].sent)
        case (_, .failure(.state(.sessionExpired))), (_, .failure(.state(.sessionRequestForgotten))):
            // Nothing was applied by this attempt; an earlier one may have been.
            operations[operation].sessionRefused = true
            statistics.sessionRefusals += 1
            if let client = operations[operation].client { writeSessions[client] = nil }
            finish(operation, operations[operation].unknownAttempts == 0 ? .failed : .unknown)
            return
        case (_, .failure(.timedOutDueToLeaderFailure)):
            statistics.memberTimeouts += 1
            finish(operation, .unknown)
            return
        case (_, .failure(let error)):
            if case .state = error { operations[operation].failedInStateMachine = true }
            if case .notLeader(let leader) = error, leader != noNode {
                leaderHint = leader
                if Int(leader) <= members.count { operations[operation].redirect = Int(leader) - 1 }
            }
            if case .state(.leaseNotFound) = error {
                if let index = lockClientIndex(operations[operation].client) {
                    lockLeaseAnswered(operation, lease: lockClients[index].lease, ttl: 0)
                } else {
                    sessionLease = nil
                }
            }
            finish(operation, .failed)
            return
        default:
            fail("client protocol", "operation \(operation) (\(operations[operation].kind)) got an unexpected answer \(response)")
            return
        }
        finish(operation, .succeeded(index: appliedAt))
    }

    /// A read must be served at an applied index no older than what was committed (or a write
    /// acknowledged there) before it began.
    func checkReadIndex(_ operation: Int, servedAt appliedAt: LogIndex) {
        guard options.checksReadIndexes && appliedAt < operations[operation].requiredIndex else { return }
        fail(
            "linearizable read",
            "read \(operation) on member \(members[operations[operation].member].id) was served at applied index \(appliedAt), but index \(operations[operation].requiredIndex) was committed (or a write there acknowledged) before the read began"
        )
    }

    func finish(_ operation: Int, _ outcome: Outcome) {
        guard operations[operation].outcome == .pending else { return }
        var outcome = outcome
        let op = operations[operation]
        // A retry that never reached the state machine says nothing of an earlier attempt whose
        // outcome was unknown.
        if outcome == .failed, op.unknownAttempts > 0, !op.failedInStateMachine { outcome = .unknown }
        operations[operation].outcome = outcome
        operations[operation].end = now
        if op.client != nil, inFaultPhase {
            // Refused before it was proposed (not leader, no leader, too many requests, the
            // member is down): the client tries another member after a short backoff, as
            // etcd's client does, until its retry budget runs out.
            if outcome == .failed, !op.failedInStateMachine, !op.sessionRefused, now - op.start < options.clientRetryBudget {
                queue.schedule(.retry(operation: operation), at: now + retryBackoff(after: op.attempt))
                return
            }
            // A read that got no answer is asked again (reads have no effect).
            if outcome == .unknown, case .get = op.kind, now - op.start < options.clientRetryBudget {
                queue.schedule(.retry(operation: operation), at: now + retryBackoff(after: op.attempt))
                return
            }
        }
        if let stamp = op.session, let client = op.client {
            if outcome == .unknown, inFaultPhase, !op.sessionRefused,
                op.unknownAttempts + 1 < Self.maxSessionAttempts, writeSessions[client]?.lease == stamp.session
            {
                queue.schedule(.retry(operation: operation), at: now + randomInterval(options.clientThinkTime))
                return
            }
            if outcome != .unknown { writeSessions[client]?.outstanding.remove(stamp.sequence) }
        }
        if op.session == nil, options.retriesUnknownWrites, outcome == .unknown, inFaultPhase, case .put = op.kind,
            op.client != nil, op.attempt < 1
        {
            // No session: the put is sent again as a new write, and may apply twice.
            queue.schedule(.retry(operation: operation), at: now + randomInterval(options.clientThinkTime))
            return
        }
        if op.isKeyValue {
            switch outcome {
            case .succeeded: statistics.operationsAcknowledged += 1
            case .failed: statistics.operationsFailed += 1
            case .unknown, .pending: break
            }
        }
        if operations[operation].isWrite {
            switch outcome {
            case .succeeded(let index):
                statistics.writesAcknowledged += 1
                maxAcknowledgedIndex = max(maxAcknowledgedIndex, index)
                leaderHint = members[operations[operation].member].id
            case .failed: statistics.writesFailed += 1
            case .unknown: statistics.writesUnknown += 1
            case .pending: break
            }
        }
        if case .succeeded(let index) = outcome {
            record(.succeeded(operation: operation, index: index, answer: operations[operation].output.map { "\($0)" } ?? ""))
        } else {
            record(.failed(operation: operation))
        }
        if let client = operations[operation].client, inFaultPhase {
            queue.schedule(.clientRequest(client: client), at: now + randomInterval(options.clientThinkTime))
        }
    }

    /// The client stops waiting for an answer: the request's outcome is unknown.
    func requestTimedOut(_ operation: Int) {
        guard operations[operation].outcome == .pending else { return }
        record(.timeout(operation: operation))
        members[operations[operation].member].waiting.remove(operation)
        finish(operation, .unknown)
    }

    /// The client sends a request again (see ``finish(_:_:)`` for when it does).
    func retryRequest(_ operation: Int) {
        guard inFaultPhase, let client = operations[operation].client else { return }
        let previous = operations[operation]
        operations[operation].isRetried = true
        record(.retry(operation: operation))
        let target: Int
        if previous.outcome == .unknown {
            // The client does not know whether the write was applied: it sends the same
            // write again, in the same session, to any member; the server applies it once.
            // (A read whose answer did not come is simply asked again.)
            if previous.session != nil { statistics.sessionRetries += 1 } else { statistics.clientRetries += 1 }
            if previous.session == nil, previous.isWrite, let value = previous.writtenValue {
                watchClients.retriedPlainValues.insert(value)
            }
            target = pickTarget()
        } else {
            // Refused before it was proposed: to the leader the refusal named, or else to the
            // next member of the client's endpoint list, as etcd's client balancer does.
            statistics.clientRetries += 1
            target = previous.redirect ?? (previous.member + 1) % members.count
        }
        submit(previous.kind, at: target, client: client, session: previous.session, retrying: operation)
    }

    /// The client's pause before retrying a refused request: 25 ms doubling with each attempt up
    /// to 400 ms, with ±10% jitter (etcd's client backs off 25 ms with 10% jitter).
    func retryBackoff(after attempt: Int) -> UInt64 {
        let base = UInt64(25_000) << UInt64(min(attempt, 4))
        return base - base / 10 + rng.next(below: base / 5 + 1)
    }
}
