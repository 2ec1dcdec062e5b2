import CoreMetrics
import Foundation
import GRPCServer
import GRPCStatus
import Logging
import NIOCore
import NIOPosix
import PeerTransport
import Primitives
import Prometheus
import RaftCore
import ReplicatedMember
import RocksDB
import StateMachine
import Storage
import StorageRocksDB
import Synchronization

/// What every response header carries besides the revision.
public struct HeaderContext: Sendable, Hashable {
    /// The cluster's ID.
    public var clusterID: UInt64
    /// The answering member's ID.
    public var memberID: UInt64
    /// The Raft term when the answer was produced.
    public var raftTerm: UInt64
}

/// A point-in-time view of the member, for Status, health checks and metrics.
public struct MemberStatus: Sendable {
    public var id: UInt64
    public var leader: UInt64
    public var term: UInt64
    public var commitIndex: UInt64
    public var appliedIndex: UInt64
    public var revision: Int64
    public var compactRevision: Int64
    public var isLearner: Bool
    public var alarms: [AlarmMember]
    public var members: [ClusterMember]
    public var leaseCount: Int
    public var keyCount: Int
}

/// Runs one ``Member`` on its own event loop: the imperative shell around the deterministic
/// core. Every input (client request, peer message, tick) is an event on that loop. A batch
/// runs in stages: the loop starts it, the storage stage (one serial thread) syncs the Raft
/// log, the loop applies the committed entries and sends, the storage stage writes the state
/// to RocksDB, and the loop answers the waiting clients.
///
/// While a batch is on the storage stage the loop goes on: ticks, heartbeats, heartbeat
/// answers and read confirmations do not wait for the disk. Requests that arrive meanwhile
/// share the next batch's fsync (group commit). All stored properties are confined to `loop`,
/// except `storage`, which only the storage stage uses once the member runs.
final class MemberHost: @unchecked Sendable {
    typealias Completion = @Sendable (ClientResponse, HeaderContext) -> Void

    /// A client waiting for the member's answer to its request (the member times requests
    /// out itself, ``MemberConfiguration/requestTimeoutMilliseconds``).
    struct Waiter {
        var isWrite: Bool
        var completion: Completion
    }

    let loop: any EventLoop
    let engine: RocksDBEngine
    let storage: MemberStorage
    let clusterID: UInt64
    let logger: Logger
    let metrics: ServerMetrics
    private(set) var member: Member
    let watches: WatchHub
    var transport: PeerTransport?
    /// Password hashing, simple tokens and credentials of calls.
    let authenticator: Authenticator

    private let revisionHint = Atomic<Int64>(1)
    private let leaderHint = Atomic<UInt64>(0)
    /// The store revision after the last batch (readable from any thread).
    var lastKnownRevision: Int64 { revisionHint.load(ordering: .relaxed) }
    /// Whether a leader was known after the last batch or tick (readable from any thread).
    var hasLeaderHint: Bool { leaderHint.load(ordering: .relaxed) != noNode }

    private var nextRequestID: RequestID = 1
    private var waiters: [RequestID: Waiter] = [:]
    private var flushScheduled = false
    /// The storage stage: one serial thread that makes each batch durable and writes its state,
    /// so that a slow fsync or a RocksDB stall never holds the member loop. Ticks, heartbeats,
    /// heartbeat answers and reads go on meanwhile (``Member/takeImmediateMessages()``); what
    /// they ask to store waits for the next batch. `storage` is used only on this thread once
    /// the member runs; the loop reads values through the engine, which RocksDB allows
    /// concurrently with writes.
    private let storageStage = DispatchQueue(label: "statehouse.member.storage")
    /// A file whose content, a whole number of milliseconds, the storage stage sleeps before
    /// each synced write, standing for a slow disk (tests only, ``syncDelayTestingVariable``):
    /// read at every synced write, so a test can slow one member's disk while it runs. No
    /// file, or no number in it, means no delay.
    var syncDelayFileForTesting: String?

    /// The environment variable naming ``syncDelayFileForTesting``, for tests of a slow disk
    /// with real processes. It is not an option: its name lacks the `STATEHOUSE_` prefix of
    /// the options on purpose.
    static let syncDelayTestingVariable = "TESTING_STATEHOUSE_SYNC_DELAY_FILE"

    /// Like ``syncDelayFileForTesting``, for reading values from RocksDB off the loop (a
    /// range's, a read-only transaction's, a watch catch-up window's): slept once per read,
    /// standing for a slow scan (tests only, ``readDelayTestingVariable``).
    var readDelayFileForTesting: String?

    /// The environment variable naming ``readDelayFileForTesting`` (tests only, as
    /// ``syncDelayTestingVariable``).
    static let readDelayTestingVariable = "TESTING_STATEHOUSE_READ_DELAY_FILE"

    /// The most values a range reads from RocksDB on the member loop
    /// (``MemberConfiguration/maxValuesReadInPlace``): a point read or a short range is served
    /// at once, and a bigger one goes to the read pool, so that a scan of a large prefix never
    /// holds up ticks, heartbeats and applies.
    static let maxValuesReadOnLoop = 16

    /// The milliseconds a delay file (``syncDelayFileForTesting``, ``readDelayFileForTesting``)
    /// holds now: 0 without one.
    private static func delayMilliseconds(file: String?) -> Int {
        guard let file, let text = try? String(contentsOfFile: file, encoding: .utf8) else { return 0 }
        return min(max(Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0, 0), 60_000)
    }

    /// Whether a batch is between ``Member/startBatch()`` and its state write's completion.
    private var batchInFlight = false
    /// Whether a batch's state write is on the storage stage: the store is then ahead of RocksDB.
    private var stateWriteInFlight = false
    /// Run once the state write in flight lands (``whenStateStored(_:)``).
    private var stateStoredWaiters: [() -> Void] = []
    /// Set by ``stop()``: no new batch starts.
    private var stopping = false
    /// Completed once no batch is in flight (``stop()`` waits for the storage stage).
    private var idleWaiters: [EventLoopPromise<Void>] = []
    private(set) var ticks: UInt64 = 0
    private var tickTask: RepeatedTask?
    private var stopped = false
    private var knownPeers: [NodeID: String] = [:]
    private var lastLeader: NodeID = noNode

    init(
        loop: any EventLoop, engine: RocksDBEngine, storage: MemberStorage, member: Member, clusterID: UInt64,
        logger: Logger, metrics: ServerMetrics, authenticator: Authenticator = Authenticator()
    ) {
        self.authenticator = authenticator
        self.loop = loop
        self.engine = engine
        self.storage = storage
        self.member = member
        self.clusterID = clusterID
        self.logger = logger
        self.metrics = metrics
        watches = WatchHub()
        watches.host = self
    }

    var id: NodeID { member.id }

    var header: HeaderContext { HeaderContext(clusterID: clusterID, memberID: member.id, raftTerm: member.raft.term) }

    // MARK: - Lifecycle

    /// Starts ticking and sets the peer addresses. Call on any thread.
    func start(transport: PeerTransport, initialPeers: [NodeID: String]) {
        loop.execute {
            self.transport = transport
            for (id, url) in initialPeers where id != self.member.id { self.setPeer(id, url: url) }
            self.refreshPeers()
            let tick = TimeAmount.milliseconds(self.member.configuration.tickMilliseconds)
            self.tickTask = self.loop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { _ in self.tick() }
            self.scheduleFlush()
        }
    }

    /// Stops ticking, answers every waiting request with "server stopped", and syncs storage,
    /// once the storage stage has finished the batch in flight (no new batch starts meanwhile).
    func stop() -> EventLoopFuture<Void> {
        let idle = loop.makePromise(of: Void.self)
        loop.execute {
            self.stopping = true
            if self.batchInFlight { self.idleWaiters.append(idle) } else { idle.succeed(()) }
        }
        return idle.futureResult.map { self.stopOnLoop() }
    }

    private func stopOnLoop() {
        guard !stopped else { return }
        stopped = true
        tickTask?.cancel()
        for (_, waiter) in waiters { waiter.completion(.failure(.leaderChanged), header) }
        waiters.removeAll()
        watches.closeAll()
        try? engine.write(.init(), sync: true)
    }

    // MARK: - Inputs (any thread)

    /// Submits a client request; `completion` runs on the member loop with the answer.
    func submit(_ request: ClientRequest, completion: @escaping Completion) {
        loop.execute { self.submitOnLoop(request, completion: completion) }
    }

    /// Submits a client's request made on `call`, with the call's credentials: writes carry
    /// them through the log and are checked when applied (etcd's auth applier); reads and
    /// time-to-live are checked here, before they are served.
    func submit(_ request: ClientRequest, call: ServerCall?, completion: @escaping Completion) {
        loop.execute {
            self.withCredentialsOnLoop(of: call) { resolved in
                self.submitOnLoop(request, by: resolved, completion: completion)
            }
        }
    }

    private func submitOnLoop(
        _ request: ClientRequest, by resolved: Result<AuthInfo, StateError>, completion: @escaping Completion
    ) {
        do throws(StateError) {
            let credentials = try resolved.get()
            var request = request
            let store = self.member.store
            switch request {
            case .write(let write, let session) where store.authState.isEnabled:
                // Only with auth on: entries stay as earlier versions wrote them otherwise (a
                // write proposed before auth was enabled is concurrent with the enabling).
                request = .write(.authorized(credentials, write), session: session)
            case .range(let range):
                try store.checkPermission(credentials, for: .range(range))
            case .leaseTimeToLive(let lease, _) where store.authState.isEnabled:
                for key in store.keys(attachedTo: lease) {
                    try store.checkPermission(credentials, for: .range(RangeRequest(key: key)))
                }
            default:
                break
            }
            self.submitOnLoop(request, completion: completion)
        } catch {
            completion(.failure(.state(error)), self.header)
        }
    }

    /// Who makes `call` (anonymous without credentials). Call on the member loop.
    ///
    /// - Throws: ``StateError/invalidAuthToken`` for a token that is unknown or expired.
    func credentialsOnLoop(of call: ServerCall?) throws(StateError) -> AuthInfo {
        guard let call else { return .anonymous }
        return try authenticator.credentials(of: call, auth: member.store.authState) ?? .anonymous
    }

    /// Resolves who makes `call`, as ``credentialsOnLoop(of:)``, and passes the answer to `body`
    /// on the member loop. A simple token this member does not know gets a second look: members
    /// learn a token when they apply its `Authenticate` entry, so a client that authenticated
    /// on one member may use the token on another that has not applied it yet. The member then
    /// catches up with the leader's commit index (a ReadIndex read) and looks again; only then
    /// is the token refused. A JWT needs no second look: it is checked by its signature.
    func withCredentialsOnLoop(
        of call: ServerCall?, _ body: @escaping @Sendable (Result<AuthInfo, StateError>) -> Void
    ) {
        do throws(StateError) {
            body(.success(try credentialsOnLoop(of: call)))
        } catch .invalidAuthToken where authenticator.jwt == nil {
            submitOnLoop(.range(RangeRequest(key: [0], countOnly: true))) { _, _ in
                body(Result { () throws(StateError) in try self.credentialsOnLoop(of: call) })
            }
        } catch {
            body(.failure(error))
        }
    }

    /// Checks on the member loop that `call` is made by a root user while auth is enabled
    /// (etcd's `IsAdminPermitted`, for membership, maintenance and auth management).
    func checkAdminOnLoop(_ call: ServerCall?) throws(StateError) {
        guard member.store.authState.isEnabled else { return }
        try member.store.authState.checkAdmin(try credentialsOnLoop(of: call))
    }

    /// Runs `body` on the member loop and returns its result.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) -> EventLoopFuture<T> {
        loop.submit(body)
    }

    /// Delivers a frame from a peer.
    func receive(from peer: NodeID, frame: [UInt8]) {
        loop.execute { self.receiveOnLoop(from: peer, frame: frame) }
    }

    /// Tells the member that `peer`'s connection to it closed: a follower whose leader's
    /// process died starts a pre-vote at once (see ``Member/peerConnectionLost(_:)``).
    func peerConnectionLost(_ peer: NodeID) {
        loop.execute {
            guard !self.stopped else { return }
            self.member.peerConnectionLost(peer)
            self.scheduleFlush()
        }
    }

    // MARK: - On the loop

    func submitOnLoop(_ request: ClientRequest, completion: @escaping Completion) {
        guard !stopped else {
            completion(.failure(.leaderChanged), header)
            return
        }
        let requestID = nextRequestID
        nextRequestID += 1
        if let answer = member.submit(request, id: requestID) {
            if case .failure = answer { metrics.proposalsFailed.increment() }
            self.answer(answer, completion)
        } else {
            var isWrite = false
            if case .write = request { isWrite = true }
            waiters[requestID] = Waiter(isWrite: isWrite, completion: completion)
            scheduleFlush()
        }
    }

    private func receiveOnLoop(from peer: NodeID, frame: [UInt8]) {
        guard !stopped, let decoded = PeerFrame(decoding: frame) else {
            if !stopped { logger.warning("dropping a malformed peer frame", metadata: ["peer": "\(String(peer, radix: 16))"]) }
            return
        }
        switch decoded {
        case .raft(let message):
            guard message.from == peer else {
                return refuse(.senderMismatch, from: peer, "a Raft message from \(String(message.from, radix: 16))")
            }
            guard message.to == member.id else { return }
            switch member.step(message) {
            case .accepted: break
            case .unknownSender: refuse(.unknownSender, from: peer, "a \(message.kind) message")
            case .invalidSnapshot(let reason):
                refuse(.invalidSnapshot, from: peer, "a snapshot at index \(message.snapshot?.metadata.index ?? 0): \(reason)")
            }
            scheduleFlush()
        case .forward(let handle, let request):
            guard member.recognizes(peer) else { return refuse(.unknownSender, from: peer, "a forwarded request") }
            member.receive(.forward(handle: handle, LeaderRequest(request)), from: peer)
            scheduleFlush()
        case .reply(let handle, let reply):
            guard member.recognizes(peer) else { return refuse(.unknownSender, from: peer, "a forwarded reply") }
            member.receive(.reply(handle: handle, LeaderReply(reply)), from: peer)
            scheduleFlush()
        }
    }

    /// Sends the member's forwards to the leader and replies to them (``Member/takeForwardMessages()``).
    private func sendForwardMessages() {
        for (peer, message) in member.takeForwardMessages() {
            let version = transport?.protocolVersion(of: peer) ?? 0
            transport?.send(PeerFrame(message, protocolVersion: version).encoded(), to: peer)
        }
    }

    /// When a refusal of each reason was last logged at warning level.
    private var lastRefusalWarnings: [PeerRefusal: ContinuousClock.Instant] = [:]

    /// Counts a refused peer frame and logs it: at warning level at most once every ten
    /// seconds per reason (a misconfigured or hostile peer keeps sending), at debug otherwise.
    private func refuse(_ reason: PeerRefusal, from peer: NodeID, _ what: String) {
        metrics.peerFramesRefused(reason).increment()
        let now = ContinuousClock.now
        var level = Logger.Level.debug
        if lastRefusalWarnings[reason].map({ now - $0 >= .seconds(10) }) ?? true {
            lastRefusalWarnings[reason] = now
            level = reason == .invalidSnapshot ? .error : .warning
        }
        logger.log(
            level: level, "refused \(what) from peer connection \(String(peer, radix: 16)): \(reason.explanation)",
            metadata: ["peer": "\(String(peer, radix: 16))", "reason": "\(reason.rawValue)"])
    }

    /// If this member leads, hands leadership to the voter whose log matches the leader's
    /// furthest (as etcd does before it stops) and completes with that voter once it leads; nil
    /// when this member does not lead, leads alone, or the transfer did not finish in time.
    func handOffLeadership() -> EventLoopFuture<NodeID?> {
        let promise = loop.makePromise(of: NodeID?.self)
        loop.execute {
            guard !self.stopped, self.member.raft.role == .leader else { return promise.succeed(nil) }
            let raft = self.member.raft
            let target = raft.confState.voters.filter { $0 != self.member.id }
                .max { (raft.matchIndex(of: $0) ?? 0, $1) < (raft.matchIndex(of: $1) ?? 0, $0) }
            guard let target else { return promise.succeed(nil) }
            self.transferLeadershipOnLoop(to: target) { error in promise.succeed(error == nil ? target : nil) }
        }
        return promise.futureResult
    }

    /// Hands leadership to `target` (``Member/moveLeader(to:id:)``) and calls `done` once it
    /// leads, or with the member's error.
    func transferLeadershipOnLoop(to target: NodeID, done: @escaping @Sendable (ServiceError?) -> Void) {
        let requestID = nextRequestID
        nextRequestID += 1
        let completion: Completion = { response, _ in
            if case .failure(let error) = response { return done(ServiceError(error)) }
            done(nil)
        }
        if let answer = member.moveLeader(to: target, id: requestID) { return completion(answer, header) }
        waiters[requestID] = Waiter(isWrite: false, completion: completion)
        scheduleFlush()
    }

    /// Answers `completion` with the member's `response`. A range or read-only transaction
    /// whose values the member left to read (``ClientResponse/pendingRange(_:)``,
    /// ``ClientResponse/pendingTxn(_:)``) is read on the thread pool, from a RocksDB snapshot
    /// pinned now, on the loop: it holds every released version the read answers, and no
    /// compaction applied later deletes them from it. Call on the loop.
    private func answer(_ response: ClientResponse, _ completion: @escaping Completion) {
        let finish: @Sendable (PinnedValues) -> ClientResponse
        switch response {
        case .pendingRange(let pending): finish = { .range(pending.finish(reading: $0)) }
        case .pendingTxn(let pending): finish = { .write(.txn(pending.finish(reading: $0))) }
        default: return completion(response, header)
        }
        metrics.rangesReadOffLoop.increment()
        let header = self.header
        readOffLoop(finish) { completion($0, header) }
    }

    /// Runs `read` on the thread pool with a RocksDB snapshot pinned now, on the loop, and
    /// passes its result to `done` (on the pool's thread). Every version the store has released
    /// is in that snapshot, and no compaction applied later deletes it from there, so a read
    /// planned from the store now can finish from it. Call on the loop.
    func readOffLoop<Result>(
        _ read: @escaping @Sendable (PinnedValues) -> Result, then done: @escaping @Sendable (Result) -> Void
    ) {
        let values: PinnedValues
        do {
            values = try PinnedValues(database: engine.database)
        } catch {
            fatalError("statehouse: pinning a RocksDB snapshot to read values off the loop failed: \(error); stopping")
        }
        let delayFile = readDelayFileForTesting
        NIOThreadPool.singleton.submit { _ in
            let delay = Self.delayMilliseconds(file: delayFile)
            if delay > 0 { Thread.sleep(forTimeInterval: Double(delay) / 1000) }
            done(read(values))
        }
    }

    /// Runs `body` on the member loop once RocksDB holds the state the store has applied: at
    /// once, or when the state write in flight on the storage stage lands. Call on the loop
    /// (for example before pinning a RocksDB snapshot of the state, ``PinnedState``).
    func whenStateStored(_ body: @escaping () -> Void) {
        if stateWriteInFlight { stateStoredWaiters.append(body) } else { body() }
    }

    private func tick() {
        guard !stopped else { return }
        noteTickLateness()
        ticks += 1
        member.tick()
        leaderHint.store(member.raft.leader, ordering: .relaxed)
        watches.tick(
            ticks, hasLeader: member.raft.leader != noNode, electionTicks: UInt64(member.configuration.raft.electionTicks))
        checkQuota()
        scheduleFlush()
    }

    /// When the previous tick ran, and when lateness was last logged.
    private var lastTickAt: ContinuousClock.Instant?
    private var lastLatenessWarning: ContinuousClock.Instant?

    /// Records how late this tick is. A tick more than one interval late means the member loop
    /// was busy (a slow fsync, a long batch) or starved of CPU: a leader then sends heartbeats
    /// late, and followers may start an election. Logged at most once a second, as etcd warns
    /// that a leader "failed to send out heartbeat on time".
    private func noteTickLateness() {
        let now = ContinuousClock.now
        defer { lastTickAt = now }
        guard let last = lastTickAt else { return }
        let interval = Duration.milliseconds(member.configuration.tickMilliseconds)
        let late = now - last - interval
        metrics.tickLateness.recordInterval(late > .zero ? late : .zero)
        guard late > interval else { return }
        if let warned = lastLatenessWarning, now - warned < .seconds(1) { return }
        lastLatenessWarning = now
        let role = member.raft.role == .leader ? "leader" : "member"
        logger.warning(
            "\(role) loop ran a tick \(late) late (interval \(interval)): heartbeats and elections are delayed; the loop is busy or short of CPU",
            metadata: [
                "last-batch": "\(lastBatchDuration)", "last-batch-sync": "\(lastPersistDuration)",
                "last-batch-apply": "\(lastApplyDuration)", "last-batch-write": "\(lastWriteDuration)",
                "last-batch-entries": "\(lastBatchEntries)", "last-batch-applied": "\(lastBatchApplied)",
            ])
    }

    /// Measures the database every ten ticks and tells the member, which enforces the quota
    /// (``MemberConfiguration/quotaBytes``) and raises the NOSPACE alarm past it.
    private func checkQuota() {
        guard ticks % 10 == 0 else { return }
        let size = databaseSize()
        metrics.databaseSize.set(size)
        metrics.databaseSizeInUse.set(size)
        metrics.quotaBackendBytes.set(member.configuration.quotaBytes ?? 0)
        metrics.hasLeader.set(Int64(member.raft.leader == noNode ? 0 : 1))
        metrics.isLeader.set(Int64(member.raft.role == .leader ? 1 : 0))
        metrics.watchers.set(Int64(watches.watcherCount))
        metrics.leases.set(Int64(member.store.leases().count))
        if member.noteBackendSize(size) {
            logger.warning("database size \(size) exceeds the quota \(member.configuration.quotaBytes ?? 0); raising the NOSPACE alarm")
            scheduleFlush()
        }
    }

    func scheduleFlush() {
        guard !flushScheduled, !stopped else { return }
        flushScheduled = true
        loop.execute { self.flush() }
    }

    /// Sends what may leave at once and, unless a batch is in flight, starts the next batch.
    private func flush() {
        flushScheduled = false
        guard !stopped else { return }
        send(member.takeImmediateMessages())
        sendForwardMessages()
        answerWaiters(member.takeAnswers())
        buildSnapshotIfNeeded()
        guard !batchInFlight, !stopping, member.hasBatch else { return }
        startBatch()
    }

    /// Whether the snapshot a lagging follower needs is being built off the loop.
    private var buildingSnapshot = false
    /// After a failed build, the tick before which no new build starts (so that a failing
    /// RocksDB is not asked, and logged, at every flush).
    private var snapshotBuildRetryTick: UInt64 = 0

    /// Builds the snapshot a lagging follower needs (``Member/needsSnapshotData``) off the member
    /// loop: the state is pinned on the loop (a RocksDB snapshot at the applied index), read and
    /// encoded on the thread pool, and handed to the member back on the loop. A snapshot the
    /// member took meanwhile makes it too old; it is then built again.
    private func buildSnapshotIfNeeded() {
        guard member.needsSnapshotData, !buildingSnapshot, !stopping, ticks >= snapshotBuildRetryTick else { return }
        buildingSnapshot = true
        whenStateStored {
            let metadata = self.member.snapshotMetadata
            let state: PinnedState
            do {
                state = try PinnedState(onLoopOf: self)
            } catch {
                self.buildingSnapshot = false
                self.snapshotBuildRetryTick = self.ticks + 10
                self.logger.error("cannot pin the state for a follower's snapshot", metadata: ["error": "\(error)"])
                return
            }
            NIOThreadPool.singleton.runIfActive(eventLoop: self.loop) { () throws -> [UInt8] in
                var pairs: [([UInt8], [UInt8])] = []
                try state.forEachPair { key, value in
                    pairs.append((key, value))
                    return true
                }
                return SnapshotCodec.encodeChecksummed(pairs)
            }.whenComplete { result in
                self.buildingSnapshot = false
                switch result {
                case .success(let data):
                    self.member.provideSnapshot(Snapshot(metadata: metadata, data: data))
                case .failure(let error):
                    self.snapshotBuildRetryTick = self.ticks + 10
                    self.logger.error("cannot build a follower's snapshot", metadata: ["error": "\(error)"])
                }
                self.scheduleFlush()
            }
        }
    }

    /// How long the last batch took, from start to answers; how long its sync took; how many
    /// entries it stored and applied (for the lateness warning).
    private var lastBatchDuration = Duration.zero
    private var lastPersistDuration = Duration.zero
    private var lastApplyDuration = Duration.zero
    private var lastWriteDuration = Duration.zero
    private var lastBatchEntries = 0
    private var lastBatchApplied = 0

    /// Storage failing under us: nothing can be acknowledged safely any more.
    private func storageFailed(_ error: StorageError) -> Never {
        logger.critical("storage failed; stopping the member", metadata: ["error": "\(error)"])
        fatalError("storage failed: \(error)")
    }

    /// Runs `body` on the storage stage and `then` with its result and duration on the loop.
    private func onStorageStage(
        _ body: @escaping @Sendable () throws(StorageError) -> Void,
        then: @escaping @Sendable (Result<Void, StorageError>, Duration) -> Void
    ) {
        storageStage.async {
            let start = ContinuousClock.now
            let result = Result { () throws(StorageError) in try body() }
            let took = ContinuousClock.now - start
            self.loop.execute { then(result, took) }
        }
    }

    /// Step 1 of a batch: a leader's appends go out at once, so that followers sync while we
    /// do; the storage stage makes the Ready durable. A Ready with nothing to sync (it only
    /// moves the commit index) goes straight to step 2: a leader applies and answers a write as
    /// soon as a quorum has it, without a round trip through the storage stage.
    private func startBatch() {
        batchInFlight = true
        let batchStart = ContinuousClock.now
        let ready = member.startBatch()
        send(ready.leaderMessages)
        guard ready.mustSync else {
            persisted(ready, took: .zero, batchStart: batchStart)
            return
        }
        let delayFile = syncDelayFileForTesting
        onStorageStage({ () throws(StorageError) in
            let delay = Self.delayMilliseconds(file: delayFile)
            if delay > 0 { Thread.sleep(forTimeInterval: Double(delay) / 1_000) }
            try self.storage.persist(ready)
        }) { result, took in
            if case .failure(let error) = result { self.storageFailed(error) }
            self.persisted(ready, took: took, batchStart: batchStart)
        }
    }

    /// Step 2: the Ready is durable; apply it, send its messages, answer its clients and
    /// publish its events, and have the storage stage write the state with the applied index.
    ///
    /// Clients are answered before the state write lands: their entries are committed, durable
    /// on a quorum, and the write is not synced anyway (a crash that loses it makes the member
    /// apply the entries again). Until it lands the batch's values stay in memory, so reads and
    /// watches see them.
    private func persisted(_ ready: Ready, took: Duration, batchStart: ContinuousClock.Instant) {
        lastPersistDuration = took
        lastBatchEntries = ready.entries.count
        if ready.mustSync { metrics.fsyncDuration.recordInterval(took) }
        // The Ready's messages (a follower's acknowledgements, votes) waited only for the sync:
        // they leave before the batch applies, so a leader's commit never waits for a
        // follower's apply. (`BatchOutput.messages` are the same messages.)
        if !stopped { send(ready.messages) }
        let applyStart = ContinuousClock.now
        let output = member.finishBatch()
        lastApplyDuration = ContinuousClock.now - applyStart
        lastBatchApplied = output.appliedEntries.count
        if !output.appliedEntries.isEmpty { metrics.applyDuration.recordInterval(since: applyStart) }
        if !stopped {
            sendForwardMessages()
            deliver(ready, output)
        }
        stateWriteInFlight = true
        onStorageStage({ () throws(StorageError) in try self.storage.write(output) }) { result, took in
            if case .failure(let error) = result { self.storageFailed(error) }
            self.written(took: took, batchStart: batchStart)
        }
    }

    /// Step 3: the state is written; release the batch's values and start the next batch.
    private func written(took: Duration, batchStart: ContinuousClock.Instant) {
        member.stateWritten()
        batchInFlight = false
        stateWriteInFlight = false
        lastWriteDuration = took
        metrics.backendCommitDuration.record(took)
        metrics.residentValueBytes.set(Int64(member.store.residentValueBytes))
        lastBatchDuration = ContinuousClock.now - batchStart
        metrics.batchDuration.recordInterval(lastBatchDuration)
        let stored = stateStoredWaiters
        stateStoredWaiters = []
        for body in stored { body() }
        for waiter in idleWaiters { waiter.succeed(()) }
        idleWaiters = []
        flush()
    }

    /// Answers the batch's clients, publishes its watch events, and notes what it changed.
    private func deliver(_ ready: Ready, _ output: BatchOutput) {
        metrics.proposalsCommitted.set(Int64(member.raft.commitIndex))
        metrics.proposalsApplied.set(Int64(member.appliedIndex))
        metrics.proposalsPending.set(Int64(waiters.values.reduce(0) { $0 + ($1.isWrite ? 1 : 0) }))
        answerWaiters(output.responses)
        for change in output.authChanges { authenticator.learn(change) }
        // A snapshot replaced the store: watchers catch up from its history first (the batch's
        // later events are in it too), so that publishing cannot move them past the revisions
        // the snapshot skipped.
        if ready.snapshot != nil { watches.storeReplaced() }
        if !output.events.isEmpty { watches.publish(output.events, revision: member.store.currentRevision) }
        if member.raft.role == .leader {
            for revision in output.autoCompactions {
                logger.info("auto-compaction compacted the history", metadata: ["revision": "\(revision)"])
            }
        }
        if ready.snapshot != nil || output.peerURLsChanged || output.appliedEntries.contains(where: { $0.kind == .confChange }) {
            refreshPeers()
        }
        revisionHint.store(member.store.currentRevision, ordering: .relaxed)
        leaderHint.store(member.raft.leader, ordering: .relaxed)
        if member.raft.leader != lastLeader {
            if lastLeader != noNode || member.raft.leader != noNode { metrics.leaderChanges.increment() }
            lastLeader = member.raft.leader
            metrics.hasLeader.set(Int64(lastLeader == noNode ? 0 : 1))
            metrics.isLeader.set(Int64(member.raft.role == .leader ? 1 : 0))
            logger.info("leader is now \(String(lastLeader, radix: 16))", metadata: ["term": "\(member.raft.term)"])
        }
    }

    /// Answers the clients waiting for `responses`.
    private func answerWaiters(_ responses: [(RequestID, ClientResponse)]) {
        for (requestID, response) in responses {
            if let waiter = waiters.removeValue(forKey: requestID) {
                if case .failure = response { metrics.proposalsFailed.increment() }
                answer(response, waiter.completion)
            }
        }
    }

    /// Queues `messages` on the peer transport, one batch of frames per peer.
    private func send(_ messages: [RaftMessage]) {
        guard let transport, !messages.isEmpty else { return }
        var byPeer: [NodeID: [[UInt8]]] = [:]
        for message in messages { byPeer[message.to, default: []].append(PeerFrame.raft(message).encoded()) }
        for (peer, frames) in byPeer { transport.send(frames, to: peer) }
    }

    // MARK: - Peers

    private func refreshPeers() {
        for record in member.store.members() where record.id != member.id {
            if let url = record.peerURLs.first { setPeer(record.id, url: url) }
        }
        // A member that has not yet received the cluster's membership (a new member joining
        // with an empty log) keeps the peers it was configured with.
        guard !member.store.members().isEmpty else { return }
        let current = Set(member.raft.confState.members)
        for peer in knownPeers.keys where !current.contains(peer) && member.store.member(peer) == nil {
            knownPeers[peer] = nil
            transport?.removePeer(peer)
        }
        publishAdmittedPeers()
    }

    /// The members whose connections the peer transport accepts (readable from any thread):
    /// those this member knows an address for, from `--initial-cluster` and the membership.
    private let admittedPeers = Mutex<Set<NodeID>>([])

    /// Whether a peer connection whose hello names `id` is accepted.
    func admitsPeer(_ id: NodeID) -> Bool {
        admittedPeers.withLock { $0.contains(id) }
    }

    private func publishAdmittedPeers() {
        let peers = Set(knownPeers.keys)
        admittedPeers.withLock { $0 = peers }
    }

    private func setPeer(_ id: NodeID, url: String) {
        defer { publishAdmittedPeers() }
        guard knownPeers[id] != url else { return }
        guard let address = try? NetworkAddress(parsing: url) else {
            logger.warning(
                "cannot reach a peer at an address that is not host:port", metadata: ["peer": "\(String(id, radix: 16))", "url": "\(url)"])
            return
        }
        knownPeers[id] = url
        transport?.setPeer(id, host: address.host, port: address.port, usesTLS: address.scheme == "https")
    }

    // MARK: - Status

    /// The member's status (on the loop).
    func statusOnLoop() -> MemberStatus {
        let store = member.store
        return MemberStatus(
            id: member.id, leader: member.raft.leader, term: member.raft.term, commitIndex: member.raft.commitIndex,
            appliedIndex: member.appliedIndex, revision: store.currentRevision, compactRevision: store.compactedRevision,
            isLearner: member.raft.confState.learners.contains(member.id), alarms: store.alarms(), members: store.members(),
            leaseCount: store.leases().count, keyCount: 0)
    }

    /// The RocksDB size estimate in bytes (live SST files plus memtables), less the Raft log's
    /// files: as etcd counts its backend and not its WAL, since compacting the history cannot free
    /// the log entries kept behind each snapshot for slow followers.
    func databaseSize() -> Int64 {
        let sst = (try? engine.database.property("rocksdb.total-sst-files-size")).flatMap { $0.flatMap { Int64($0) } } ?? 0
        let memtables = (try? engine.database.property("rocksdb.cur-size-all-mem-tables")).flatMap { $0.flatMap { Int64($0) } } ?? 0
        let prefix = RaftLogStore.Keys.prefix
        let log = (try? engine.database.approximateSize(from: prefix, to: prefixEnd(prefix))).map { Int64(clamping: $0) } ?? 0
        return max(0, sst - log) + memtables
    }
}

/// Why a frame from a peer was refused (the `reason` label of `statehouse_peer_frames_refused_total`).
enum PeerRefusal: String, Sendable, Hashable, CaseIterable {
    /// A Raft message whose sender is not the member the connection's hello named.
    case senderMismatch = "sender_mismatch"
    /// A frame from a member this member does not know (not a member, or removed).
    case unknownSender = "unknown_sender"
    /// A snapshot whose data does not install.
    case invalidSnapshot = "invalid_snapshot"

    /// What the refusal means, for the log.
    var explanation: String {
        switch self {
        case .senderMismatch: "its sender is not the member the connection's hello named"
        case .unknownSender: "the sender is not a member of this cluster as this member knows it"
        case .invalidSnapshot: "the snapshot's data does not install; nothing of it was stored, and the leader will send it again"
        }
    }
}
