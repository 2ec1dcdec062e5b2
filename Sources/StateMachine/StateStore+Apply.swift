/// A request applied to the replicated state (the payload of a committed Raft entry).
public enum StateRequest: Hashable, Sendable {
    /// A read through the log (a linearizable read without ReadIndex).
    case range(RangeRequest)
    /// A put.
    case put(PutRequest)
    /// A deletion.
    case deleteRange(DeleteRangeRequest)
    /// A transaction.
    case txn(TxnRequest)
    /// A compaction.
    case compaction(CompactionRequest)
    /// A lease grant.
    case leaseGrant(LeaseGrantRequest)
    /// A lease revocation (also used for expiry).
    case leaseRevoke(LeaseRevokeRequest)
    /// A lease remaining-TTL checkpoint.
    case leaseCheckpoint(LeaseCheckpointRequest)
    /// Raises or clears an alarm.
    case alarm(AlarmRequest)
    /// A member publishes its name and client URLs.
    case publishMember(MemberAttributesRequest)
    /// A member's peer URLs change.
    case updateMemberPeerURLs(MemberPeerURLsRequest)
    /// A change to, or query of, the auth store.
    case auth(AuthRequest)
    /// A client's request with the credentials the proposing member resolved (etcd's
    /// `RequestHeader`): applied only if the auth store permits it. Requests the cluster makes
    /// itself (lease expiry, checkpoints, alarms) carry no credentials and are not checked.
    indirect case authorized(AuthInfo, StateRequest)
}

extension StateRequest {
    /// The request without its credentials (itself if it carries none).
    public var withoutCredentials: StateRequest {
        if case .authorized(_, let inner) = self { return inner.withoutCredentials }
        return self
    }
}

/// The answer to an ``StateRequest``.
public enum StateResponse: Hashable, Sendable {
    /// The answer to a read.
    case range(RangeResponse)
    /// The answer to a put.
    case put(PutResponse)
    /// The answer to a deletion.
    case deleteRange(DeleteRangeResponse)
    /// The answer to a transaction.
    case txn(TxnResponse)
    /// The answer to a compaction.
    case compaction(CompactionResponse)
    /// The answer to a lease grant.
    case leaseGrant(LeaseGrantResponse)
    /// The answer to a lease revocation.
    case leaseRevoke(LeaseRevokeResponse)
    /// The answer to a checkpoint.
    case leaseCheckpoint(LeaseCheckpointResponse)
    /// The answer to a cluster metadata change.
    case cluster(ClusterResponse)
    /// The answer to an auth request.
    case auth(AuthResponse)
}

/// The changes of one write request in progress: every change takes the next sub-revision of
/// `beginRevision + 1`.
struct WriteBatch {
    let beginRevision: Int64
    var changes: Int64 = 0
    var mutations: [BackendMutation] = []
    var events: [Event] = []

    init(beginRevision: Int64) {
        self.beginRevision = beginRevision
    }

    /// The revision as seen inside the request: the new revision once something changed.
    var revision: Int64 { changes > 0 ? beginRevision + 1 : beginRevision }

    mutating func nextRevision() -> Revision {
        defer { changes += 1 }
        return Revision(main: beginRevision + 1, sub: changes)
    }
}

/// The compare outcomes of a transaction and its nested transactions, decided before any write
/// (etcd's `compareToPath`).
struct TxnPlan {
    var succeeded: Bool
    /// One plan per nested transaction of the chosen branch, in order.
    var nested: [TxnPlan]
}

extension StateStore {
    /// Applies any request.
    ///
    /// - Throws: ``StateError``; the store is then unchanged.
    public mutating func apply(_ request: StateRequest) throws(StateError) -> Applied<StateResponse> {
        if isOutOfSpace && Self.addsData(request) { throw .noSpace }
        switch request {
        case .authorized(let info, .auth(let r)):
            let a = try applyAuth(r, as: info)
            return Applied(response: .auth(a.response), mutations: a.mutations)
        case .authorized(let info, let inner):
            try checkPermission(info, for: inner)
            return try apply(inner)
        case .auth(let r):
            let a = try applyAuth(r, as: nil)
            return Applied(response: .auth(a.response), mutations: a.mutations)
        case .range(let r):
            return Applied(response: .range(try range(r)))
        case .put(let r):
            let a = try put(r)
            return Applied(response: .put(a.response), mutations: a.mutations, events: a.events)
        case .deleteRange(let r):
            let a = try deleteRange(r)
            return Applied(response: .deleteRange(a.response), mutations: a.mutations, events: a.events)
        case .txn(let r):
            let a = try txn(r)
            return Applied(response: .txn(a.response), mutations: a.mutations, events: a.events)
        case .compaction(let r):
            let a = try compact(r)
            return Applied(response: .compaction(a.response), mutations: a.mutations, events: a.events)
        case .leaseGrant(let r):
            let a = try grantLease(r)
            return Applied(response: .leaseGrant(a.response), mutations: a.mutations, events: a.events)
        case .leaseRevoke(let r):
            let a = try revokeLease(r)
            return Applied(response: .leaseRevoke(a.response), mutations: a.mutations, events: a.events)
        case .leaseCheckpoint(let r):
            let a = checkpointLeases(r)
            return Applied(response: .leaseCheckpoint(a.response), mutations: a.mutations, events: a.events)
        case .alarm(let r):
            let a = changeAlarms(r)
            return Applied(response: .cluster(a.response), mutations: a.mutations)
        case .publishMember(let r):
            let a = publish(r)
            return Applied(response: .cluster(a.response), mutations: a.mutations)
        case .updateMemberPeerURLs(let r):
            let a = updatePeerURLs(r)
            return Applied(response: .cluster(a.response), mutations: a.mutations)
        }
    }

    /// Whether `request` adds data, and so is refused while a NOSPACE alarm is raised (etcd's
    /// capped applier refuses puts, transactions that write and lease grants; deletions,
    /// compactions and revokes still free space).
    public static func addsData(_ request: StateRequest) -> Bool {
        switch request {
        case .put, .leaseGrant: return true
        case .txn(let txn): return !txn.isReadOnly
        case .authorized(_, let inner): return addsData(inner)
        default: return false
        }
    }

    // MARK: - Put

    /// Puts a key, as etcd's `KV.Put`.
    ///
    /// - Throws: ``StateError/emptyKey``, ``StateError/valueProvided``, ``StateError/leaseProvided``,
    ///   ``StateError/requestTooLarge``, ``StateError/leaseNotFound`` (unknown lease), or
    ///   ``StateError/keyNotFound`` (`ignoreValue`/`ignoreLease` on a missing key).
    public mutating func put(_ request: PutRequest) throws(StateError) -> Applied<PutResponse> {
        try Self.validate(.put(request), configuration: configuration)
        try checkPutAgainstState(request)
        var batch = WriteBatch(beginRevision: currentRevision)
        let response = executePut(request, in: &batch)
        finish(&batch)
        return Applied(
            response: PutResponse(revision: currentRevision, prevKV: response.prevKV),
            mutations: batch.mutations,
            events: batch.events
        )
    }

    /// etcd's `checkRequestPut` (and the lease lookup of `Put`): the lease must exist, and the key
    /// must exist for `ignoreValue`/`ignoreLease`.
    func checkPutAgainstState(_ request: PutRequest) throws(StateError) {
        if request.lease != 0 && leaseTable[request.lease] == nil { throw .leaseNotFound }
        if request.ignoreValue || request.ignoreLease {
            guard index.entry(for: request.key)?.live != nil else { throw .keyNotFound }
        }
    }

    private mutating func executePut(_ request: PutRequest, in batch: inout WriteBatch) -> PutResponse {
        var value = request.value
        var lease = request.lease
        if request.ignoreValue || request.ignoreLease, let current = index.entry(for: request.key)?.live {
            if request.ignoreValue { value = self.value(of: current, key: request.key) }
            if request.ignoreLease { lease = current.lease }
        }
        let prev = writePut(key: request.key, value: value, lease: lease, in: &batch)
        return PutResponse(revision: batch.revision, prevKV: request.prevKV ? prev : nil)
    }

    /// Writes a new version of `key` and returns the previous live version.
    private mutating func writePut(
        key: [UInt8],
        value: [UInt8],
        lease: Int64,
        in batch: inout WriteBatch
    ) -> KeyValue? {
        let revision = batch.nextRevision()
        var position = index.lowerBound(key)
        var prev: KeyValue? = nil
        var createRevision = revision.main
        var version: Int64 = 1
        var oldLease: Int64 = 0
        if index.holds(key, at: position) {
            if let live = index[position].live {
                prev = keyValue(of: live, key: key)
                createRevision = live.createRevision
                version = live.version + 1
                oldLease = live.lease
            }
        } else {
            position = index.insert(KeyEntry(key: key, history: []), at: position)
        }
        let record = VersionRecord(
            revision: revision,
            createRevision: createRevision,
            version: version,
            lease: lease,
            value: value,
            isTombstone: false
        )
        index.modifyHistory(at: position) { $0.append(record) }
        noteResidentValue(key: key, record: record)
        log.append(LogEntry(revision: revision, key: key, isTombstone: false))
        batch.mutations.append(
            .put(
                key: BackendLayout.versionKey(revision),
                value: BackendLayout.encode(key: key, record: record, value: value))
        )
        if oldLease != 0 { leaseKeys[oldLease]?.remove(key) }
        if lease != 0 && leaseTable[lease] != nil { leaseKeys[lease, default: []].insert(key) }
        let entry = index[position]
        batch.events.append(event(for: entry, at: entry.history.count - 1, previous: prev))
        return prev
    }

    // MARK: - Delete

    /// Deletes a key or key range, as etcd's `KV.DeleteRange`. Deleting nothing does not change
    /// the revision.
    ///
    /// - Throws: ``StateError/emptyKey``, ``StateError/requestTooLarge``.
    public mutating func deleteRange(_ request: DeleteRangeRequest) throws(StateError) -> Applied<DeleteRangeResponse> {
        try Self.validate(.deleteRange(request), configuration: configuration)
        var batch = WriteBatch(beginRevision: currentRevision)
        let response = executeDelete(request, in: &batch)
        finish(&batch)
        return Applied(
            response: DeleteRangeResponse(
                revision: currentRevision,
                deleted: response.deleted,
                prevKVs: response.prevKVs
            ),
            mutations: batch.mutations,
            events: batch.events
        )
    }

    private mutating func executeDelete(
        _ request: DeleteRangeRequest, in batch: inout WriteBatch
    )
        -> DeleteRangeResponse
    {
        var keys: [[UInt8]] = []
        index.forEach(in: KeyRange(key: request.key, rangeEnd: request.rangeEnd)) { entry in
            if entry.live != nil { keys.append(entry.key) }
            return true
        }
        var prevKVs: [KeyValue] = []
        for key in keys {
            if let prev = writeDelete(key: key, in: &batch), request.prevKV {
                prevKVs.append(prev)
            }
        }
        return DeleteRangeResponse(revision: batch.revision, deleted: Int64(keys.count), prevKVs: prevKVs)
    }

    /// Writes a tombstone for a live key and returns its previous version.
    mutating func writeDelete(key: [UInt8], in batch: inout WriteBatch) -> KeyValue? {
        guard let position = index.find(key), let live = index[position].live else { return nil }
        let revision = batch.nextRevision()
        let record = VersionRecord.tombstone(at: revision)
        let prev = keyValue(of: live, key: key)
        index.modifyHistory(at: position) { $0.append(record) }
        log.append(LogEntry(revision: revision, key: key, isTombstone: true))
        batch.mutations.append(
            .put(key: BackendLayout.versionKey(revision), value: BackendLayout.encode(key: key, record: record, value: []))
        )
        if live.lease != 0 { leaseKeys[live.lease]?.remove(key) }
        let entry = index[position]
        batch.events.append(event(for: entry, at: entry.history.count - 1, previous: prev))
        return prev
    }

    /// Ends a write request: takes the new revision if anything changed.
    mutating func finish(_ batch: inout WriteBatch) {
        guard batch.changes > 0 else { return }
        currentRevision = batch.beginRevision + 1
        batch.mutations.append(.put(key: BackendLayout.revisionKey, value: BackendLayout.encodeInt(currentRevision)))
    }

    // MARK: - Txn

    /// Runs a transaction, as etcd's `KV.Txn`.
    ///
    /// Follows etcd 3.4: every compare, including those of nested transactions, is evaluated
    /// against the state before the transaction; then the puts of the chosen path are checked
    /// (lease exists, key exists for `ignoreValue`/`ignoreLease`), then its reads (revision not
    /// compacted or in the future); only then are the operations run, reads seeing earlier writes.
    /// The whole transaction takes one revision if it changes anything. Each operation's response
    /// carries the revision as seen at that point of the transaction (the new revision once
    /// something was written); a nested ``TxnResponse`` carries the revision at its end (etcd
    /// leaves that header empty).
    ///
    /// - Throws: ``StateError/tooManyOperations``, ``StateError/emptyKey``, ``StateError/valueProvided``,
    ///   ``StateError/leaseProvided``, ``StateError/duplicateKey``, ``StateError/requestTooLarge``,
    ///   ``StateError/leaseNotFound``, ``StateError/keyNotFound``, ``StateError/futureRevision``,
    ///   ``StateError/compacted``.
    public mutating func txn(_ request: TxnRequest) throws(StateError) -> Applied<TxnResponse> {
        try Self.validate(.txn(request), configuration: configuration)
        let plan = makePlan(request)
        try checkPlan(request, plan, puts: true)
        try checkPlan(request, plan, puts: false)
        var batch = WriteBatch(beginRevision: currentRevision)
        let responses = executeTxn(request, plan, in: &batch)
        finish(&batch)
        return Applied(
            response: TxnResponse(revision: currentRevision, succeeded: plan.succeeded, responses: responses),
            mutations: batch.mutations,
            events: batch.events
        )
    }

    private func makePlan(_ request: TxnRequest) -> TxnPlan {
        let succeeded = request.compares.allSatisfy { evaluate($0) }
        var nested: [TxnPlan] = []
        for op in succeeded ? request.success : request.failure {
            if case .txn(let t) = op { nested.append(makePlan(t)) }
        }
        return TxnPlan(succeeded: succeeded, nested: nested)
    }

    private func checkPlan(_ request: TxnRequest, _ plan: TxnPlan, puts: Bool) throws(StateError) {
        var nestedIndex = 0
        for op in plan.succeeded ? request.success : request.failure {
            switch op {
            case .put(let p):
                if puts { try checkPutAgainstState(p) }
            case .range(let r):
                if !puts && r.revision > 0 {
                    if r.revision > currentRevision { throw .futureRevision }
                    if r.revision < compactedRevision { throw .compacted }
                }
            case .deleteRange:
                break
            case .txn(let t):
                try checkPlan(t, plan.nested[nestedIndex], puts: puts)
                nestedIndex += 1
            }
        }
    }

    private mutating func executeTxn(_ request: TxnRequest, _ plan: TxnPlan, in batch: inout WriteBatch) -> [ResponseOp] {
        var responses: [ResponseOp] = []
        var nestedIndex = 0
        for op in plan.succeeded ? request.success : request.failure {
            switch op {
            case .range(let r):
                // Cannot fail: the key and revision were checked before any write.
                let response =
                    (try? readRange(r, currentRevision: batch.revision)) ?? RangeResponse(revision: batch.revision)
                responses.append(.range(response))
            case .put(let p):
                responses.append(.put(executePut(p, in: &batch)))
            case .deleteRange(let d):
                responses.append(.deleteRange(executeDelete(d, in: &batch)))
            case .txn(let t):
                let nestedPlan = plan.nested[nestedIndex]
                nestedIndex += 1
                let nested = executeTxn(t, nestedPlan, in: &batch)
                responses.append(
                    .txn(TxnResponse(revision: batch.revision, succeeded: nestedPlan.succeeded, responses: nested))
                )
            }
        }
        return responses
    }

    // MARK: - Compaction

    /// Discards history below `request.revision`, as etcd's `KV.Compact`.
    ///
    /// For each key, the latest version at or below the compaction revision is kept, unless it is
    /// a tombstone older than the compaction revision; every older version is dropped. (A tombstone
    /// at exactly the compaction revision is kept until the next compaction, so that a watch
    /// replaying from the compaction revision still sees that deletion.) The revision is unchanged.
    ///
    /// - Throws: ``StateError/compacted`` if `request.revision <= compactedRevision`,
    ///   ``StateError/futureRevision`` if it is above ``currentRevision``.
    public mutating func compact(_ request: CompactionRequest) throws(StateError) -> Applied<CompactionResponse> {
        let target = request.revision
        if target <= compactedRevision { throw .compacted }
        if target > currentRevision { throw .futureRevision }

        var end = 0
        var hi = log.count
        while end < hi {
            let mid = (end + hi) >> 1
            if log[mid].revision.main <= target { end = mid + 1 } else { hi = mid }
        }
        // Walking backwards, the first version seen of a key is its latest at or below `target`.
        var seen = Set<[UInt8]>()
        var keep = [Bool](repeating: false, count: end)
        var dropped: [[UInt8]: Int] = [:]
        for i in stride(from: end - 1, through: 0, by: -1) {
            let logEntry = log[i]
            if seen.insert(logEntry.key).inserted && (!logEntry.isTombstone || logEntry.revision.main == target) {
                keep[i] = true
            } else {
                dropped[logEntry.key, default: 0] += 1
            }
        }

        var mutations: [BackendMutation] = []
        var newLog: [LogEntry] = []
        newLog.reserveCapacity(log.count - dropped.count)
        for i in 0..<end {
            if keep[i] {
                newLog.append(log[i])
            } else {
                mutations.append(.delete(key: BackendLayout.versionKey(log[i].revision)))
            }
        }
        newLog.append(contentsOf: log[end...])
        log = newLog

        // Dropped versions are always the oldest ones of their key. The order of this loop does
        // not affect the resulting state.
        for (key, n) in dropped {
            guard let position = index.find(key) else { continue }
            let (remaining, freed) = index.modifyHistory(at: position) { history -> (Int, Int) in
                let freed = history[..<n].reduce(0) { $0 + $1.residentBytes }
                history.removeFirst(n)
                return (history.count, freed)
            }
            residentBytes -= freed
            if remaining == 0 { index.remove(at: position) }
        }

        compactedRevision = target
        mutations.append(.put(key: BackendLayout.compactedKey, value: BackendLayout.encodeInt(target)))
        return Applied(response: CompactionResponse(revision: currentRevision), mutations: mutations)
    }
}
