// The simulated network: links between members, which faults and scripts block and heal, and
// the sending of Raft messages with seeded delay (which reorders), loss and duplication, and of
// requests forwarded to the leader (lease requests, membership changes) and their replies,
// with delay and loss.

import Primitives
@_spi(Testing) import RaftCore
import ReplicatedMember

extension Simulation {
    /// A one-way link between two members, by index.
    struct Link: Hashable {
        var from: Int
        var to: Int
    }

    /// Sends a message: unless its link is blocked, the delivery filter refuses it or it is lost,
    /// it arrives after a network delay, and some messages arrive twice.
    func send(_ message: RaftMessage) {
        statistics.messagesSent += 1
        watchSent(message)
        let link = Link(from: Int(message.from) - 1, to: Int(message.to) - 1)
        guard blocked[link] == nil, deliveryFilter?(message) ?? true else { return }
        if !networkHealed && rng.chance(options.dropRate) {
            statistics.messagesDropped += 1
            return
        }
        queue.schedule(.deliver(message), at: now + networkDelay())
        // A forwarded proposal is not idempotent: applied twice, it would write twice (as in
        // etcd). Peers exchange messages over TCP streams, which never deliver a frame twice, so
        // proposals are lost or reordered here but never duplicated; every other message is
        // idempotent in Raft and may be.
        if message.kind != .propose && !networkHealed && rng.chance(options.duplicateRate) {
            queue.schedule(.deliver(message), at: now + networkDelay())
        }
    }

    /// Sends a forward to the leader or a reply as the server does, on the peer connection: blocked
    /// links and loss apply as to Raft messages, but it is never delivered twice (a forwarded
    /// keep-alive is not idempotent to its client's answer).
    func send(_ message: ForwardMessage, from: NodeID, to: NodeID) {
        statistics.forwardMessagesSent += 1
        let link = Link(from: Int(from) - 1, to: Int(to) - 1)
        guard blocked[link] == nil else { return }
        if !networkHealed && rng.chance(options.dropRate) { return }
        queue.schedule(.deliverForward(from: from, to: to, message), at: now + networkDelay())
    }

    /// A forward or reply reaches its recipient, unless it is down or the link is blocked.
    func arrive(_ message: ForwardMessage, from: NodeID, to: NodeID) {
        let index = Int(to) - 1
        guard index >= 0, index < members.count, members[index].isRunning,
            blocked[Link(from: Int(from) - 1, to: index)] == nil
        else { return }
        record(.deliverForward(from: from, to: to, message))
        deliver(.forwardMessage(message, from: from), to: index)
    }

    /// A message's delay on the network, drawn between the options' bounds.
    func networkDelay() -> UInt64 {
        options.minDelay + rng.next(below: options.maxDelay - options.minDelay + 1)
    }

    /// Blocks links (a link blocked by several faults heals when the last one does).
    func block(_ links: [Link]) {
        for link in links { blocked[link, default: 0] += 1 }
    }

    /// A message reaches its recipient, unless the recipient is down or the link is blocked.
    func arrive(_ message: RaftMessage) {
        let to = Int(message.to) - 1
        guard to >= 0, to < members.count, members[to].isRunning,
            blocked[Link(from: Int(message.from) - 1, to: to)] == nil
        else { return }
        record(.deliver(message))
        deliver(.message(message), to: to)
    }

    /// Heals links that a fault blocked (a link another fault still blocks stays blocked).
    func heal(_ links: [Link]) {
        record(.heal(links: links.count))
        for link in links {
            if let count = blocked[link] { blocked[link] = count > 1 ? count - 1 : nil }
        }
    }

    /// The links between `inside` and every other member, both ways.
    func links(around inside: Set<Int>) -> [Link] {
        var links: [Link] = []
        for a in members.indices where inside.contains(a) {
            for b in members.indices where !inside.contains(b) {
                links.append(Link(from: a, to: b))
                links.append(Link(from: b, to: a))
            }
        }
        return links
    }
}
