import Linearizability
import Primitives
@_spi(Testing) import RaftCore
@_spi(Testing) import ReplicatedMember
import StateMachine
import Storage

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

/// Runs a whole Statehouse group in one thread under a seeded network, disk and clock.
///
/// Each member is the real ``Member`` (Raft core, MVCC state machine, leases, request
/// bookkeeping) over the real ``MemberStorage`` on a ``MemoryEngine`` with crash semantics:
/// a batch's log entries and hard state become durable only when its simulated fsync completes,
/// and only then are its messages sent; the state machine's changes and applied index are then
/// written in one unsynced batch. A crash discards the member's memory and every write not yet
/// durable; a restart rebuilds the member from what the engine kept.
///
/// After every step of a member the checker verifies the safety properties docs/raft.md lists
/// (election safety, log matching, leader completeness, committed entries never change, the
/// leader commit rule, term changes, acknowledged entries kept, stale leader refused, match
/// index monotonicity, one membership change at a time, removed leader steps down, check
/// quorum, equal revisions and state digests at equal applied indexes, linearizable reads,
/// leases, exactly-once writes), and at every restart that nothing synced was lost
/// (MemberWatch.swift). After the faults heal, a liveness phase requires a leader, a fresh
/// committed write, every member caught up within ``SimulationOptions/livenessBound`` and equal
/// state digests; then every key is read, every acknowledged write must be the committed entry
/// at its index, and the clients' key/value history must be linearizable.
public final class Simulation {
    /// The options of this run.
    public let options: SimulationOptions
    /// The simulated time now, in microseconds.
    public private(set) var now: UInt64 = 0
    /// The first property found broken, if any; the run stops at it.
    public private(set) var violation: Violation?
    /// The hash of every event processed so far: equal seeds give equal hashes.
    public var traceHash: UInt64 { trace.value }
    /// Events processed so far.
    public private(set) var eventCount = 0
    /// Counters describing the run.
    public private(set) var statistics = Statistics()
    /// A scripted network rule: a message for which it returns false is lost. Scenario tests use
    /// it to steer a run into an exact interleaving (for example Raft's Figure 8).
    public var deliveryFilter: ((RaftMessage) -> Bool)?
    /// Receives every traced event as a line (`simulate --trace`); it observes the run and
    /// changes nothing in it.
    public var eventLog: ((String) -> Void)?

    /// Counters describing a run.
    public struct Statistics: Sendable, Hashable {
        /// Writes acknowledged to clients.
        public var writesAcknowledged = 0
        /// Writes refused or provably not applied.
        public var writesFailed = 0
        /// Writes whose outcome stayed unknown.
        public var writesUnknown = 0
        /// Linearizable reads served.
        public var readsServed = 0
        /// Terms in which a leader was elected.
        public var leadersElected = 0
        /// Snapshots installed from a leader.
        public var snapshotsInstalled = 0
        /// Member crashes.
        public var crashes = 0
        /// Messages sent.
        public var messagesSent = 0
        /// Messages lost to random loss (not counting partitions).
        public var messagesDropped = 0
        /// Client operations in the key/value history given to the linearizability checker.
        public var historyLength = 0
        /// MVCC compactions applied for clients.
        public var compactions = 0
        /// Compactions the leaders' auto-compaction proposed, as the first member applied them.
        public var autoCompactions = 0
        /// Leases that expired (were revoked by a leader's lease clock).
        public var leasesExpired = 0
        /// Writes a client sent again in its write session after their outcome was unknown.
        public var sessionRetries = 0
        /// Requests a client sent again, to another member after a short backoff, because the
        /// member refused them before proposing them (not leader, no leader, down…) or, for
        /// reads, did not answer in time.
        public var clientRetries = 0
        /// Key/value operations (puts, gets, deletes, compare-and-swaps) acknowledged.
        public var operationsAcknowledged = 0
        /// Key/value operations that failed for good (every attempt refused, or the state
        /// machine's answer was an error).
        public var operationsFailed = 0
        /// Session writes the server refused because their session had expired (or forgot them).
        public var sessionRefusals = 0
        /// Batches whose fsync stalled.
        public var fsyncStalls = 0
        /// Forward jumps of a member's clock.
        public var clockJumps = 0
    }

    enum Event {
        case tick(node: Int, incarnation: UInt64)
        case deliver(RaftMessage)
        case persisted(node: Int, incarnation: UInt64)
        case applied(node: Int, incarnation: UInt64)
        case clientRequest(client: Int)
        case fault
        case restart(node: Int)
        case healLinks([Link])
        case unpause(node: Int, incarnation: UInt64)
        case requestTimeout(operation: Int)
        case retry(operation: Int)
        /// `node` sees its connection from crashed member `peer` close.
        case peerLost(node: Int, peer: NodeID)
    }

    enum Input {
        case message(RaftMessage)
        case tick
        case request(operation: Int)
        case transfer(to: NodeID)
        case confChange(ConfChange, operation: Int)
        case campaign
        case peerLost(NodeID)
    }

    struct Link: Hashable {
        var from: Int
        var to: Int
    }

    struct SimulatedHost {
        let id: NodeID
        let engine = MemoryEngine()
        var storage: MemberStorage?
        var core: Member?
        var incarnation: UInt64 = 0
        var isPaused = false
        var isBusy = false
        var isRetired = false
        var inbox: [Input] = []
        var pendingReady: Ready?
        var pendingOutput: BatchOutput?
        var clockFactor = 1.0
        /// Client operations waiting on this member, by request identifier (= operation number).
        var waiting: Set<Int> = []
        /// Membership changes proposed here, with their log positions.
        var confChanges: [Int: LogPosition] = [:]
        var checkedCommit: LogIndex = 0
        var durableHardState = HardState()
    }

    /// A client request and what became of it.
    struct Operation {
        enum Kind: Equatable {
            case put(key: String, value: String)
            case get(key: String)
            case delete(key: String)
            case compareAndSwap(key: String, expected: String?, new: String)
            case confChange
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
        var end: UInt64 = 0

        var isWrite: Bool {
            switch kind {
            case .put, .delete, .compareAndSwap: true
            default: false
            }
        }

        /// Whether the operation belongs in the key/value history (puts, gets, deletes and
        /// compare-and-swaps).
        var isKeyValue: Bool {
            if case .get = kind { return true }
            return isWrite
        }
    }

    var rng: SeededGenerator
    var queue = EventQueue<Event>()
    var members: [SimulatedHost] = []
    var trace = StableHasher()
    var tail: [(time: UInt64, code: UInt64, values: [UInt64])] = []
    var blocked: [Link: Int] = [:]
    var operations: [Operation] = []
    var inFaultPhase = false
    /// Set when the liveness phase heals everything: from then on no message is lost or doubled.
    var networkHealed = false
    var leaderHint: NodeID = noNode
    let keyCount: Int
    let clientCount: Int

    /// What the session client (client 0) knows of a lease.
    struct LeaseRecord {
        var ttl: Int64
        /// When the client sent the last grant or keep-alive that was answered positively: the
        /// lease is promised to last at least TTL from then (the leader renews after receipt).
        var lastAcknowledged: UInt64
    }
    var leaseRecords: [Int64: LeaseRecord] = [:]
    var sessionLease: Int64?

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
    var writeSessions: [Int: WriteSession] = [:]
    /// The most attempts a client makes for one write in a session.
    static let maxSessionAttempts = 5
    /// Value → the session write that put it (values are unique per write).
    var sessionWriteValues: [String: Int] = [:]
    /// Value of a session write → the revisions at which it was applied (put), on any member.
    var sessionValueRevisions: [String: Set<Int64>] = [:]
    /// The highest store revision any client has seen in an answer (clients compact behind it).
    var highestRevisionSeen: Int64 = 0
    var expiredLeasesSeen: Set<Int64> = []
    /// When members' clocks jumped forward, and by how many ticks.
    var clockJumps: [(time: UInt64, ticks: Int)] = []
    /// Disk faults (see StorageFaults.swift).
    var storageFaults: StorageFaultState

    // Checker state.
    var leaderOfTerm: [Term: NodeID] = [:]
    var entryRecord: [IndexTerm: EntryFingerprint] = [:]
    /// The committed entry at each index, once any member has committed it while holding it.
    var committedRecord: [EntryFingerprint?] = [nil]
    /// The store revision after applying through an index, as first seen on any member.
    var revisionRecord: [LogIndex: Int64] = [:]
    var maxAcknowledgedIndex: LogIndex = 0
    /// What the checker remembers of each member across crashes (see MemberWatch.swift).
    var watches = MemberWatches()
    /// The whole-state digest after applying through an index, as first seen on any member.
    var digestRecord: [LogIndex: (digest: UInt32, member: NodeID)] = [:]
    /// For each acknowledged write, the hash of the entry whose application answered it.
    var answeredEntries: [Int: UInt64] = [:]
    /// When each term's leader was first seen, in that order.
    var leaderTerms: [(time: UInt64, term: Term)] = []

    struct IndexTerm: Hashable {
        var index: LogIndex
        var term: Term
    }

    struct EntryFingerprint: Hashable {
        var term: Term
        var hash: UInt64
        var previousTerm: Term
    }

    /// Creates a group of `options.nodeCount` founding members, all up, with nothing scheduled.
    public init(options: SimulationOptions) {
        self.options = options
        rng = SeededGenerator(seed: options.seed)
        storageFaults = StorageFaultState(options: options)
        keyCount = 8 + Int(rng.next(below: 9))
        clientCount = 8 + Int(rng.next(below: 21))
        let founders = (1...options.nodeCount).map { NodeID($0) }
        for id in founders {
            var member = SimulatedHost(id: id)
            member.storage = try! makeStorage(on: member.engine)
            try! member.storage!.bootstrap(voters: founders)
            member.clockFactor = 1 + options.clockSkew * (2 * Double(rng.next(below: 1_000)) / 1_000 - 1)
            members.append(member)
        }
        prepareStorageFaults()
        for index in members.indices { start(index) }
    }

    // MARK: - Running

    /// Runs the full randomized scenario: background load and faults for the fault phase, then
    /// everything heals and the liveness phase must converge; finally the client history must be
    /// linearizable. Returns the first violation.
    @discardableResult
    public func runScenario() -> Violation? {
        inFaultPhase = true
        if options.clientThinkTime > 0 {
            for client in 0..<clientCount {
                queue.schedule(.clientRequest(client: client), at: now + randomInterval(options.clientThinkTime))
            }
        }
        if options.meanTimeBetweenFaults > 0 { queue.schedule(.fault, at: now + randomInterval(options.meanTimeBetweenFaults)) }
        run(for: options.faultPhaseDuration)
        inFaultPhase = false
        guard violation == nil else { return violation }
        healAll()
        if checkLiveness() && checkFinalReads() && checkAcknowledgedWritesDurable() { checkLinearizability() }
        return violation
    }

    /// Processes events for `duration` of simulated time, or until a violation.
    public func run(for duration: UInt64) {
        let end = now + duration
        while violation == nil, let next = queue.nextTime, next <= end {
            let (time, event) = queue.pop()!
            now = time
            handle(event)
        }
        if violation == nil { now = max(now, end) }
    }

    /// Processes events until `condition` holds (checked every 10 ms), `timeout` passes, or a
    /// violation; returns whether the condition held.
    @discardableResult
    public func run(until condition: (Simulation) -> Bool, timeout: UInt64) -> Bool {
        let end = now + timeout
        while violation == nil && now < end {
            if condition(self) { return true }
            run(for: min(10_000, end - now))
        }
        return violation == nil && condition(self)
    }

    /// Requires, with all faults healed, a leader, a newly committed write and every member
    /// caught up with every acknowledged write and holding the same state digest within the
    /// liveness bound; records a liveness violation otherwise.
    @discardableResult
    public func checkLiveness() -> Bool {
        let start = now
        var probe: Int?
        let converged = run(
            until: { sim in
                if let op = probe, case .succeeded(let index) = sim.operations[op].outcome {
                    return sim.allCaughtUp(to: max(index, sim.maxAcknowledgedIndex))
                }
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
        return active.allSatisfy { $0.core != nil && !$0.isBusy && $0.core!.appliedIndex >= index && $0.core!.appliedIndex == first }
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
            let input: KeyValueModel.Input
            switch operation.kind {
            case .put(let key, let value): input = .put(key: key, value: value)
            case .get(let key): input = .get(key: key)
            case .delete(let key): input = .delete(key: key)
            case .compareAndSwap(let key, let expected, let new): input = .compareAndSwap(key: key, expected: expected, new: new)
            case .confChange, .leaseGrant, .leaseKeepAlive, .leaseRevoke, .leasePut, .compact, .sessionGrant: continue
            }
            // A retried write is one write: its last attempt stands for it.
            if operation.isRetried { continue }
            switch operation.outcome {
            case .succeeded:
                guard let output = operation.output else { continue }
                history.append(client: number, input, call: Int64(operation.start), return: Int64(operation.end), output: output)
            case .unknown, .pending:
                if operation.isWrite { history.appendUnknown(client: number, input, call: Int64(operation.start)) }
            case .failed:
                continue
            }
        }
        statistics.historyLength = history.count
        switch LinearizabilityChecker(model: KeyValueModel(), stepBudget: options.linearizabilityStepBudget).check(history) {
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

    // MARK: - Scripted control (for scenario tests)

    /// The member that is leader in the highest term among running members, if any.
    public func leader() -> NodeID? {
        var best: (term: Term, id: NodeID)?
        for member in members {
            guard let raft = member.core?.raft, raft.role == .leader else { continue }
            if best == nil || raft.term > best!.term { best = (raft.term, member.id) }
        }
        return best?.id
    }

    /// The Raft core of a running member (a copy, for inspection).
    public func node(_ id: NodeID) -> RaftNode? { members[Int(id) - 1].core?.raft }

    /// A running member (a copy, for inspection).
    public func member(_ id: NodeID) -> Member? { members[Int(id) - 1].core }

    /// The identifiers of every member ever started.
    public var memberIDs: [NodeID] { members.map(\.id) }

    /// The applied index of a running member's state machine (0 when it is down).
    public func appliedIndex(of id: NodeID) -> LogIndex { members[Int(id) - 1].core?.appliedIndex ?? 0 }

    /// Kills a member: its memory and unsynced writes are lost.
    public func crash(_ id: NodeID) { crash(index: Int(id) - 1) }

    /// Restarts a crashed member from its disk.
    public func restart(_ id: NodeID) { start(Int(id) - 1) }

    /// Cuts the link from `from` to `to` (one direction only).
    public func cut(from: NodeID, to: NodeID) { block([Link(from: Int(from) - 1, to: Int(to) - 1)]) }

    /// Cuts every link between `group` and the other members, both ways.
    public func partition(_ group: [NodeID]) {
        let inside = Set(group.map { Int($0) - 1 })
        var links: [Link] = []
        for a in members.indices where inside.contains(a) {
            for b in members.indices where !inside.contains(b) {
                links.append(Link(from: a, to: b))
                links.append(Link(from: b, to: a))
            }
        }
        block(links)
    }

    /// Makes a member start an election now instead of waiting for its timeout.
    public func campaign(_ id: NodeID) { deliver(.campaign, to: Int(id) - 1) }

    /// Restores every link and resumes every paused member (crashed members stay down).
    public func healNetwork() {
        blocked = [:]
        for index in members.indices where members[index].isPaused { unpause(index) }
    }

    /// Submits a client put of a fresh value to a random key at a member; returns its handle.
    @discardableResult
    public func write(at id: NodeID) -> Int {
        let key = "k\(rng.next(below: UInt64(keyCount)))"
        return submit(.put(key: key, value: "v\(operations.count)"), at: Int(id) - 1)
    }

    /// Submits a linearizable read of a random key to a member; returns its handle.
    @discardableResult
    public func read(at id: NodeID) -> Int {
        submit(.get(key: "k\(rng.next(below: UInt64(keyCount)))"), at: Int(id) - 1)
    }

    /// Submits a lease grant (TTL in seconds) to a member; returns its handle. The session
    /// client's bookkeeping follows it, so the lease checks apply.
    @discardableResult
    public func grantLease(ttl: Int64, at id: NodeID) -> Int { submit(.leaseGrant(ttl: ttl), at: Int(id) - 1, client: nil) }

    /// Submits a keep-alive of the session lease to a member; returns its handle.
    @discardableResult
    public func keepAlive(at id: NodeID) -> Int? {
        guard let lease = sessionLease else { return nil }
        return submit(.leaseKeepAlive(id: lease), at: Int(id) - 1, client: nil)
    }

    /// The lease the session client holds, if any.
    public var currentLease: Int64? { sessionLease }

    /// Submits a membership change to a member; returns its handle, which succeeds when the
    /// change is applied on that member.
    @discardableResult
    public func proposeConfChange(_ change: ConfChange, at id: NodeID) -> Int {
        let member = Int(id) - 1
        operations.append(Operation(kind: .confChange, member: member, client: nil, start: now, requiredIndex: 0))
        deliver(.confChange(change, operation: operations.count - 1), to: member)
        return operations.count - 1
    }

    /// What the client knows about an operation.
    public func outcome(of operation: Int) -> Outcome { operations[operation].outcome }

    /// Asks the leader `from` to hand leadership to `to`.
    public func transferLeadership(from: NodeID, to: NodeID) { deliver(.transfer(to: to), to: Int(from) - 1) }

    /// Starts a new, empty member (not yet part of the group) and returns its identifier.
    public func addMember() -> NodeID {
        let id = NodeID(members.count + 1)
        var member = SimulatedHost(id: id)
        member.storage = try! makeStorage(on: member.engine)
        members.append(member)
        start(members.count - 1)
        return id
    }

    /// Stops a member for good (after it was removed from the group).
    public func retire(_ id: NodeID) {
        crash(index: Int(id) - 1)
        members[Int(id) - 1].isRetired = true
    }

    // MARK: - Events

    func handle(_ event: Event) {
        eventCount += 1
        switch event {
        case .tick(let index, let incarnation):
            guard members[index].incarnation == incarnation, members[index].core != nil else { return }
            record(1, UInt64(index))
            let interval = UInt64(Double(options.tickInterval) * members[index].clockFactor)
            queue.schedule(.tick(node: index, incarnation: incarnation), at: now + interval)
            if !members[index].isPaused { deliver(.tick, to: index) }
        case .peerLost(let node, let peer):
            deliver(.peerLost(peer), to: node)
        case .deliver(let message):
            let to = Int(message.to) - 1
            guard to >= 0, to < members.count, members[to].core != nil,
                blocked[Link(from: Int(message.from) - 1, to: to)] == nil
            else { return }
            record(2, UInt64(message.kind.rawValue), message.from, message.to, message.term, message.index, UInt64(message.entries.count))
            deliver(.message(message), to: to)
        case .persisted(let index, let incarnation):
            guard members[index].incarnation == incarnation, members[index].core != nil else { return }
            record(3, UInt64(index))
            persist(index)
        case .applied(let index, let incarnation):
            guard members[index].incarnation == incarnation, members[index].core != nil else { return }
            record(4, UInt64(index))
            apply(index)
        case .clientRequest(let client):
            guard inFaultPhase else { return }
            submitRandomRequest(from: client)
        case .fault:
            guard inFaultPhase else { return }
            queue.schedule(.fault, at: now + randomInterval(options.meanTimeBetweenFaults))
            injectFault()
            injectStorageFault()
            if options.clockJumpRate > 0 && rng.chance(options.clockJumpRate) { jumpClock() }
        case .restart(let index):
            guard inFaultPhase, members[index].core == nil, !members[index].isRetired else { return }
            start(index)
        case .healLinks(let links):
            record(9, UInt64(links.count))
            for link in links {
                if let count = blocked[link] { blocked[link] = count > 1 ? count - 1 : nil }
            }
        case .unpause(let index, let incarnation):
            guard members[index].incarnation == incarnation else { return }
            unpause(index)
        case .requestTimeout(let operation):
            guard operations[operation].outcome == .pending else { return }
            record(10, UInt64(operation))
            members[operations[operation].member].waiting.remove(operation)
            finish(operation, .unknown)
        case .retry(let operation):
            guard inFaultPhase, let client = operations[operation].client else { return }
            let previous = operations[operation]
            operations[operation].isRetried = true
            record(17, UInt64(operation))
            let target: Int
            if previous.outcome == .unknown {
                // The client does not know whether the write was applied: it sends the same
                // write again, in the same session, to any member; the server applies it once.
                // (A read whose answer did not come is simply asked again.)
                if previous.session != nil { statistics.sessionRetries += 1 } else { statistics.clientRetries += 1 }
                target = pickTarget()
            } else {
                // Refused before it was proposed: to the leader the refusal named, or else to the
                // next member of the client's endpoint list, as etcd's client balancer does.
                statistics.clientRetries += 1
                target = previous.redirect ?? (previous.member + 1) % members.count
            }
            submit(previous.kind, at: target, client: client, session: previous.session, retrying: operation)
        }
    }

    private func deliver(_ input: Input, to index: Int) {
        guard members[index].core != nil else { return }
        members[index].inbox.append(input)
        pump(index)
    }

    /// Feeds queued inputs to an idle member, then starts its next batch.
    private func pump(_ index: Int) {
        guard violation == nil, members[index].core != nil, !members[index].isPaused, !members[index].isBusy else { return }
        let inputs = members[index].inbox
        members[index].inbox = []
        for input in inputs {
            process(input, at: index)
            watchProcessed(input, at: index)
        }
        checkMember(index)
        checkWatched(index)
        guard violation == nil, members[index].core!.hasBatch else { return }
        let ready = members[index].core!.startBatch()
        members[index].pendingReady = ready
        members[index].isBusy = true
        // A leader's appends and heartbeats leave before its own write is durable, as the server
        // sends them; a crash before `.persisted` then leaves them only on the followers.
        for message in ready.leaderMessages { send(message) }
        var latency = options.minSyncLatency + rng.next(below: options.maxSyncLatency - options.minSyncLatency + 1)
        if options.fsyncStallRate > 0 && rng.chance(options.fsyncStallRate) {
            // A stalled disk (another process's writes, a full device queue).
            latency += 20_000 + rng.next(below: 980_000)
            statistics.fsyncStalls += 1
        }
        queue.schedule(.persisted(node: index, incarnation: members[index].incarnation), at: now + latency)
    }

    private func process(_ input: Input, at index: Int) {
        switch input {
        case .message(let message):
            members[index].core!.step(message)
        case .tick:
            members[index].core!.tick()
        case .request(let operation):
            var request = clientRequest(for: operations[operation].kind)
            if let stamp = operations[operation].session, case .write(let write, _) = request {
                request = .write(write, session: stamp)
            }
            if let response = members[index].core!.submit(request, id: RequestID(operation)) {
                complete(operation, with: response, at: nil)
            } else {
                members[index].waiting.insert(operation)
                queue.schedule(.requestTimeout(operation: operation), at: now + options.requestTimeout)
            }
        case .transfer(let target):
            members[index].core!.transferLeadership(to: target)
        case .confChange(let change, let operation):
            do {
                let position = try members[index].core!.proposeConfChange(change)
                members[index].confChanges[operation] = position
                checkSingleChange(index, at: position.index)
            } catch {
                finish(operation, .failed)
            }
        case .campaign:
            members[index].core!.campaign()
        case .peerLost(let peer):
            members[index].core!.peerConnectionLost(peer)
        }
    }

    /// The batch's log writes are durable: write them through the member's storage, then send.
    private func persist(_ index: Int) {
        let ready = members[index].pendingReady!
        let raft = members[index].core!.raft
        for entry in ready.entries { checkLogMatching(entry, previousTerm: raft.term(at: entry.index - 1), member: index) }
        if let hardState = ready.hardState {
            let durable = members[index].durableHardState
            if hardState.term < durable.term {
                fail("durable term", "member \(members[index].id) persisted term \(hardState.term) after \(durable.term)")
            }
            if hardState.commit < durable.commit {
                fail("durable commit", "member \(members[index].id) persisted commit \(hardState.commit) after \(durable.commit)")
            }
            members[index].durableHardState = hardState
        }
        do {
            try members[index].storage!.persist(ready)
        } catch {
            writeFailed(index, error, what: "persist a batch")
            return
        }
        let output = members[index].core!.finishBatch()
        watchDurable(index, ready)
        checkMember(index)
        checkWatched(index)
        for message in output.messages { send(message) }
        members[index].pendingOutput = output
        queue.schedule(.applied(node: index, incarnation: members[index].incarnation), at: now + options.applyLatency)
    }

    /// Writes the batch's state changes, then answers clients and frees the member.
    private func apply(_ index: Int) {
        let ready = members[index].pendingReady!
        let output = members[index].pendingOutput!
        members[index].pendingReady = nil
        members[index].pendingOutput = nil
        members[index].isBusy = false
        do {
            try members[index].storage!.write(output)
        } catch {
            writeFailed(index, error, what: "write applied state")
            return
        }
        // The values written leave memory and are read back from the member's engine from now on
        // (the digest check below reads every one of them).
        members[index].core!.stateWritten()
        if members[index].core!.store.backendReader != nil && members[index].core!.store.residentValueBytes != 0 {
            fail("resident values", "member \(members[index].id) still holds values in memory after its state write")
        }
        if ready.snapshot != nil { statistics.snapshotsInstalled += 1 }
        let core = members[index].core!
        let applied = core.appliedIndex
        if ready.snapshot != nil || !ready.committedEntries.isEmpty {
            checkRevision(core.store.currentRevision, at: applied, member: index)
            checkDigest(of: core.store, at: applied, member: index, always: ready.snapshot != nil)
        }
        for entry in ready.committedEntries where entry.kind == .confChange {
            for operation in members[index].confChanges.keys.sorted() {
                guard let position = members[index].confChanges[operation], position.index == entry.index else { continue }
                members[index].confChanges[operation] = nil
                finish(operation, entry.term == position.term ? .succeeded(index: entry.index) : .failed)
            }
        }
        for lease in output.expiredLeases { checkExpiry(of: lease, member: index) }
        checkAppliedOnce(output.events, member: index)
        if index == 0 { statistics.autoCompactions += output.autoCompactions.count }
        for (request, response) in output.responses {
            let operation = Int(request)
            guard members[index].waiting.remove(operation) != nil else { continue }
            if let at = output.appliedAt[request] {
                checkAnsweredEntry(ready.committedEntries.first { $0.index == at }, operation: operation, member: index)
            }
            complete(operation, with: response, at: output.appliedAt[request])
        }
        pump(index)
    }

    // MARK: - Members

    private func configuration(for member: SimulatedHost) -> MemberConfiguration {
        var configuration = MemberConfiguration(id: member.id)
        // As `--initial-cluster` lists every member to a member that joins with an empty log.
        configuration.initialMembers = Set(members.map(\.id))
        configuration.tickMilliseconds = Int64(options.tickInterval / 1_000)
        configuration.snapshotCount = options.snapshotInterval
        configuration.retainedEntries = options.retainedEntries
        configuration.autoCompaction = options.autoCompaction
        configuration.raft.electionTicks = options.electionTicks
        configuration.raft.heartbeatTicks = options.heartbeatTicks
        if let checkpoint = options.leaseCheckpointMilliseconds { configuration.leaseCheckpointMilliseconds = checkpoint }
        configuration.raft.preVote = options.preVote
        configuration.raft.checkQuorum = options.checkQuorum
        configuration.raft.forwardProposals = options.forwardProposals
        configuration.raft.maxSnapshotChunkBytes = options.snapshotChunkBytes
        configuration.raft.maxInflightMessages = options.maxInflightMessages
        configuration.raft.maxBytesPerMessage = options.maxBytesPerMessage
        configuration.raft.randomSeed = options.seed &* 0x9E37_79B9 &+ member.id &* 1_000_003 &+ member.incarnation
        configuration.raft.mutation = options.mutation
        configuration.mutation = options.memberMutation
        configuration.leaderWaitMilliseconds = options.leaderWaitMilliseconds
        configuration.incarnation = member.incarnation
        return configuration
    }

    func makeStorage(on engine: MemoryEngine) throws(StorageError) -> MemberStorage {
        try MemberStorage(
            engine: engine, store: configuration(for: SimulatedHost(id: 1)).storeConfiguration, mutation: options.memberMutation)
    }

    private func start(_ index: Int) {
        guard members[index].core == nil, !members[index].isRetired else { return }
        members[index].incarnation += 1
        do {
            guard let storage = openStorage(index) else { return }
            // The member whose disk may misdirect a write keeps its values in memory: the
            // simulator expects that damage to be found when it restarts (it then stays down),
            // whereas reading a lost value back while it runs stops the process.
            storage.keepsValuesInMemory = index == storageFaults.damagedMember
            let recovered = try storage.recover()
            guard mayRunAfterRecovery(index, snapshotIndex: recovered.raft.snapshot?.metadata.index ?? 0) else { return }
            members[index].durableHardState = recovered.raft.hardState
            members[index].core = Member(configuration: configuration(for: members[index]), recovered: recovered)
        } catch {
            refusesToStart(index, error)
            return
        }
        members[index].checkedCommit = members[index].core!.raft.commitIndex
        checkRecovered(index)
        members[index].isBusy = false
        members[index].isPaused = false
        record(5, UInt64(index))
        let firstTick = rng.next(below: options.tickInterval) + 1
        queue.schedule(.tick(node: index, incarnation: members[index].incarnation), at: now + firstTick)
    }

    func crash(index: Int) {
        guard members[index].core != nil else { return }
        record(6, UInt64(index))
        statistics.crashes += 1
        // A crash may keep some of the oldest unsynced batches whole (as a WAL flushed in part),
        // and may tear the next one or damage the disk (StorageFaults.swift).
        crashDisk(index)
        members[index].core = nil
        members[index].incarnation += 1
        members[index].inbox = []
        members[index].pendingReady = nil
        members[index].pendingOutput = nil
        members[index].isBusy = false
        members[index].isPaused = false
        for operation in members[index].waiting.sorted() { finish(operation, .unknown) }
        for operation in members[index].confChanges.keys.sorted() { finish(operation, .unknown) }
        members[index].waiting = []
        members[index].confChanges = [:]
        // The crashed process's connections close: peers that are not cut off from it see it.
        for other in members.indices where other != index && blocked[Link(from: index, to: other)] == nil {
            queue.schedule(.peerLost(node: other, peer: members[index].id), at: now + delay())
        }
    }

    private func unpause(_ index: Int) {
        guard members[index].isPaused else { return }
        record(8, UInt64(index))
        members[index].isPaused = false
        pump(index)
    }

    func healAll() {
        networkHealed = true
        disarmStorageFaults()
        healNetwork()
        for index in members.indices where members[index].core == nil && !members[index].isRetired { start(index) }
    }

    // MARK: - Network

    private func send(_ message: RaftMessage) {
        statistics.messagesSent += 1
        watchSent(message)
        let link = Link(from: Int(message.from) - 1, to: Int(message.to) - 1)
        guard blocked[link] == nil, deliveryFilter?(message) ?? true else { return }
        if !networkHealed && rng.chance(options.dropRate) {
            statistics.messagesDropped += 1
            return
        }
        queue.schedule(.deliver(message), at: now + delay())
        // A forwarded proposal is not idempotent: applied twice, it would write twice (as in
        // etcd). Peers exchange messages over TCP streams, which never deliver a frame twice, so
        // proposals are lost or reordered here but never duplicated; every other message is
        // idempotent in Raft and may be.
        if message.kind != .propose && !networkHealed && rng.chance(options.duplicateRate) {
            queue.schedule(.deliver(message), at: now + delay())
        }
    }

    private func delay() -> UInt64 {
        options.minDelay + rng.next(below: options.maxDelay - options.minDelay + 1)
    }

    private func block(_ links: [Link]) {
        for link in links { blocked[link, default: 0] += 1 }
    }

    // MARK: - Workload and faults

    private func pickTarget() -> Int {
        if leaderHint != noNode && Int(leaderHint) <= members.count && rng.chance(0.7) { return Int(leaderHint) - 1 }
        return Int(rng.next(below: UInt64(members.count)))
    }

    /// Each client sends one request at a time and waits for its answer (or its timeout) before
    /// the next, as real clients do; this bounds how many requests are in flight.
    private func submitRandomRequest(from client: Int) {
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
        let value = "v\(operations.count)"
        let kind: Operation.Kind
        switch rng.next(below: 100) {
        case 0..<2 where highestRevisionSeen > 30:
            kind = .compact(revision: highestRevisionSeen - 20)
        case 0..<40: kind = .put(key: key, value: value)
        case 40..<70: kind = .get(key: key)
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
        if stamp != nil { sessionWriteValues[value] = operation }
        submit(kind, at: pickTarget(), client: client, session: stamp)
    }

    /// The write sessions' lease TTL in seconds: short, so that faults make some expire.
    static let writeSessionTTL: Int64 = 4

    /// The next sequence number of `client`'s write session, with its acknowledged mark.
    private func nextStamp(for client: Int) -> SessionStamp? {
        guard var session = writeSessions[client], let lease = session.lease else { return nil }
        let sequence = session.nextSequence
        session.nextSequence += 1
        session.outstanding.insert(sequence)
        writeSessions[client] = session
        return SessionStamp(session: lease, sequence: sequence, acknowledged: session.outstanding.min() ?? sequence)
    }

    /// Client 0 keeps a session: it grants a lease, attaches keys to it and keeps it alive, and
    /// now and then revokes it or stops renewing it so that it expires.
    private func submitSessionRequest() {
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
        record(7, UInt64(operation), UInt64(member))
        if members[member].core == nil {
            finish(operation, .failed)
        } else {
            deliver(.request(operation: operation), to: member)
        }
        return operation
    }

    private func clientRequest(for kind: Operation.Kind) -> ClientRequest {
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
        case .confChange:
            preconditionFailure("membership changes are not client requests")
        }
    }

    /// Records a member's answer to an operation. `index` is where a write was applied.
    private func complete(_ operation: Int, with response: ClientResponse, at index: LogIndex?) {
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
        case (.get, .range(let range)):
            let kv = range.kvs.first
            operations[operation].output = .value(kv.map { String(decoding: $0.value, as: UTF8.self) }, version: kv?.version ?? 0)
            if options.checksReadIndexes && appliedAt < operations[operation].requiredIndex {
                fail(
                    "linearizable read",
                    "read \(operation) on member \(members[operations[operation].member].id) was served at applied index \(appliedAt), but index \(operations[operation].requiredIndex) was committed (or a write there acknowledged) before the read began"
                )
            }
            statistics.readsServed += 1
        case (.leaseGrant, .write(.leaseGrant(let grant))):
            leaseRecords[grant.id] = LeaseRecord(ttl: grant.ttl, lastAcknowledged: operations[operation].sent)
            sessionLease = grant.id
        case (.leaseKeepAlive(let id), .leaseKeepAlive(_, let ttl)):
            if ttl > 0 { checkRenewal(operation) }
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
            finish(operation, .unknown)
            return
        case (_, .failure(let error)):
            if case .state = error { operations[operation].failedInStateMachine = true }
            if case .notLeader(let leader) = error, leader != noNode {
                leaderHint = leader
                if Int(leader) <= members.count { operations[operation].redirect = Int(leader) - 1 }
            }
            if case .state(.leaseNotFound) = error { sessionLease = nil }
            finish(operation, .failed)
            return
        default:
            fail("client protocol", "operation \(operation) (\(operations[operation].kind)) got an unexpected answer \(response)")
            return
        }
        finish(operation, .succeeded(index: appliedAt))
    }

    private func finish(_ operation: Int, _ outcome: Outcome) {
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
        if case .succeeded(let index) = outcome { record(11, UInt64(operation), index) } else { record(12, UInt64(operation)) }
        if let client = operations[operation].client, inFaultPhase {
            queue.schedule(.clientRequest(client: client), at: now + randomInterval(options.clientThinkTime))
        }
    }

    /// The client's pause before retrying a refused request: 25 ms doubling with each attempt up
    /// to 400 ms, with ±10% jitter (etcd's client backs off 25 ms with 10% jitter).
    private func retryBackoff(after attempt: Int) -> UInt64 {
        let base = UInt64(25_000) << UInt64(min(attempt, 4))
        return base - base / 10 + rng.next(below: base / 5 + 1)
    }

    /// A random interval averaging `mean`: the sum of two uniform draws (a triangular
    /// distribution), which spreads arrivals without needing a logarithm.
    private func randomInterval(_ mean: UInt64) -> UInt64 {
        rng.next(below: mean) + rng.next(below: mean) + 1
    }

    /// A running member's clock jumps forward: it processes 1–3 ticks at once.
    private func jumpClock() {
        let running = members.indices.filter { members[$0].core != nil && !members[$0].isRetired }
        guard !running.isEmpty else { return }
        let node = running[Int(rng.next(below: UInt64(running.count)))]
        let ticks = 1 + Int(rng.next(below: 3))
        record(19, UInt64(node), UInt64(ticks))
        statistics.clockJumps += 1
        clockJumps.append((now, ticks))
        for _ in 0..<ticks { deliver(.tick, to: node) }
    }

    private func injectFault() {
        let running = members.indices.filter { members[$0].core != nil && !members[$0].isRetired }
        let quorum = options.nodeCount / 2 + 1
        if options.transferRate > 0 && rng.chance(options.transferRate), let leader = leader() {
            let voters = members[Int(leader) - 1].core!.raft.confState.voters.filter { $0 != leader }
            if !voters.isEmpty {
                let target = voters[Int(rng.next(below: UInt64(voters.count)))]
                record(13, leader, target)
                deliver(.transfer(to: target), to: Int(leader) - 1)
            }
        }
        let weights = options.faultWeights
        var pick = Int(rng.next(below: UInt64(weights.reduce(0, +))))
        var kind = 0
        while pick >= weights[kind] {
            pick -= weights[kind]
            kind += 1
        }
        let duration = 200_000 + rng.next(below: 1_800_000)
        switch kind {
        case 0:  // crash and later restart
            guard !running.isEmpty, options.allowQuorumLoss || running.count > quorum else { return }
            let victim = running[Int(rng.next(below: UInt64(running.count)))]
            crash(index: victim)
            queue.schedule(.restart(node: victim), at: now + duration)
        case 1:  // symmetric partition of a minority (or, with quorum loss, of any size)
            let maxSize = options.allowQuorumLoss ? members.count - 1 : (members.count - 1) / 2
            let size = 1 + Int(rng.next(below: UInt64(max(1, maxSize))))
            var group = Array(members.indices)
            for i in 0..<group.count {
                group.swapAt(i, i + Int(rng.next(below: UInt64(group.count - i))))
            }
            let inside = Set(group.prefix(size))
            var links: [Link] = []
            for a in members.indices where inside.contains(a) {
                for b in members.indices where !inside.contains(b) {
                    links.append(Link(from: a, to: b))
                    links.append(Link(from: b, to: a))
                }
            }
            record(14, UInt64(size))
            block(links)
            queue.schedule(.healLinks(links), at: now + duration)
        case 2:  // asymmetric: one member can only send, or only receive
            let node = Int(rng.next(below: UInt64(members.count)))
            let inbound = rng.chance(0.5)
            let links = members.indices.filter { $0 != node }.map { inbound ? Link(from: $0, to: node) : Link(from: node, to: $0) }
            record(15, UInt64(node), inbound ? 1 : 0)
            block(links)
            // A member that cannot receive stays cut off twice as long as other faults last: a
            // leader that cannot hear its followers must be seen to step down (CheckQuorum)
            // before the links heal.
            queue.schedule(.healLinks(links), at: now + (inbound ? 2 * duration : duration))
        case 5:  // a membership change (see MembershipFaults.swift)
            changeMembership()
        case 4:  // a crash followed at once by a restart, losing only what was not yet durable
            guard !running.isEmpty else { return }
            let victim = running[Int(rng.next(below: UInt64(running.count)))]
            crash(index: victim)
            queue.schedule(.restart(node: victim), at: now + 1_000 + rng.next(below: 30_000))
        default:  // pause a process (a long GC or a stalled disk)
            guard !running.isEmpty else { return }
            let node = running[Int(rng.next(below: UInt64(running.count)))]
            guard !members[node].isPaused else { return }
            record(16, UInt64(node))
            members[node].isPaused = true
            queue.schedule(.unpause(node: node, incarnation: members[node].incarnation), at: now + duration / 2)
        }
    }

    // MARK: - Checker

    private func checkMember(_ index: Int) {
        guard let raft = members[index].core?.raft else { return }
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

    private func checkLeaderCompleteness(_ core: RaftNode) {
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

    private func checkCommitted(_ entry: LogEntry, previousTerm: Term, member: Int) {
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

    private func checkLogMatching(_ entry: LogEntry, previousTerm: Term?, member: Int) {
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

    /// A lease revoked for expiry must be gone with all its keys, and must not have expired
    /// before its TTL had passed since the client's last acknowledged grant or keep-alive
    /// (allowing for the expiring leader's clock running fast and one tick of granularity).
    /// Checks that no write of a client session was applied twice: each such write puts a value
    /// no other write puts, so one value at two revisions is one write applied twice.
    private func checkAppliedOnce(_ events: [StateMachine.Event], member: Int) {
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

    private func checkExpiry(of lease: Int64, member: Int) {
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

    private func checkRevision(_ revision: Int64, at index: LogIndex, member: Int) {
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
            traceTail: tail.suffix(40).map { "t=\(formatTime($0.time)) \(describe($0.code, $0.values))" })
    }

    // MARK: - Trace

    func record(_ code: UInt64, _ values: UInt64...) {
        trace.combine(now)
        trace.combine(code)
        for value in values { trace.combine(value) }
        tail.append((now, code, values))
        if tail.count > 80 { tail.removeFirst(40) }
        if let eventLog { eventLog("t=\(formatTime(now)) \(describe(code, values))") }
    }

    private func describe(_ code: UInt64, _ values: [UInt64]) -> String {
        func member(_ index: UInt64) -> String { "member \(index + 1)" }
        switch code {
        case 1: return "tick \(member(values[0]))"
        case 2:
            let kind = RaftMessage.Kind(rawValue: UInt8(values[0])).map { "\($0)" } ?? "?"
            return "deliver \(kind) \(values[1])→\(values[2]) term \(values[3]) index \(values[4]) entries \(values[5])"
        case 3: return "persisted \(member(values[0]))"
        case 4: return "applied \(member(values[0]))"
        case 5: return "start \(member(values[0]))"
        case 6: return "crash \(member(values[0]))"
        case 7: return "client request \(values[0]) to \(member(values[1]))"
        case 8: return "resume \(member(values[0]))"
        case 9: return "heal \(values[0]) links"
        case 10: return "request \(values[0]) timed out"
        case 11: return "request \(values[0]) succeeded at \(values[1])"
        case 12: return "request \(values[0]) failed"
        case 13: return "transfer leadership \(values[0])→\(values[1])"
        case 14: return "partition \(values[0]) members away"
        case 15: return "asymmetric partition of \(member(values[0])) (\(values[1] == 1 ? "cannot receive" : "cannot send"))"
        case 17: return "retry request \(values[0])"
        case 19: return "clock of \(member(values[0])) jumps \(values[1]) ticks"
        case 18:
            let kind = ConfChange.Kind(rawValue: UInt8(values[0])).map { "\($0)" } ?? "?"
            return "membership change: \(kind) \(values[1])"
        default: return "pause \(member(values[0]))"
        }
    }
}

/// Formats microseconds as seconds with millisecond precision.
func formatTime(_ microseconds: UInt64) -> String {
    let milliseconds = microseconds / 1_000
    let fraction = String(milliseconds % 1_000)
    return "\(milliseconds / 1_000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)s"
}
