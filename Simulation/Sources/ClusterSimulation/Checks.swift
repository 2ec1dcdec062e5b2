// The checker: the safety properties checked after every step of a member (with MemberWatch.swift),
// the violation they report, and the end-of-run checks (liveness, equal digests, durable
// acknowledged writes, linearizability).

import Linearizability
import Primitives
@_spi(Testing) import RaftCore
@_spi(Testing) import ReplicatedMember
import StateMachine

/// A broken safety or liveness property, with where and when it broke.
public struct Violation: Error, Sendable, CustomStringConvertible {
    /// The property's name (for example "election safety").
    public var property: String
    /// What was observed.
    public var detail: String
    /// Simulated time of the observation, in microseconds.
    public var time: UInt64
    /// The last events before it, oldest first.
    public var traceTail: [String]

    public var description: String {
        "\(property) violated at t=\(formatTime(time)): \(detail)"
    }
}

extension Simulation {
    /// A log position with its term: where the checker records the entry it saw.
    struct IndexTerm: Hashable {
        var index: LogIndex
        var term: Term
    }

    /// What identifies an entry: its term, a hash of its contents and the term before it.
    struct EntryFingerprint: Hashable {
        var term: Term
        var hash: UInt64
        var previousTerm: Term
    }

    // MARK: - After every step

    /// Checks a member after it processed inputs or made a batch durable: one leader per term,
    /// leader completeness, and that its commit index never falls and what it commits never
    /// changes.
    func checkMember(_ index: Int) {
        guard members[index].isRunning else { return }
        members[index].withCore { checkMember(index, $0.raft) }
    }

    /// `checkMember(_:)` of a running member's Raft core, read in place.
    private func checkMember(_ index: Int, _ raft: RaftNode) {
        let id = members[index].id
        if raft.role == .leader {
            if let existing = leaderOfTerm[raft.term] {
                if existing != id { fail("election safety", "members \(existing) and \(id) are both leader in term \(raft.term)") }
            } else {
                leaderOfTerm[raft.term] = id
                leaderTerms.append((now, raft.term))
                statistics.leadersElected += 1
                checkLeaderCompleteness(raft)
            }
        }
        if raft.commitIndex < members[index].checkedCommit {
            fail("commit monotonicity", "member \(id) commit index went from \(members[index].checkedCommit) to \(raft.commitIndex)")
            return
        }
        var position = members[index].checkedCommit + 1
        while position <= raft.commitIndex {
            if let entry = raft.entry(at: position) {
                checkCommitted(entry, previousTerm: raft.term(at: position - 1) ?? 0, member: index)
            }
            position += 1
        }
        members[index].checkedCommit = raft.commitIndex
    }

    func checkLeaderCompleteness(_ core: RaftNode) {
        guard let highest = committedRecord.lastIndex(where: { $0 != nil }), highest > 0,
            let committedTerm = committedRecord[highest]?.term, LogIndex(highest) >= core.firstIndex
        else { return }
        if core.term(at: LogIndex(highest)) != committedTerm {
            fail(
                "leader completeness",
                "member \(core.id) became leader in term \(core.term) without committed entry \(highest) (term \(committedTerm))"
            )
        }
    }

    func checkCommitted(_ entry: LogEntry, previousTerm: Term, member: Int) {
        let fingerprint = EntryFingerprint(term: entry.term, hash: hash(entry), previousTerm: previousTerm)
        let index = Int(entry.index)
        if index >= committedRecord.count {
            committedRecord.append(contentsOf: repeatElement(nil, count: index + 1 - committedRecord.count))
        }
        guard let recorded = committedRecord[index] else {
            committedRecord[index] = fingerprint
            return
        }
        if recorded.term != fingerprint.term || recorded.hash != fingerprint.hash {
            fail(
                "committed entries never change",
                "member \(members[member].id) committed (index \(index), term \(entry.term)) where (term \(recorded.term)) was committed before"
            )
        }
    }

    func checkLogMatching(_ entry: LogEntry, previousTerm: Term?, member: Int) {
        let key = IndexTerm(index: entry.index, term: entry.term)
        let fingerprint = EntryFingerprint(term: entry.term, hash: hash(entry), previousTerm: previousTerm ?? 0)
        if let recorded = entryRecord[key] {
            if recorded.hash != fingerprint.hash {
                fail("log matching", "member \(members[member].id) stored different data at index \(entry.index), term \(entry.term)")
            } else if previousTerm != nil && recorded.previousTerm != fingerprint.previousTerm {
                fail(
                    "log matching",
                    "member \(members[member].id) has term \(previousTerm!) before (index \(entry.index), term \(entry.term)); another member has \(recorded.previousTerm)"
                )
            }
        } else {
            entryRecord[key] = fingerprint
        }
    }

    /// A multi-key read answered at `revision` must show each key as the committed history has
    /// it at that revision (the events every member produced, WatchClients.swift): all keys from
    /// one point in the history, never a mix.
    func checkSnapshotRead(keys: [String], kvs: [KeyValue?], revision: Int64, operation: Int) {
        guard kvs.count == keys.count else {
            fail("multi-key read", "read \(operation) of \(keys) got \(kvs.count) answers")
            return
        }
        for (key, kv) in zip(keys, kvs) {
            let latest = watchClients.lastEvent(on: Array(key.utf8), atOrBefore: revision)
            let expected = latest.flatMap { $0.kind == .put ? $0 : nil }
            if kv?.modRevision != expected?.revision || kv?.value != expected?.value {
                fail(
                    "multi-key read",
                    "read \(operation) of \(keys) at revision \(revision) saw \(key) at revision \(kv?.modRevision ?? 0), the history has it \(expected.map { "put at \($0.revision)" } ?? "absent") there"
                )
                return
            }
        }
    }

    /// Checks that no write of a client session was applied twice: each such write puts a value
    /// no other write puts, so one value at two revisions is one write applied twice.
    func checkAppliedOnce(_ events: [StateMachine.Event], member: Int) {
        for event in events where event.kind == .put {
            let value = String(decoding: event.kv.value, as: UTF8.self)
            guard let operation = sessionWriteValues[value] else { continue }
            let inserted = sessionValueRevisions[value, default: []].insert(event.kv.modRevision).inserted
            if inserted, let revisions = sessionValueRevisions[value], revisions.count > 1 {
                fail(
                    "exactly-once",
                    "write \(operation) (value \(value)) was applied at revisions \(revisions.sorted()) (seen on member \(members[member].id))"
                )
            }
        }
    }

    /// A lease revoked for expiry must be gone with all its keys, and must not have expired
    /// before its TTL had passed since the client's last acknowledged grant or keep-alive
    /// (allowing for the expiring leader's clock running fast and one tick of granularity).
    func checkExpiry(of lease: Int64, member: Int) {
        let store = members[member].core!.store
        if store.lease(lease) != nil || !store.keys(attachedTo: lease).isEmpty {
            fail("lease safety", "member \(members[member].id) still holds lease \(lease) or its keys after applying its expiry")
        }
        guard expiredLeasesSeen.insert(lease).inserted else { return }
        statistics.leasesExpired += 1
        guard let record = leaseRecords[lease] else { return }
        let ttl = UInt64(record.ttl) * 1_000_000
        // Clock jumps since the keep-alive (on whichever member expired it) shorten it further.
        let jumped = UInt64(clockJumps.filter { $0.time >= record.lastAcknowledged }.reduce(0) { $0 + $1.ticks })
        let allowance = options.tickInterval * (1 + jumped)
        let earliest = ttl > allowance ? UInt64(Double(ttl - allowance) * (1 - options.clockSkew)) : 0
        if now - record.lastAcknowledged < earliest {
            fail(
                "lease safety",
                "lease \(lease) (TTL \(record.ttl) s) expired \(formatTime(now - record.lastAcknowledged)) after its last acknowledged keep-alive"
            )
        }
    }

    func checkRevision(_ revision: Int64, at index: LogIndex, member: Int) {
        if let recorded = revisionRecord[index] {
            if recorded != revision {
                fail(
                    "state machine safety",
                    "member \(members[member].id) is at revision \(revision) after applying through \(index); another member was at \(recorded)"
                )
            }
        } else {
            revisionRecord[index] = revision
        }
    }

    func hash(_ entry: LogEntry) -> UInt64 {
        var hasher = StableHasher()
        hasher.combine(UInt64(entry.kind.rawValue))
        hasher.combine(bytes: entry.data)
        return hasher.value
    }

    func fail(_ property: String, _ detail: String) {
        guard violation == nil else { return }
        violation = Violation(
            property: property, detail: detail, time: now,
            traceTail: traceTailLines())
    }

    // MARK: - End of the run

    /// Requires, with all faults healed, a leader, a newly committed write and every member
    /// caught up with every acknowledged write and holding the same state digest within the
    /// liveness bound; records a liveness violation otherwise.
    @discardableResult
    public func checkLiveness() -> Bool {
        let start = now
        var probe: Int?
        var lastRemedy: UInt64?
        let converged = run(
            until: { sim in
                if let op = probe, case .succeeded(let index) = sim.operations[op].outcome,
                    sim.allCaughtUp(to: max(index, sim.maxAcknowledgedIndex))
                {
                    return true
                }
                sim.moveLeaderToward(strangers: &lastRemedy, since: start)
                // A probe that succeeded waits for the members to catch up.
                if let op = probe, case .succeeded = sim.operations[op].outcome { return false }
                if let op = probe, sim.operations[op].outcome == .pending { return false }
                if let leader = sim.leader() { probe = sim.write(at: leader) }
                return false
            }, timeout: options.livenessBound)
        if !converged && violation == nil {
            let state = members.map { m in
                "\(m.id):\(m.core.map { "\($0.raft.role.rawValue) t\($0.raft.term) c\($0.raft.commitIndex) a\($0.appliedIndex)" } ?? "down")"
            }
            fail(
                "liveness",
                "no convergence within \(formatTime(options.livenessBound)) after healing at t=\(formatTime(start)): \(state.joined(separator: ", "))"
            )
            return false
        }
        return converged && checkDigestsEqual()
    }

    /// The operator's remedy (docs/security.md) for a member that lags behind the addition of
    /// the member now leading: it refuses the leader's messages as a stranger's, so leadership is
    /// moved to a voter it knows, which then sends it the entries it lacks. Done once the links
    /// have been healed and the leader has led for two election timeouts, and again at most
    /// every two election timeouts while a member still does not know the leader.
    func moveLeaderToward(strangers lastRemedy: inout UInt64?, since healed: UInt64) {
        let wait = 2 * UInt64(options.electionTicks) * options.tickInterval
        guard now >= healed + wait, now >= (lastRemedy ?? 0) + wait, let leader = leader(),
            let term = members[Int(leader) - 1].core?.raft.term,
            let elected = leaderTerms.last(where: { $0.term == term })?.time, now >= elected + wait
        else { return }
        let active = activeMembers()
        // (A member never recognizes itself as a peer: the leader is no stranger to itself.)
        guard let stranger = active.first(where: { $0.id != leader && $0.isRunning && $0.core?.recognizes(leader) == false }),
            let leaderConf = members[Int(leader) - 1].core?.raft.confState,
            let target = active.first(where: {
                $0.id != leader && $0.isRunning && leaderConf.voters.contains($0.id) && stranger.core!.recognizes($0.id)
            })
        else { return }
        lastRemedy = now
        statistics.operatorLeaderMoves += 1
        record(.transfer(from: leader, to: target.id))
        deliver(.transfer(to: target.id), to: Int(leader) - 1)
    }

    /// The members that must converge: not retired, still members by their own applied
    /// configuration and, when there is a leader, by the leader's. A member whose removal was
    /// committed while it was cut off (a deposed leader that proposed its own removal, say)
    /// never learns of it, since no leader sends a non-member anything; it pre-votes in vain,
    /// harmlessly, until an operator stops it, so it cannot be required to catch up.
    func activeMembers() -> [SimulatedHost] {
        let groupConf = leader().flatMap { members[Int($0) - 1].core?.raft.confState }
        return members.filter {
            !$0.isRetired && ($0.core?.raft.confState.contains($0.id) ?? true) && (groupConf?.contains($0.id) ?? true)
        }
    }

    func allCaughtUp(to index: LogIndex) -> Bool {
        let active = activeMembers()
        guard let first = active.first?.core?.appliedIndex else { return false }
        return active.allSatisfy { $0.isRunning && !$0.isBusy && $0.core!.appliedIndex >= index && $0.core!.appliedIndex == first }
    }

    /// Checks that every running member at the same applied index has the same state digest.
    @discardableResult
    public func checkDigestsEqual() -> Bool {
        var digests: [(NodeID, LogIndex, UInt32, UInt32)] = []
        for member in activeMembers() {
            guard let core = member.core, let hash = try? core.store.hashKV() else { continue }
            digests.append((member.id, core.appliedIndex, hash.hash, core.store.digest()))
        }
        for (id, applied, hash, whole) in digests.dropFirst() where applied == digests[0].1 {
            if hash != digests[0].2 {
                fail("replica digests", "member \(id) and member \(digests[0].0) have different HashKV at applied index \(applied)")
                return false
            }
            // The whole state: leases, members, alarms and the client session table and the auth store too.
            if whole != digests[0].3 {
                fail("replica digests", "member \(id) and member \(digests[0].0) have different state digests at applied index \(applied)")
                return false
            }
        }
        return true
    }

    /// Checks that every acknowledged write is the committed entry at the index it was applied
    /// at: the very entry whose application answered it (checked then to name the write).
    @discardableResult
    public func checkAcknowledgedWritesDurable() -> Bool {
        for (number, operation) in operations.enumerated() where operation.isWrite {
            guard case .succeeded(let index) = operation.outcome else { continue }
            guard Int(index) < committedRecord.count, let committed = committedRecord[Int(index)] else {
                fail("durability", "write \(number), acknowledged at index \(index), is not a committed entry")
                return false
            }
            if committed.hash != answeredEntries[number] {
                fail("durability", "write \(number) was acknowledged at index \(index), but another entry was committed there")
                return false
            }
        }
        return true
    }

    /// Checks the clients' key/value history with the linearizability checker.
    @discardableResult
    public func checkLinearizability() -> Bool {
        var history = History<KeyValueModel>()
        for (number, operation) in operations.enumerated() {
            // A multi-key transaction is one operation on each of its keys, over the same interval
            // (each key's history is checked alone; the revision check of multi-key reads,
            // `checkSnapshotRead`, covers what the keys must agree on).
            let inputs: [KeyValueModel.Input]
            var outputs: [KeyValueModel.Output]? = operation.output.map { [$0] }
            switch operation.kind {
            case .put(let key, let value): inputs = [.put(key: key, value: value)]
            case .get(let key): inputs = [.get(key: key)]
            case .delete(let key): inputs = [.delete(key: key)]
            case .compareAndSwap(let key, let expected, let new): inputs = [.compareAndSwap(key: key, expected: expected, new: new)]
            case .multiPut(let keys, let value):
                inputs = keys.map { .put(key: $0, value: value) }
                outputs = operation.output.map { Array(repeating: $0, count: keys.count) }
            case .multiGet(let keys):
                inputs = keys.map { .get(key: $0) }
                outputs = operation.outputs.count == keys.count ? operation.outputs : nil
            case .confChange, .leaseGrant, .leaseKeepAlive, .leaseRevoke, .leasePut, .compact, .sessionGrant, .lockLeaseGrant,
                .lockAcquire, .lockQueue, .lockedWrite, .lockRelease:
                continue
            }
            // A write retried in its session is one write (the server applies it once): its last
            // attempt stands for it. Without a session an earlier attempt whose outcome was unknown
            // may have applied as well: it is a write of its own, with an unknown outcome.
            if operation.isRetried {
                if operation.session == nil && operation.isWrite && operation.outcome == .unknown {
                    for input in inputs { history.appendUnknown(client: number, input, call: Int64(operation.sent)) }
                }
                continue
            }
            for (position, input) in inputs.enumerated() {
                switch operation.outcome {
                case .succeeded:
                    guard let outputs else { continue }
                    history.append(
                        client: number, input, call: Int64(operation.start), return: Int64(operation.end), output: outputs[position])
                case .unknown, .pending:
                    if operation.isWrite { history.appendUnknown(client: number, input, call: Int64(operation.start)) }
                case .failed:
                    continue
                }
            }
        }
        statistics.historyLength = history.count
        let checker = LinearizabilityChecker(model: KeyValueModel(), stepBudget: options.linearizabilityStepBudget)
        switch checker.check(history.forgettingUnobservedValues()) {
        case .ok:
            return true
        case .unknown(let partitions):
            // An unfinished search proves nothing: the run fails rather than pass unchecked.
            fail("linearizability", "the checker's step budget ran out on \(partitions.joined(separator: ", "))")
            return false
        case .illegal(let report):
            fail("linearizability", "\(report)")
            return false
        }
    }
}
