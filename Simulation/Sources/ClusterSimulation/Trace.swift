// The trace: every event the simulator processes is a `TraceEvent`, hashed into the run's trace
// hash (equal seeds give equal hashes), kept in a short tail for a violation's report and, with
// `simulate --trace`, printed as it happens. The hash covers each delivered message whole (entries
// and snapshot chunks byte for byte), each answer a client recorded, and at the end of the run
// every member's Raft state and state digest.

import RaftCore
import ReplicatedMember
import StateMachine

/// One traced event. A member is named by its index (its identifier minus one) and printed by
/// its identifier; messages, transfers and membership changes name members by identifier.
///
/// The trace hash combines, for every event, the simulated time, then ``code`` and the event's
/// payload (``combine(into:)``).
enum TraceEvent: CustomStringConvertible {
    /// A member's clock ticked.
    case tick(member: Int)
    /// A message reached its recipient.
    case deliver(RaftMessage)
    /// A member's batch became durable (its simulated fsync completed).
    case persisted(member: Int)
    /// A member wrote a batch's state-machine changes.
    case applied(member: Int)
    /// A member started (or restarted) from its disk.
    case start(member: Int)
    /// A member crashed.
    case crash(member: Int)
    /// A client sent request `operation` to a member.
    case request(operation: Int, member: Int)
    /// A paused member resumed.
    case resume(member: Int)
    /// Links a fault had blocked healed.
    case heal(links: Int)
    /// A client stopped waiting for request `operation`.
    case timeout(operation: Int)
    /// Request `operation` succeeded (a write applied, or a read served, at `index`) with the
    /// answer the history records (`answer`, empty when the history records none).
    case succeeded(operation: Int, index: LogIndex, answer: String)
    /// Request `operation` failed or its outcome is unknown.
    case failed(operation: Int)
    /// A leader was asked to hand leadership to another member.
    case transfer(from: NodeID, to: NodeID)
    /// `size` members were cut off from the others, both ways.
    case partition(size: Int)
    /// A member was cut off in one direction: it cannot receive (`inbound`) or cannot send.
    case asymmetricPartition(member: Int, inbound: Bool)
    /// A member's process paused.
    case pause(member: Int)
    /// A client sent request `operation` again.
    case retry(operation: Int)
    /// A membership change was proposed at the leader.
    case membershipChange(kind: ConfChange.Kind, node: NodeID)
    /// A member's clock jumped `ticks` ticks: forward, or backward when negative.
    case clockJump(member: Int, ticks: Int)
    /// A forward to the leader or a reply reached its recipient.
    case deliverForward(from: NodeID, to: NodeID, ForwardMessage)

    /// The event's number in the trace hash.
    var code: UInt64 {
        switch self {
        case .tick: 1
        case .deliver: 2
        case .persisted: 3
        case .applied: 4
        case .start: 5
        case .crash: 6
        case .request: 7
        case .resume: 8
        case .heal: 9
        case .timeout: 10
        case .succeeded: 11
        case .failed: 12
        case .transfer: 13
        case .partition: 14
        case .asymmetricPartition: 15
        case .pause: 16
        case .retry: 17
        case .membershipChange: 18
        case .clockJump: 19
        case .deliverForward: 20
        }
    }

    /// Mixes the event's payload into `hasher`, after ``code``.
    func combine(into hasher: inout StableHasher) {
        switch self {
        case .tick(let member), .persisted(let member), .applied(let member), .start(let member), .crash(let member),
            .resume(let member), .pause(let member):
            hasher.combine(UInt64(member))
        case .deliver(let message): hasher.combine(message)
        case .request(let operation, let member):
            hasher.combine(UInt64(operation))
            hasher.combine(UInt64(member))
        case .heal(let links): hasher.combine(UInt64(links))
        case .timeout(let operation), .failed(let operation), .retry(let operation): hasher.combine(UInt64(operation))
        case .succeeded(let operation, let index, let answer):
            hasher.combine(UInt64(operation))
            hasher.combine(index)
            hasher.combine(bytes: Array(answer.utf8))
        case .transfer(let from, let to):
            hasher.combine(from)
            hasher.combine(to)
        case .partition(let size): hasher.combine(UInt64(size))
        case .asymmetricPartition(let member, let inbound):
            hasher.combine(UInt64(member))
            hasher.combine(inbound ? 1 : 0)
        case .membershipChange(let kind, let node):
            hasher.combine(UInt64(kind.rawValue))
            hasher.combine(node)
        case .clockJump(let member, let ticks):
            hasher.combine(UInt64(member))
            hasher.combine(UInt64(bitPattern: Int64(ticks)))
        case .deliverForward(let from, let to, let message):
            hasher.combine(from)
            hasher.combine(to)
            hasher.combine(bytes: Array(String(describing: message).utf8))
        }
    }

    var description: String {
        func member(_ index: Int) -> String { "member \(index + 1)" }
        switch self {
        case .tick(let index): return "tick \(member(index))"
        case .deliver(let message):
            return
                "deliver \(message.kind) \(message.from)→\(message.to) term \(message.term) index \(message.index) entries \(message.entries.count)"
        case .persisted(let index): return "persisted \(member(index))"
        case .applied(let index): return "applied \(member(index))"
        case .start(let index): return "start \(member(index))"
        case .crash(let index): return "crash \(member(index))"
        case .request(let operation, let index): return "client request \(operation) to \(member(index))"
        case .resume(let index): return "resume \(member(index))"
        case .heal(let links): return "heal \(links) links"
        case .timeout(let operation): return "request \(operation) timed out"
        case .succeeded(let operation, let index, let answer):
            return "request \(operation) succeeded at \(index)\(answer.isEmpty ? "" : ": \(answer)")"
        case .failed(let operation): return "request \(operation) failed"
        case .transfer(let from, let to): return "transfer leadership \(from)→\(to)"
        case .partition(let size): return "partition \(size) members away"
        case .asymmetricPartition(let index, let inbound):
            return "asymmetric partition of \(member(index)) (\(inbound ? "cannot receive" : "cannot send"))"
        case .pause(let index): return "pause \(member(index))"
        case .retry(let operation): return "retry request \(operation)"
        case .membershipChange(let kind, let node): return "membership change: \(kind) \(node)"
        case .clockJump(let index, let ticks): return "clock of \(member(index)) jumps \(ticks) ticks"
        case .deliverForward(let from, let to, let message): return "deliver forward message \(from)→\(to): \(message)"
        }
    }
}

extension Simulation {
    /// Adds an event at the current time to the trace hash, the tail and the event log.
    func record(_ event: TraceEvent) {
        trace.combine(now)
        trace.combine(event.code)
        event.combine(into: &trace)
        tail.append((now, event))
        if tail.count > 80 { tail.removeFirst(40) }
        if let eventLog { eventLog("t=\(formatTime(now)) \(event)") }
    }

    /// Ends the trace with every member's final state: whether it runs, its term, vote, commit
    /// and applied index, and its whole-state digest.
    func recordFinalState() {
        trace.combine(UInt64(members.count))
        for member in members {
            trace.combine(member.id)
            guard let core = member.core else {
                trace.combine(0)
                continue
            }
            trace.combine(1)
            let hardState = core.raft.hardState
            trace.combine(hardState.term)
            trace.combine(hardState.vote)
            trace.combine(hardState.commit)
            trace.combine(core.appliedIndex)
            trace.combine(UInt64(core.store.digest()))
        }
    }

    /// The last events traced, oldest first, as lines.
    func traceTailLines() -> [String] {
        tail.suffix(40).map { "t=\(formatTime($0.time)) \($0.event)" }
    }
}

extension StableHasher {
    /// Mixes in a whole Raft message: every field, each entry and the snapshot chunk byte for byte.
    mutating func combine(_ message: RaftMessage) {
        combine(UInt64(message.kind.rawValue))
        combine(message.from)
        combine(message.to)
        combine(message.term)
        combine(message.logTerm)
        combine(message.index)
        combine(message.commit)
        combine(message.reject ? 1 : 0)
        combine(message.rejectHint)
        combine(message.context)
        combine(UInt64(message.entries.count))
        for entry in message.entries {
            combine(entry.term)
            combine(entry.index)
            combine(UInt64(entry.kind.rawValue))
            combine(bytes: entry.data)
        }
        guard let chunk = message.snapshot else {
            combine(0)
            return
        }
        combine(1)
        combine(chunk.metadata.index)
        combine(chunk.metadata.term)
        combine(UInt64(chunk.metadata.confState.voters.count))
        for voter in chunk.metadata.confState.voters { combine(voter) }
        combine(UInt64(chunk.metadata.confState.learners.count))
        for learner in chunk.metadata.confState.learners { combine(learner) }
        combine(chunk.offset)
        combine(chunk.isLast ? 1 : 0)
        combine(bytes: chunk.data)
    }
}

/// Formats microseconds as seconds with millisecond precision.
func formatTime(_ microseconds: UInt64) -> String {
    let milliseconds = microseconds / 1_000
    let fraction = String(milliseconds % 1_000)
    return "\(milliseconds / 1_000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)s"
}
