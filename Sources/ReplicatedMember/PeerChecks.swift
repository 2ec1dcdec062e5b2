import RaftCore
import StateMachine

/// What a member did with a message from a peer (``Member/step(_:)``).
public enum PeerMessageVerdict: Sendable, Hashable {
    /// The message was processed.
    case accepted
    /// The sender is not a member of the cluster as this member knows it; the message was
    /// dropped unread.
    case unknownSender
    /// The message completed a snapshot whose data does not install (a bad checksum, data that
    /// is not a snapshot, or a state that does not restore); it was refused before anything was
    /// stored, and the leader was told to send it again. The string says why.
    case invalidSnapshot(String)
}

extension Member {
    /// Whether a message from `peer` may be processed: `peer` is a voter or learner of the
    /// membership as applied here, or being added by a change already in the log (see
    /// ``RaftNode/recognizes(_:)``), or, until this member has applied its own addition, one of
    /// ``MemberConfiguration/initialMembers`` (a member that joins, or replays the founding
    /// entries, learns the membership from those members' messages).
    ///
    /// A member being removed is recognized until its removal is applied here, so it can still
    /// receive and acknowledge the entries before it; after that its messages are dropped, as
    /// etcd refuses messages from removed members.
    ///
    /// A member that lags behind the log does not know members added after the point it has
    /// reached: it refuses their messages until an entry adding them reaches its log from a
    /// member it knows.
    public func recognizes(_ peer: NodeID) -> Bool {
        guard peer != id else { return false }
        if raft.recognizes(peer) { return true }
        return !raft.confState.contains(id) && configuration.initialMembers.contains(peer)
    }

    /// The backend pairs and state machine a snapshot restores.
    ///
    /// - Throws: ``Primitives/ByteDecodingError`` when the data is not checksummed snapshot data
    ///   (or plain data from an earlier build) with a matching checksum, or the state machine's
    ///   error when the pairs do not restore a state.
    static func restoredState(
        from snapshot: Snapshot, configuration: MemberConfiguration
    ) throws -> (pairs: [([UInt8], [UInt8])], store: StateStore) {
        let pairs = try SnapshotCodec.decodeChecksummed(snapshot.data)
        let store = try StateStore(restoringFrom: pairs, configuration: configuration.storeConfiguration)
        return (pairs, store)
    }
}
