// The member shells: each member's host (engine, storage, the running `Member`), its inputs,
// and the Ready loop the server runs too (pump a batch, persist it at its simulated fsync,
// send, apply), with start, crash, pause and the members' configuration.

import Primitives
@_spi(Testing) import RaftCore
@_spi(Testing) import ReplicatedMember
import StateMachine
import Storage

extension Simulation {
    /// What a member is given to process, one at a time, when it is idle.
    enum Input {
        case message(RaftMessage)
        case forwardMessage(ForwardMessage, from: NodeID)
        case tick
        case request(operation: Int)
        case transfer(to: NodeID)
        case campaign
        case peerLost(NodeID)
    }

    /// A member's host: its disk (which outlives crashes), and while it runs its storage, its
    /// `Member` and the batch in progress. A class, so that the shells read and step the
    /// `Member` in place rather than copying it out of the array of hosts.
    final class SimulatedHost {
        let id: NodeID
        let engine = MemoryEngine()
        var storage: MemberStorage?
        var core: Member?
        var incarnation: UInt64 = 0
        var isPaused = false
        var isBusy = false
        var isRetired = false
        /// Ticks that will not come because the member's clock stepped back (``jumpClock()``).
        var ticksToSkip = 0
        var inbox: [Input] = []
        var pendingReady: Ready?
        /// What the batch in flight was formed on: the term before each of its entries, and the
        /// term and vote the member then acted on (inputs processed while the batch is in flight
        /// may change the log, the term and the vote; only the batch's own view becomes durable).
        var pendingPreviousTerms: [Term?] = []
        var pendingTermVote = (term: Term(0), vote: noNode)
        var pendingOutput: BatchOutput?
        var clockFactor = 1.0
        /// Client operations waiting on this member, by request identifier (= operation number).
        var waiting: Set<Int> = []
        var checkedCommit: LogIndex = 0
        var durableHardState = HardState()

        init(id: NodeID) { self.id = id }

        /// Whether the member runs (has a `Member`). A `Member` holds an existential (its
        /// store's backend reader), so the compiler copies the whole of it out of `core` to
        /// compare `core` with nil or to call a getter on `core!`; reading a stored field
        /// through optional chaining, as here, or going through `withCore` does not copy.
        var isRunning: Bool { core?.now != nil }

        /// Runs `body` on the running member in place (without copying it; see `isRunning`).
        /// `body` must not access this host's `core` itself.
        func withCore<Result>(_ body: (inout Member) throws -> Result) rethrows -> Result {
            try body(&core!)
        }
    }

    /// A member's clock ticks: the next tick is scheduled by its clock's rate, and a member that
    /// is not paused processes this one.
    func tick(_ index: Int, incarnation: UInt64) {
        guard members[index].incarnation == incarnation, members[index].isRunning else { return }
        record(.tick(member: index))
        let interval = UInt64(Double(options.tickInterval) * members[index].clockFactor)
        queue.schedule(.tick(node: index, incarnation: incarnation), at: now + interval)
        if members[index].ticksToSkip > 0 {
            members[index].ticksToSkip -= 1
        } else if !members[index].isPaused {
            deliver(.tick, to: index)
            tickWatchClients(index)
        }
    }

    /// Queues an input for a running member and lets it process what it can.
    func deliver(_ input: Input, to index: Int) {
        guard members[index].isRunning else { return }
        members[index].inbox.append(input)
        pump(index)
    }

    /// Feeds queued inputs to a running member and sends what may leave at once; then, if no
    /// batch is in flight, starts its next batch. As on a server, a batch in flight (a slow
    /// fsync, a state write) does not stop ticks, messages and requests from being processed:
    /// only what they ask to store waits for the next batch.
    func pump(_ index: Int) {
        guard violation == nil, members[index].isRunning, !members[index].isPaused else { return }
        let inputs = members[index].inbox
        members[index].inbox = []
        for input in inputs {
            process(input, at: index)
            watchProcessed(input, at: index)
        }
        for message in members[index].withCore({ $0.takeImmediateMessages() }) { send(message) }
        sendForwardMessages(index)
        answerWaiting(members[index].withCore { $0.takeAnswers() }, at: index)
        checkMember(index)
        checkWatched(index)
        guard violation == nil, !members[index].isBusy, members[index].withCore({ $0.hasBatch }) else { return }
        let ready = members[index].core!.startBatch()
        members[index].pendingReady = ready
        members[index].withCore { core in
            members[index].pendingPreviousTerms = ready.entries.map { core.raft.term(at: $0.index - 1) }
            members[index].pendingTermVote = (core.raft.term, core.raft.vote)
        }
        members[index].isBusy = true
        // A leader's appends and heartbeats leave before its own write is durable, as the server
        // sends them; a crash before `.persisted` then leaves them only on the followers.
        for message in ready.leaderMessages { send(message) }
        guard ready.mustSync else {
            // Nothing to sync (the Ready only moves the commit index): the server goes straight
            // on to apply, and writes the hard state with the state.
            queue.schedule(.persisted(node: index, incarnation: members[index].incarnation), at: now)
            return
        }
        var latency = options.minSyncLatency + rng.next(below: options.maxSyncLatency - options.minSyncLatency + 1)
        if options.fsyncStallRate > 0 && rng.chance(options.fsyncStallRate) {
            // A stalled disk (another process's writes, a full device queue).
            latency += 20_000 + rng.next(below: 980_000)
            statistics.fsyncStalls += 1
        }
        queue.schedule(.persisted(node: index, incarnation: members[index].incarnation), at: now + latency)
    }

    func process(_ input: Input, at index: Int) {
        switch input {
        case .message(let message):
            members[index].core!.step(message)
        case .forwardMessage(let message, let from):
            let lastIndex = members[index].withCore { $0.raft.lastIndex }
            members[index].core!.receive(message, from: from)
            if case .forward(_, .confChange) = message { checkProposedChange(index, after: lastIndex) }
        case .tick:
            members[index].core!.tick()
        case .request(let operation):
            var request = clientRequest(for: operations[operation].kind)
            if let stamp = operations[operation].session, case .write(let write, _) = request {
                request = .write(write, session: stamp)
            }
            let lastIndex = members[index].withCore { $0.raft.lastIndex }
            let response = members[index].core!.submit(request, id: RequestID(operation))
            if case .confChange = request { checkProposedChange(index, after: lastIndex) }
            if let response {
                answer(operation, with: response, at: nil)
            } else {
                members[index].waiting.insert(operation)
                queue.schedule(.requestTimeout(operation: operation), at: now + options.requestTimeout)
            }
        case .transfer(let target):
            if members[index].withCore({ $0.raft.role == .leader }) {
                // As `MoveLeader` asks it: answered once the target leads or the move times out.
                // No client waits on the answer (its ID is outside the operations').
                statistics.leaderMoves += 1
                _ = members[index].core!.moveLeader(to: target, id: RequestID.max - RequestID(statistics.leaderMoves))
            } else {
                members[index].core!.transferLeadership(to: target)
            }
        case .campaign:
            members[index].core!.campaign()
        case .peerLost(let peer):
            members[index].core!.peerConnectionLost(peer)
        }
    }

    /// The batch's log writes are durable: write them through the member's storage, then send.
    func persist(_ index: Int) {
        let ready = members[index].pendingReady!
        for (entry, previousTerm) in zip(ready.entries, members[index].pendingPreviousTerms) {
            checkLogMatching(entry, previousTerm: previousTerm, member: index)
        }
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
        // The term before the batch's first entry, in case the write fails (the member stops).
        let termBeforeBatch = members[index].pendingPreviousTerms.first ?? nil
        guard storageWrite(index, what: "persist a batch", members[index].storage!.persist, ready) else {
            watchFailedPersist(index, ready, termBeforeBatch: termBeforeBatch)
            return
        }
        // The Ready's messages leave before the batch applies, as the server sends them
        // (`BatchOutput.messages` are the same messages).
        for message in ready.messages { send(message) }
        let output = members[index].core!.finishBatch()
        watchDurable(index, ready)
        checkMember(index)
        checkWatched(index)
        sendForwardMessages(index)
        members[index].pendingOutput = output
        queue.schedule(.applied(node: index, incarnation: members[index].incarnation), at: now + options.applyLatency)
    }

    /// Writes the batch's state changes, then answers clients and frees the member.
    func apply(_ index: Int) {
        let ready = members[index].pendingReady!
        let output = members[index].pendingOutput!
        members[index].pendingReady = nil
        members[index].pendingOutput = nil
        members[index].isBusy = false
        guard storageWrite(index, what: "write applied state", members[index].storage!.write, output) else { return }
        // The values written leave memory and are read back from the member's engine from now on
        // (the digest check below reads every one of them).
        members[index].core!.stateWritten()
        if members[index].withCore({ $0.store.backendReader != nil && $0.store.residentValueBytes != 0 }) {
            fail("resident values", "member \(members[index].id) still holds values in memory after its state write")
        }
        if ready.snapshot != nil { statistics.snapshotsInstalled += 1 }
        let (applied, revision) = members[index].withCore { ($0.appliedIndex, $0.store.currentRevision) }
        if ready.snapshot != nil || !output.appliedEntries.isEmpty {
            checkRevision(revision, at: applied, member: index)
            checkDigest(at: applied, member: index, always: ready.snapshot != nil)
        }
        for lease in output.expiredLeases { checkExpiry(of: lease, member: index) }
        checkAppliedOnce(output.events, member: index)
        publishToWatchClients(output.events, member: index, installedSnapshot: ready.snapshot != nil)
        if index == 0 { statistics.autoCompactions += output.autoCompactions.count }
        answerWaiting(output.responses, at: index, output: output)
        pump(index)
    }

    /// Sends member `index`'s forwards to the leader and replies to them.
    func sendForwardMessages(_ index: Int) {
        let from = members[index].id
        for outgoing in members[index].withCore({ $0.takeForwardMessages() }) {
            send(outgoing.message, from: from, to: outgoing.to)
        }
    }

    /// Answers the clients waiting on member `index` for `responses`, from a batch's `output`
    /// or made outside one (``Member/takeAnswers()``).
    func answerWaiting(_ responses: [(RequestID, ClientResponse)], at index: Int, output: BatchOutput? = nil) {
        for (request, response) in responses {
            // Leader moves' answers carry IDs above every operation's (see `.transfer`).
            guard let operation = Int(exactly: request), members[index].waiting.remove(operation) != nil else { continue }
            let appliedAt = output?.appliedAt[request]
            if let at = appliedAt, let output {
                checkAnsweredEntry(output.appliedEntries.first { $0.index == at }, operation: operation, member: index)
            }
            answer(operation, with: response, at: appliedAt)
        }
    }

    /// Runs one of a member's storage writes, `write(value)`; if it fails, the member stops as a
    /// process does after a failed write (StorageFaults.swift) and this returns false.
    func storageWrite<Value>(_ index: Int, what: String, _ write: (Value) throws(StorageError) -> Void, _ value: Value) -> Bool {
        do {
            try write(value)
            return true
        } catch {
            writeFailed(index, error, what: what)
            return false
        }
    }

    // MARK: - Start, crash, pause

    /// A member's configuration, from the run's options (the Raft seed differs per incarnation).
    func configuration(for member: SimulatedHost) -> MemberConfiguration {
        var configuration = MemberConfiguration(id: member.id)
        // As `--initial-cluster` lists every member to a member that joins with an empty log.
        configuration.initialMembers = Set(members.map(\.id))
        configuration.tickMilliseconds = Int64(options.tickInterval / 1_000)
        configuration.requestTimeoutMilliseconds = Int64(options.memberRequestTimeout / 1_000)
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
        // As a server publishes `--name` and `--advertise-client-urls` once it is a member.
        configuration.publishedName = "n\(member.id)"
        configuration.publishedClientURLs = ["http://n\(member.id).sim:2379"]
        return configuration
    }

    func makeStorage(on engine: MemoryEngine) throws(StorageError) -> MemberStorage {
        try MemberStorage(
            engine: engine, store: configuration(for: SimulatedHost(id: 1)).storeConfiguration, mutation: options.memberMutation)
    }

    /// Starts (or restarts) a member from what its disk kept, unless the disk refuses it.
    func start(_ index: Int) {
        guard !members[index].isRunning, !members[index].isRetired else { return }
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
        members[index].checkedCommit = members[index].withCore { $0.raft.commitIndex }
        checkRecovered(index)
        members[index].isBusy = false
        members[index].isPaused = false
        members[index].ticksToSkip = 0
        record(.start(member: index))
        let firstTick = rng.next(below: options.tickInterval) + 1
        queue.schedule(.tick(node: index, incarnation: members[index].incarnation), at: now + firstTick)
    }

    /// Kills a member: its memory and what its disk had not made durable are lost, its clients' requests
    /// end with an unknown outcome, and the peers it was connected to see the connection close.
    func crash(index: Int) {
        guard members[index].isRunning else { return }
        record(.crash(member: index))
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
        members[index].waiting = []
        // Its watchers' streams break; they reconnect elsewhere from their next revision.
        for number in watchClients.clients.indices where watchClients.clients[number].member == index {
            watchClients.clients[number].member = nil
            watchClients.clients[number].cursor = nil
        }
        // The crashed process's connections close: peers that are not cut off from it see it.
        for other in members.indices where other != index && blocked[Link(from: index, to: other)] == nil {
            queue.schedule(.peerLost(node: other, peer: members[index].id), at: now + networkDelay())
        }
    }

    /// Resumes a paused member: it processes what queued up meanwhile.
    func unpause(_ index: Int) {
        guard members[index].isPaused else { return }
        record(.resume(member: index))
        members[index].isPaused = false
        pump(index)
    }
}
