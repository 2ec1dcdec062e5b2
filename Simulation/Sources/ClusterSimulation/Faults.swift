// The fault actions of the fault phase: crashes and quick restarts, partitions, pauses,
// leadership transfers and clock jumps (disk faults are in StorageFaults.swift, membership
// changes in MembershipFaults.swift), and the healing of everything when the phase ends.

import Primitives
@_spi(Testing) import RaftCore
@_spi(Testing) import ReplicatedMember

extension Simulation {
    /// A fault action of the fault phase: schedules the next, then draws a fault, maybe a disk
    /// fault (StorageFaults.swift) and maybe a clock jump.
    func faultAction() {
        queue.schedule(.fault, at: now + randomInterval(options.meanTimeBetweenFaults))
        injectFault()
        injectStorageFault()
        if options.clockJumpRate > 0 && rng.chance(options.clockJumpRate) { jumpClock() }
    }

    /// A running member's clock jumps by 1–3 ticks. Forward, it processes them at once.
    /// Backward, its next ticks do not come until its clock has caught up again, while it goes
    /// on processing messages and requests (a timer that waits out a clock stepped back).
    func jumpClock() {
        let running = members.indices.filter { members[$0].isRunning && !members[$0].isRetired }
        guard !running.isEmpty else { return }
        let node = running[Int(rng.next(below: UInt64(running.count)))]
        let ticks = 1 + Int(rng.next(below: 3))
        statistics.clockJumps += 1
        if rng.chance(0.5) {
            record(.clockJump(member: node, ticks: -ticks))
            statistics.clockStepsBack += 1
            members[node].ticksToSkip += ticks
            return
        }
        record(.clockJump(member: node, ticks: ticks))
        clockJumps.append((now, ticks))
        for _ in 0..<ticks { deliver(.tick, to: node) }
    }

    /// Draws one fault by the options' weights (and maybe a leadership transfer first).
    func injectFault() {
        let running = members.indices.filter { members[$0].isRunning && !members[$0].isRetired }
        let quorum = options.nodeCount / 2 + 1
        if options.transferRate > 0 && rng.chance(options.transferRate), let leader = leader() {
            let voters = members[Int(leader) - 1].core!.raft.confState.voters.filter { $0 != leader }
            if !voters.isEmpty {
                let target = voters[Int(rng.next(below: UInt64(voters.count)))]
                record(.transfer(from: leader, to: target))
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
            let links = links(around: Set(group.prefix(size)))
            record(.partition(size: size))
            block(links)
            queue.schedule(.healLinks(links), at: now + duration)
        case 2:  // asymmetric: one member can only send, or only receive
            let node = Int(rng.next(below: UInt64(members.count)))
            let inbound = rng.chance(0.5)
            let links = members.indices.filter { $0 != node }.map { inbound ? Link(from: $0, to: node) : Link(from: node, to: $0) }
            record(.asymmetricPartition(member: node, inbound: inbound))
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
            record(.pause(member: node))
            members[node].isPaused = true
            queue.schedule(.unpause(node: node, incarnation: members[node].incarnation), at: now + duration / 2)
        }
    }

    /// Ends the faults: disks stop failing, every link heals, paused members resume and crashed
    /// ones restart.
    func healAll() {
        networkHealed = true
        disarmStorageFaults()
        healNetwork()
        for index in members.indices where !members[index].isRunning && !members[index].isRetired { start(index) }
    }
}
