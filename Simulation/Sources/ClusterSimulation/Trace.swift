// The trace: every event the simulator processes is a `TraceEvent`, hashed into the run's trace
// hash (equal seeds give equal hashes), kept in a short tail for a violation's report and, with
// `simulate --trace`, printed as it happens.

import RaftCore

/// One traced event. A member is named by its index (its identifier minus one) and printed by
/// its identifier; messages, transfers and membership changes name members by identifier.
///
/// The trace hash combines, for every event, the simulated time, then ``code`` and ``values``:
/// the numbers the simulator has always hashed, so that a seed's trace hash stays the same.
enum TraceEvent: CustomStringConvertible {
    /// A member's clock ticked.
    case tick(member: Int)
    /// A message reached its recipient.
    case deliver(kind: RaftMessage.Kind, from: NodeID, to: NodeID, term: Term, index: LogIndex, entries: Int)
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
    /// Request `operation` succeeded (a write applied, or a read served, at `index`).
    case succeeded(operation: Int, index: LogIndex)
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
    /// A member's clock jumped forward `ticks` ticks.
    case clockJump(member: Int, ticks: Int)

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
        }
    }

    /// The event's numbers in the trace hash, after ``code``.
    var values: [UInt64] {
        switch self {
        case .tick(let member), .persisted(let member), .applied(let member), .start(let member), .crash(let member),
            .resume(let member), .pause(let member):
            [UInt64(member)]
        case .deliver(let kind, let from, let to, let term, let index, let entries):
            [UInt64(kind.rawValue), from, to, term, index, UInt64(entries)]
        case .request(let operation, let member): [UInt64(operation), UInt64(member)]
        case .heal(let links): [UInt64(links)]
        case .timeout(let operation), .failed(let operation), .retry(let operation): [UInt64(operation)]
        case .succeeded(let operation, let index): [UInt64(operation), index]
        case .transfer(let from, let to): [from, to]
        case .partition(let size): [UInt64(size)]
        case .asymmetricPartition(let member, let inbound): [UInt64(member), inbound ? 1 : 0]
        case .membershipChange(let kind, let node): [UInt64(kind.rawValue), node]
        case .clockJump(let member, let ticks): [UInt64(member), UInt64(ticks)]
        }
    }

    /// Combines ``values`` into `hasher`; the most frequent events without building the array.
    func combineValues(into hasher: inout StableHasher) {
        switch self {
        case .tick(let member), .persisted(let member), .applied(let member):
            hasher.combine(UInt64(member))
        case .deliver(let kind, let from, let to, let term, let index, let entries):
            hasher.combine(UInt64(kind.rawValue))
            hasher.combine(from)
            hasher.combine(to)
            hasher.combine(term)
            hasher.combine(index)
            hasher.combine(UInt64(entries))
        default:
            for value in values { hasher.combine(value) }
        }
    }

    var description: String {
        func member(_ index: Int) -> String { "member \(index + 1)" }
        switch self {
        case .tick(let index): return "tick \(member(index))"
        case .deliver(let kind, let from, let to, let term, let index, let entries):
            return "deliver \(kind) \(from)→\(to) term \(term) index \(index) entries \(entries)"
        case .persisted(let index): return "persisted \(member(index))"
        case .applied(let index): return "applied \(member(index))"
        case .start(let index): return "start \(member(index))"
        case .crash(let index): return "crash \(member(index))"
        case .request(let operation, let index): return "client request \(operation) to \(member(index))"
        case .resume(let index): return "resume \(member(index))"
        case .heal(let links): return "heal \(links) links"
        case .timeout(let operation): return "request \(operation) timed out"
        case .succeeded(let operation, let index): return "request \(operation) succeeded at \(index)"
        case .failed(let operation): return "request \(operation) failed"
        case .transfer(let from, let to): return "transfer leadership \(from)→\(to)"
        case .partition(let size): return "partition \(size) members away"
        case .asymmetricPartition(let index, let inbound):
            return "asymmetric partition of \(member(index)) (\(inbound ? "cannot receive" : "cannot send"))"
        case .pause(let index): return "pause \(member(index))"
        case .retry(let operation): return "retry request \(operation)"
        case .membershipChange(let kind, let node): return "membership change: \(kind) \(node)"
        case .clockJump(let index, let ticks): return "clock of \(member(index)) jumps \(ticks) ticks"
        }
    }
}

extension Simulation {
    /// Adds an event at the current time to the trace hash, the tail and the event log.
    func record(_ event: TraceEvent) {
        trace.combine(now)
        trace.combine(event.code)
        event.combineValues(into: &trace)
        tail.append((now, event))
        if tail.count > 80 { tail.removeFirst(40) }
        if let eventLog { eventLog("t=\(formatTime(now)) \(event)") }
    }

    /// The last events traced, oldest first, as lines.
    func traceTailLines() -> [String] {
        tail.suffix(40).map { "t=\(formatTime($0.time)) \($0.event)" }
    }
}

/// Formats microseconds as seconds with millisecond precision.
func formatTime(_ microseconds: UInt64) -> String {
    let milliseconds = microseconds / 1_000
    let fraction = String(milliseconds % 1_000)
    return "\(milliseconds / 1_000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)s"
}
