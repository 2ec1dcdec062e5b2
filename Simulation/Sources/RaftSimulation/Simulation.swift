@_spi(Testing) import RaftCore

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

/// Runs a whole Raft group in one thread under a seeded network, disk and clock.
///
/// Each member is the real ``RaftNode`` driven by a simulated shell that follows the ``Ready``
/// contract: a batch is made durable after a simulated fsync delay, only then are its messages
/// sent, then its committed entries are applied to a small state machine (a hash chain of applied
/// entries) together with the applied index. A crash discards the member's memory and every write
/// not yet durable; a restart rebuilds the member from its simulated disk.
///
/// After every event the checker verifies: at most one leader per term; log matching (entries with
/// the same index and term have the same data and the same predecessor term); a new leader holds
/// every committed entry; committed entries never change; every member applies the same entry at
/// the same index (and snapshots carry the same state); terms and commit indexes never move back
/// on disk; a linearizable read never returns an index older than a write acknowledged before the
/// read began. After the fault phase heals, a liveness phase requires a leader, a fresh committed
/// write and all members caught up within ``SimulationOptions/livenessBound``.
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

    /// Counters describing a run.
    public struct Statistics: Sendable, Hashable {
        /// Writes acknowledged to clients.
        public var writesAcknowledged = 0
        /// Writes refused or provably not committed.
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
    }

    enum Event {
        case tick(node: Int, incarnation: UInt64)
        case deliver(RaftMessage)
        case persisted(node: Int, incarnation: UInt64)
        case applied(node: Int, incarnation: UInt64)
        case clientWrite
        case clientRead
        case fault
        case restart(node: Int)
        case healLinks([Link])
        case unpause(node: Int, incarnation: UInt64)
        case requestTimeout(operation: Int)
    }

    enum Input {
        case message(RaftMessage)
        case tick
        case write(operation: Int)
        case read(operation: Int)
        case transfer(to: NodeID)
        case confChange(ConfChange, operation: Int)
        case campaign
    }

    struct Link: Hashable {
        var from: Int
        var to: Int
    }

    /// What a member has on its simulated disk.
    struct Disk {
        var hardState = HardState()
        var entries: [LogEntry] = []
        var snapshot: Snapshot?
        /// The state machine: applied index and a hash chain over applied entries, written together.
        var applied: LogIndex = 0
        var digest: UInt64 = 0
    }

    struct Member {
        let id: NodeID
        var core: RaftNode?
        var incarnation: UInt64 = 0
        var isPaused = false
        var isBusy = false
        var isRetired = false
        var inbox: [Input] = []
        var pendingReady: Ready?
        var disk = Disk()
        var clockFactor = 1.0
        var pendingWrites: [Int: LogPosition?] = [:]
        var readsByContext: [UInt64: Int] = [:]
        var readsAwaitingApply: [(index: LogIndex, operation: Int)] = []
        var checkedCommit: LogIndex = 0
    }

    struct Operation {
        enum Kind { case write, read, confChange }
        var kind: Kind
        var member: Int
        var data: [UInt8]
        var start: UInt64
        var requiredIndex: LogIndex
        var outcome: Outcome = .pending
    }

    var rng: SeededGenerator
    var queue = EventQueue<Event>()
    var members: [Member] = []
    var trace = StableHasher()
    var tail: [(time: UInt64, code: UInt64, values: [UInt64])] = []
    var blocked: [Link: Int] = [:]
    var operations: [Operation] = []
    var inFaultPhase = false
    /// Set when the liveness phase heals everything: from then on no message is lost or doubled.
    var networkHealed = false
    var leaderHint: NodeID = noNode

    // Checker state.
    var leaderOfTerm: [Term: NodeID] = [:]
    var entryRecord: [IndexTerm: EntryFingerprint] = [:]
    /// The committed entry at each index, once any member has committed it while holding it.
    var committedRecord: [EntryFingerprint?] = [nil]
    var digestRecord: [UInt64] = [0]
    var maxAcknowledgedIndex: LogIndex = 0

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
        let founders = (1...options.nodeCount).map { NodeID($0) }
        for id in founders {
            var member = Member(id: id)
            member.disk.hardState = PersistentState.bootstrap(voters: founders).hardState
            member.disk.entries = PersistentState.bootstrap(voters: founders).entries
            member.clockFactor = 1 + options.clockSkew * (2 * Double(rng.next(below: 1_000)) / 1_000 - 1)
            members.append(member)
        }
        for index in members.indices { start(index) }
    }

    // MARK: - Running

    /// Runs the full randomized scenario: background load and faults for the fault phase, then
    /// everything heals and the liveness phase must converge. Returns the first violation.
    @discardableResult
    public func runScenario() -> Violation? {
        inFaultPhase = true
        if options.meanTimeBetweenWrites > 0 { queue.schedule(.clientWrite, at: now + randomInterval(options.meanTimeBetweenWrites)) }
        if options.meanTimeBetweenReads > 0 { queue.schedule(.clientRead, at: now + randomInterval(options.meanTimeBetweenReads)) }
        if options.meanTimeBetweenFaults > 0 { queue.schedule(.fault, at: now + randomInterval(options.meanTimeBetweenFaults)) }
        run(for: options.faultPhaseDuration)
        inFaultPhase = false
        guard violation == nil else { return violation }
        healAll()
        if checkLiveness() { checkAcknowledgedWritesDurable() }
        return violation
    }

    /// Checks that every acknowledged write is the committed entry at the index it was
    /// acknowledged at, and that every running member has applied it.
    @discardableResult
    public func checkAcknowledgedWritesDurable() -> Bool {
        for (number, operation) in operations.enumerated() where operation.kind == .write {
            guard case .succeeded(let index) = operation.outcome else { continue }
            let expected = hash(LogEntry(term: 0, index: index, data: operation.data))
            guard Int(index) < committedRecord.count, committedRecord[Int(index)]?.hash == expected else {
                fail("durability", "write \(number), acknowledged at index \(index), is not the committed entry there")
                return false
            }
            for member in members where member.core != nil && member.disk.applied < index {
                fail("durability", "member \(member.id) has not applied acknowledged write \(number) at \(index)")
                return false
            }
        }
        return true
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
    /// caught up within the liveness bound; records a liveness violation otherwise.
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
                "\(m.id):\(m.core.map { "\($0.role.rawValue) t\($0.term) c\($0.commitIndex) a\(m.disk.applied)" } ?? "down")"
            }
            fail(
                "liveness",
                "no convergence within \(formatTime(options.livenessBound)) after healing at t=\(formatTime(start)): \(state.joined(separator: ", "))"
            )
        }
        return converged
    }

    func allCaughtUp(to index: LogIndex) -> Bool {
        let active = members.filter { !$0.isRetired && ($0.core?.confState.contains($0.id) ?? true) }
        guard let digest = active.first.map({ $0.disk.digest }) else { return false }
        return active.allSatisfy { $0.core != nil && $0.disk.applied >= index }
            && active.allSatisfy { $0.disk.applied == active[0].disk.applied ? $0.disk.digest == digest : true }
    }

    // MARK: - Scripted control (for scenario tests)

    /// The member that is leader in the highest term among running members, if any.
    public func leader() -> NodeID? {
        var best: (term: Term, id: NodeID)?
        for member in members {
            guard let core = member.core, core.role == .leader else { continue }
            if best == nil || core.term > best!.term { best = (core.term, member.id) }
        }
        return best?.id
    }

    /// The Raft core of a running member (a copy, for inspection).
    public func node(_ id: NodeID) -> RaftNode? { members[Int(id) - 1].core }

    /// The identifiers of every member ever started.
    public var memberIDs: [NodeID] { members.map(\.id) }

    /// The applied index of a member's state machine.
    public func appliedIndex(of id: NodeID) -> LogIndex { members[Int(id) - 1].disk.applied }

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
    public func campaign(_ id: NodeID) {
        let index = Int(id) - 1
        guard members[index].core != nil else { return }
        members[index].inbox.append(.campaign)
        pump(index)
    }

    /// Restores every link and resumes every paused member (crashed members stay down).
    public func healNetwork() {
        blocked = [:]
        for index in members.indices where members[index].isPaused { unpause(index) }
    }

    /// Submits a client write to a member; returns the operation's handle.
    @discardableResult
    public func write(at id: NodeID) -> Int {
        submit(.write, at: Int(id) - 1)
    }

    /// Submits a linearizable read to a member; returns the operation's handle.
    @discardableResult
    public func read(at id: NodeID) -> Int {
        submit(.read, at: Int(id) - 1)
    }

    /// Submits a membership change to a member; returns the operation's handle, which succeeds
    /// when the change is applied on that member.
    @discardableResult
    public func proposeConfChange(_ change: ConfChange, at id: NodeID) -> Int {
        let member = Int(id) - 1
        operations.append(
            Operation(kind: .confChange, member: member, data: change.encoded(), start: now, requiredIndex: 0))
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
        var member = Member(id: id)
        member.clockFactor = 1
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
        case .clientWrite:
            guard inFaultPhase else { return }
            queue.schedule(.clientWrite, at: now + randomInterval(options.meanTimeBetweenWrites))
            submit(.write, at: pickTarget())
        case .clientRead:
            guard inFaultPhase else { return }
            queue.schedule(.clientRead, at: now + randomInterval(options.meanTimeBetweenReads))
            submit(.read, at: pickTarget())
        case .fault:
            guard inFaultPhase else { return }
            queue.schedule(.fault, at: now + randomInterval(options.meanTimeBetweenFaults))
            injectFault()
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
            let member = operations[operation].member
            operations[operation].outcome = .unknown
            if operations[operation].kind == .write {
                statistics.writesUnknown += 1
                members[member].pendingWrites[operation] = nil
            }
        }
    }

    private func deliver(_ input: Input, to index: Int) {
        guard members[index].core != nil else { return }
        members[index].inbox.append(input)
        pump(index)
    }

    /// Feeds queued inputs to an idle member, then starts persisting its next batch.
    private func pump(_ index: Int) {
        guard violation == nil, members[index].core != nil, !members[index].isPaused, !members[index].isBusy else { return }
        let inputs = members[index].inbox
        members[index].inbox = []
        for input in inputs { process(input, at: index) }
        checkMember(index)
        guard violation == nil, members[index].core!.hasReady else { return }
        let ready = members[index].core!.ready()
        members[index].pendingReady = ready
        members[index].isBusy = true
        let latency = options.minSyncLatency + rng.next(below: options.maxSyncLatency - options.minSyncLatency + 1)
        queue.schedule(.persisted(node: index, incarnation: members[index].incarnation), at: now + latency)
    }

    private func process(_ input: Input, at index: Int) {
        switch input {
        case .message(let message):
            members[index].core!.step(message)
        case .tick:
            members[index].core!.tick()
        case .write(let operation):
            do {
                let position = try members[index].core!.propose(operations[operation].data)
                members[index].pendingWrites[operation] = .some(position)
                queue.schedule(.requestTimeout(operation: operation), at: now + options.requestTimeout)
            } catch {
                if case .notLeader(let hint) = error, hint != noNode { leaderHint = hint }
                finish(operation, .failed)
            }
        case .read(let operation):
            do {
                let context = UInt64(operation)
                try members[index].core!.readIndex(context: context)
                members[index].readsByContext[context] = operation
                queue.schedule(.requestTimeout(operation: operation), at: now + options.requestTimeout)
            } catch {
                finish(operation, .failed)
            }
        case .transfer(let target):
            members[index].core!.transferLeadership(to: target)
        case .campaign:
            members[index].core!.campaign()
        case .confChange(let change, let operation):
            do {
                let position = try members[index].core!.proposeConfChange(change)
                members[index].pendingWrites[operation] = .some(position)
            } catch {
                finish(operation, .failed)
            }
        }
    }

    /// The ready batch's durable writes are done: write the simulated disk, then send.
    private func persist(_ index: Int) {
        let ready = members[index].pendingReady!
        let core = members[index].core!
        var disk = members[index].disk
        if let snapshot = ready.snapshot {
            disk.snapshot = snapshot
            disk.entries.removeAll { $0.index <= snapshot.metadata.index }
        }
        if let first = ready.entries.first {
            disk.entries.removeAll { $0.index >= first.index }
            disk.entries.append(contentsOf: ready.entries)
            for entry in ready.entries { checkLogMatching(entry, previousTerm: core.term(at: entry.index - 1), member: index) }
        }
        if let hardState = ready.hardState {
            if hardState.term < disk.hardState.term {
                fail("durable term", "member \(members[index].id) persisted term \(hardState.term) after \(disk.hardState.term)")
            }
            if hardState.commit < disk.hardState.commit {
                fail("durable commit", "member \(members[index].id) persisted commit \(hardState.commit) after \(disk.hardState.commit)")
            }
            disk.hardState = hardState
        }
        members[index].disk = disk
        for message in ready.messages { send(message) }
        queue.schedule(.applied(node: index, incarnation: members[index].incarnation), at: now + options.applyLatency)
    }

    /// Applies the batch's snapshot and committed entries, then advances the core.
    private func apply(_ index: Int) {
        let ready = members[index].pendingReady!
        if let snapshot = ready.snapshot {
            install(snapshot, at: index)
            statistics.snapshotsInstalled += 1
        }
        for entry in ready.committedEntries where entry.index > members[index].disk.applied {
            applyEntry(entry, at: index)
        }
        for readState in ready.readStates {
            guard let operation = members[index].readsByContext.removeValue(forKey: readState.context) else { continue }
            members[index].readsAwaitingApply.append((readState.index, operation))
        }
        serveReads(at: index)
        members[index].core!.advance(ready)
        members[index].pendingReady = nil
        members[index].isBusy = false
        maybeSnapshot(index)
        pump(index)
    }

    private func applyEntry(_ entry: LogEntry, at index: Int) {
        var hasher = StableHasher()
        hasher.combine(members[index].disk.digest)
        hasher.combine(entry.index)
        hasher.combine(entry.term)
        hasher.combine(bytes: entry.data)
        let digest = hasher.value
        members[index].disk.applied = entry.index
        members[index].disk.digest = digest
        checkDigest(digest, at: entry.index, member: index, what: "applied entry")
        let operation = operationID(in: entry)
        for pending in members[index].pendingWrites.keys.sorted() {
            let position = members[index].pendingWrites[pending]!
            if pending == operation {
                members[index].pendingWrites[pending] = nil
                finish(pending, .succeeded(index: entry.index))
            } else if let position, position.index == entry.index {
                // Something else was committed where this proposal sat: it can never commit.
                members[index].pendingWrites[pending] = nil
                finish(pending, .failed)
            }
        }
    }

    private func operationID(in entry: LogEntry) -> Int? {
        if entry.kind == .confChange {
            return operations.lastIndex { $0.kind == .confChange && $0.data == entry.data && $0.outcome == .pending }
        }
        guard entry.data.count == 8 else { return nil }
        var reader = ByteReader(entry.data)
        return reader.readUInt64().map { Int($0) }
    }

    private func install(_ snapshot: Snapshot, at index: Int) {
        var reader = ByteReader(snapshot.data)
        guard let snapshotIndex = reader.readUInt64(), let digest = reader.readUInt64(),
            snapshotIndex == snapshot.metadata.index
        else {
            fail("snapshot integrity", "member \(members[index].id) received a malformed snapshot at \(snapshot.metadata.index)")
            return
        }
        members[index].disk.applied = snapshotIndex
        members[index].disk.digest = digest
        checkDigest(digest, at: snapshotIndex, member: index, what: "installed snapshot")
    }

    private func serveReads(at index: Int) {
        let applied = members[index].disk.applied
        var waiting: [(index: LogIndex, operation: Int)] = []
        for (readIndex, operation) in members[index].readsAwaitingApply {
            guard readIndex <= applied else {
                waiting.append((readIndex, operation))
                continue
            }
            guard operations[operation].outcome == .pending else { continue }
            if readIndex < operations[operation].requiredIndex {
                fail(
                    "linearizable read",
                    "read \(operation) on member \(members[index].id) got read index \(readIndex), but a write at \(operations[operation].requiredIndex) was acknowledged before the read began"
                )
            }
            statistics.readsServed += 1
            finish(operation, .succeeded(index: applied))
        }
        members[index].readsAwaitingApply = waiting
    }

    private func maybeSnapshot(_ index: Int) {
        guard options.snapshotInterval > 0, let core = members[index].core else { return }
        let disk = members[index].disk
        guard disk.applied >= (disk.snapshot?.metadata.index ?? 0) + options.snapshotInterval else { return }
        var metadata = core.appliedSnapshotMetadata
        metadata.index = disk.applied
        var writer = ByteWriter()
        writer.write(disk.applied)
        writer.write(disk.digest)
        var data = writer.bytes
        data.append(contentsOf: (0..<options.snapshotPadding).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(disk.applied)) })
        let snapshot = Snapshot(metadata: metadata, data: data)
        members[index].disk.snapshot = snapshot
        let keepFrom = disk.applied > options.retainedEntries ? disk.applied - options.retainedEntries : 0
        members[index].disk.entries.removeAll { $0.index <= keepFrom }
        members[index].core!.compact(with: snapshot, retainingEntries: options.retainedEntries)
    }

    // MARK: - Members

    private func raftSettings(for member: Member) -> RaftSettings {
        var settings = RaftSettings(id: member.id)
        settings.electionTicks = options.electionTicks
        settings.heartbeatTicks = 1
        settings.preVote = options.preVote
        settings.checkQuorum = options.checkQuorum
        settings.forwardProposals = options.forwardProposals
        settings.maxSnapshotChunkBytes = options.snapshotChunkBytes
        settings.maxInflightMessages = 16
        settings.maxBytesPerMessage = options.maxBytesPerMessage
        settings.randomSeed = options.seed &* 0x9E37_79B9 &+ member.id &* 1_000_003 &+ member.incarnation
        settings.mutation = options.mutation
        return settings
    }

    private func start(_ index: Int) {
        guard members[index].core == nil, !members[index].isRetired else { return }
        members[index].incarnation += 1
        var disk = members[index].disk
        if let snapshot = disk.snapshot, snapshot.metadata.index > disk.applied {
            // The snapshot was made durable but the crash came before the state machine took it.
            members[index].disk = disk
            install(snapshot, at: index)
            disk = members[index].disk
        }
        let state = PersistentState(hardState: disk.hardState, snapshot: disk.snapshot, entries: disk.entries, appliedIndex: disk.applied)
        members[index].core = RaftNode(settings: raftSettings(for: members[index]), state: state)
        members[index].checkedCommit = members[index].core!.commitIndex
        members[index].isBusy = false
        members[index].isPaused = false
        record(5, UInt64(index))
        let firstTick = rng.next(below: options.tickInterval) + 1
        queue.schedule(.tick(node: index, incarnation: members[index].incarnation), at: now + firstTick)
    }

    private func crash(index: Int) {
        guard members[index].core != nil else { return }
        record(6, UInt64(index))
        statistics.crashes += 1
        members[index].core = nil
        members[index].incarnation += 1
        members[index].inbox = []
        members[index].pendingReady = nil
        members[index].isBusy = false
        members[index].isPaused = false
        for operation in members[index].pendingWrites.keys.sorted() where operations[operation].outcome == .pending {
            operations[operation].outcome = .unknown
            if operations[operation].kind == .write { statistics.writesUnknown += 1 }
        }
        members[index].pendingWrites = [:]
        members[index].readsByContext = [:]
        members[index].readsAwaitingApply = []
    }

    private func unpause(_ index: Int) {
        guard members[index].isPaused else { return }
        record(8, UInt64(index))
        members[index].isPaused = false
        pump(index)
    }

    private func healAll() {
        networkHealed = true
        healNetwork()
        for index in members.indices where members[index].core == nil && !members[index].isRetired { start(index) }
    }

    // MARK: - Network

    private func send(_ message: RaftMessage) {
        statistics.messagesSent += 1
        let link = Link(from: Int(message.from) - 1, to: Int(message.to) - 1)
        guard blocked[link] == nil, deliveryFilter?(message) ?? true else { return }
        if !networkHealed && rng.chance(options.dropRate) {
            statistics.messagesDropped += 1
            return
        }
        queue.schedule(.deliver(message), at: now + delay())
        if !networkHealed && rng.chance(options.duplicateRate) { queue.schedule(.deliver(message), at: now + delay()) }
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

    @discardableResult
    private func submit(_ kind: Operation.Kind, at member: Int) -> Int {
        let operation = operations.count
        var writer = ByteWriter()
        writer.write(UInt64(operation))
        operations.append(
            Operation(kind: kind, member: member, data: writer.bytes, start: now, requiredIndex: maxAcknowledgedIndex))
        record(7, UInt64(operation), UInt64(member))
        if members[member].core == nil {
            finish(operation, .failed)
        } else {
            deliver(kind == .write ? .write(operation: operation) : .read(operation: operation), to: member)
        }
        return operation
    }

    private func finish(_ operation: Int, _ outcome: Outcome) {
        guard operations[operation].outcome == .pending else { return }
        operations[operation].outcome = outcome
        switch (operations[operation].kind, outcome) {
        case (.write, .succeeded(let index)):
            statistics.writesAcknowledged += 1
            maxAcknowledgedIndex = max(maxAcknowledgedIndex, index)
            leaderHint = members[operations[operation].member].id
        case (.write, .failed):
            statistics.writesFailed += 1
        default:
            break
        }
        if case .succeeded(let index) = outcome { record(11, UInt64(operation), index) } else { record(12, UInt64(operation)) }
    }

    /// A random interval averaging `mean`: the sum of two uniform draws (a triangular
    /// distribution), which spreads arrivals without needing a logarithm.
    private func randomInterval(_ mean: UInt64) -> UInt64 {
        rng.next(below: mean) + rng.next(below: mean) + 1
    }

    private func injectFault() {
        let running = members.indices.filter { members[$0].core != nil && !members[$0].isRetired }
        let quorum = options.nodeCount / 2 + 1
        if options.transferRate > 0 && rng.chance(options.transferRate), let leader = leader() {
            let voters = members[Int(leader) - 1].core!.confState.voters.filter { $0 != leader }
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
            queue.schedule(.healLinks(links), at: now + duration)
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
        guard let core = members[index].core else { return }
        let id = members[index].id
        if core.role == .leader {
            if let existing = leaderOfTerm[core.term] {
                if existing != id { fail("election safety", "members \(existing) and \(id) are both leader in term \(core.term)") }
            } else {
                leaderOfTerm[core.term] = id
                statistics.leadersElected += 1
                checkLeaderCompleteness(core)
            }
        }
        if core.commitIndex < members[index].checkedCommit {
            fail("commit monotonicity", "member \(id) commit index went from \(members[index].checkedCommit) to \(core.commitIndex)")
            return
        }
        var position = members[index].checkedCommit + 1
        while position <= core.commitIndex {
            if let entry = core.entry(at: position) {
                checkCommitted(entry, previousTerm: core.term(at: position - 1) ?? 0, member: index)
            }
            position += 1
        }
        members[index].checkedCommit = core.commitIndex
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

    private func checkDigest(_ digest: UInt64, at index: LogIndex, member: Int, what: String) {
        let position = Int(index)
        if position < digestRecord.count {
            if digestRecord[position] == 0 {
                digestRecord[position] = digest
            } else if digestRecord[position] != digest {
                fail("state machine safety", "member \(members[member].id) has a different state at index \(index) after \(what)")
            }
        } else {
            digestRecord.append(contentsOf: repeatElement(0, count: position - digestRecord.count))
            digestRecord.append(digest)
        }
    }

    private func hash(_ entry: LogEntry) -> UInt64 {
        var hasher = StableHasher()
        hasher.combine(UInt64(entry.kind.rawValue))
        hasher.combine(bytes: entry.data)
        return hasher.value
    }

    private func fail(_ property: String, _ detail: String) {
        guard violation == nil else { return }
        violation = Violation(
            property: property, detail: detail, time: now,
            traceTail: tail.suffix(40).map { "t=\(formatTime($0.time)) \(describe($0.code, $0.values))" })
    }

    // MARK: - Trace

    private func record(_ code: UInt64, _ values: UInt64...) {
        trace.combine(now)
        trace.combine(code)
        for value in values { trace.combine(value) }
        tail.append((now, code, values))
        if tail.count > 80 { tail.removeFirst(40) }
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
