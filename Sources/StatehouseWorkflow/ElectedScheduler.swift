import Logging
import ServiceLifecycle
import StatehouseClient

/// Work that only one process at a time may do, done by whichever process wins an
/// `Election`: candidates campaign under a session; the elected one runs
/// ``work`` every ``interval`` and proclaims a heartbeat; when it dies, its candidacy expires
/// with its session and the next candidate is elected.
///
/// Every write the work makes should go through ``Leadership/guardedTxn(_:)``, which applies
/// only while the leadership holds, so a scheduler that was paused past its session's expiry
/// cannot act on a stale belief that it still leads.
public struct ElectedScheduler: Service {
    /// The session candidacies are held under.
    public let session: Session
    /// The election's name.
    public let election: String
    /// The candidate's name, stored in its heartbeat.
    public let candidate: String
    /// How often the elected scheduler runs its work.
    public let interval: Duration
    /// Told of elections and losses.
    public let observer: @Sendable (SchedulerEvent) -> Void
    /// The work, run every interval while elected.
    public let work: @Sendable (Leadership) async throws -> Void
    private let logger: Logger

    /// A scheduler campaigning in `election` under `session` as `candidate`.
    public init(
        session: Session, election: String, candidate: String, interval: Duration, logger: Logger = Logger(label: "statehouse.scheduler"),
        observer: @escaping @Sendable (SchedulerEvent) -> Void = { _ in },
        work: @escaping @Sendable (Leadership) async throws -> Void
    ) {
        self.session = session
        self.election = election
        self.candidate = candidate
        self.interval = interval
        self.logger = logger
        self.observer = observer
        self.work = work
    }

    /// Campaigns, works while elected, and campaigns again when the leadership is lost, until
    /// cancelled or shut down gracefully (then it resigns).
    public func run() async throws {
        let election = Election(session: session, name: self.election)
        try await cancelWhenGracefulShutdown {
            while true {
                let leader = try await election.campaign(heartbeat(0))
                observer(.elected(token: leader.revision))
                let leadership = Leadership(client: session.client, key: leader)
                var beat = 0
                leading: while true {
                    do {
                        try await work(leadership)
                        beat += 1
                        try await election.proclaim(heartbeat(beat))
                    } catch let error as StatehouseError where error.code == .notHeld {
                        observer(.lost(token: leader.revision))
                        break leading
                    } catch  where !(error is CancellationError) && !Task.isCancelled {
                        logger.warning("scheduled work failed; trying again", metadata: ["error": "\(error)"])
                    }
                    try await Task.sleep(for: interval)
                }
            }
        }
        try? await election.resign()
    }

    /// The candidacy's value: who it is, and a counter that moves with every heartbeat.
    private func heartbeat(_ beat: Int) -> String {
        #"{"beat":\#(beat),"scheduler":"\#(candidate)"}"#
    }
}

/// What happened to an ``ElectedScheduler``'s candidacy.
public enum SchedulerEvent: Sendable, Hashable {
    /// It was elected; `token` is its leader key's create revision.
    case elected(token: Int64)
    /// It found it no longer leads.
    case lost(token: Int64)
}

/// Proof of an ``ElectedScheduler``'s leadership, to guard its writes.
public struct Leadership: Sendable {
    /// The client.
    public let client: StatehouseClient
    /// The leader key.
    public let key: LeaderKey

    /// The leadership's fencing token (the leader key's create revision).
    public var token: Int64 { key.revision }

    /// The comparison that holds while the leadership does.
    public var isHeld: Compare { .createRevision(key.key) == key.revision }

    /// Runs `txn` only while the leadership holds; returns its result.
    ///
    /// - Throws: `StatehouseError` with code `notHeld` if it no longer does (then nothing was
    ///   written).
    public func guardedTxn(_ txn: Txn) async throws -> TxnResult {
        let result = try await client.txn().when(isHeld).then(.txn(txn)).commit()
        guard result.succeeded, case .txn(let inner)? = result.results.first else {
            throw StatehouseError(.notHeld, "the leadership of \(key.name) was lost")
        }
        return inner
    }
}
