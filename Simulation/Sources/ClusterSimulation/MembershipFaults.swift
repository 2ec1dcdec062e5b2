import Primitives
@_spi(Testing) import RaftCore
import ReplicatedMember

extension Simulation {
    /// A membership change drawn during the fault phase (for seeds with
    /// ``SimulationOptions/membershipChanges``), asked of the leader or of another running
    /// member (which forwards it) like `member add`, `member promote` and `member remove`, one
    /// change per fault action:
    ///
    /// - a member that was stopped for removal but is still in the configuration is removed
    ///   (again);
    /// - otherwise a learner is promoted to voter;
    /// - otherwise, with more than three voters, a random voter is removed: a follower is stopped
    ///   first (as an operator replaces a failed member), the leader keeps running and must step
    ///   down once it applies its own removal;
    /// - otherwise a new empty member starts and is added as a learner (at most three members
    ///   beyond the founders).
    ///
    /// A learner's addition is followed at once by its promotion, which the leader must refuse
    /// while the addition is pending.
    func changeMembership() {
        guard let leader = leader(), let conf = members[Int(leader) - 1].core?.raft.confState else { return }
        let change: ConfChange
        if let stopped = conf.members.sorted().first(where: { members[Int($0) - 1].isRetired }) {
            change = ConfChange(.removeNode, node: stopped)
        } else if let learner = conf.learners.sorted().first {
            change = ConfChange(.addVoter, node: learner)
        } else if conf.voters.count > 3 && rng.chance(0.5) {
            let voters = conf.voters.sorted()
            let target = voters[Int(rng.next(below: UInt64(voters.count)))]
            // The target stops before its removal commits: the voters left running, not counting
            // the member whose disk may be damaged (it may be kept down for good), must still be
            // a quorum of the configuration that includes the target.
            let healthy = voters.filter {
                $0 != target && !members[Int($0) - 1].isRetired && Int($0) - 1 != storageFaults.damagedMember
            }
            guard healthy.count > voters.count / 2 else { return }
            if target != leader { retire(target) }
            change = ConfChange(.removeNode, node: target)
        } else if members.count < options.nodeCount + 3 {
            change = ConfChange(.addLearner, node: addMember())
        } else {
            return
        }
        record(.membershipChange(kind: change.kind, node: change.node))
        // Half of the changes go through another running member, which forwards them to the
        // leader and answers once it has applied them itself.
        let running = members.indices.filter { members[$0].isRunning && members[$0].id != change.node }
        let via = rng.chance(0.5) ? leader : members[running[Int(rng.next(below: UInt64(running.count)))]].id
        let asked = change.kind == .addLearner ? 2 : 1
        statistics.membershipChanges += asked
        if via != leader { statistics.membershipChangesViaFollowers += asked }
        proposeConfChange(change, at: via)
        if change.kind == .addLearner {
            // An impatient operator promotes the new member at once: the leader must refuse
            // while the addition is not applied (a later fault promotes it).
            proposeConfChange(ConfChange(.addVoter, node: change.node), at: via)
        }
    }

    /// Checks the membership change member `index` just proposed, if it leads and did (its
    /// log grew past `lastIndex` with a membership change): see ``checkSingleChange(_:at:)``.
    func checkProposedChange(_ index: Int, after lastIndex: LogIndex) {
        guard let raft = members[index].core?.raft, raft.role == .leader, raft.lastIndex > lastIndex,
            raft.entry(at: raft.lastIndex)?.kind == .confChange
        else { return }
        checkSingleChange(index, at: raft.lastIndex)
    }

    /// A leader accepts a membership change only when no earlier one is still unapplied in its
    /// log: single-member changes are safe only one at a time.
    func checkSingleChange(_ index: Int, at position: LogIndex) {
        guard let raft = members[index].core?.raft, position > raft.appliedIndex + 1 else { return }
        for earlier in (raft.appliedIndex + 1)..<position where raft.entry(at: earlier)?.kind == .confChange {
            fail(
                "one membership change at a time",
                "leader \(raft.id) accepted a membership change at \(position) while the one at \(earlier) was not applied")
            return
        }
    }
}
