// Conversions between etcd 3.4's v3 wire messages (EtcdWire) and the state machine's types (MVCC).
//
// Requests convert in both directions: wire → MVCC with `init(_:)` on the MVCC type (throwing when
// etcd would refuse the wire input), MVCC → wire with `init(_:)` on the wire type. Responses
// convert MVCC → wire, taking the `ResponseHeader` the server fills for the top-level response.

public import EtcdWire

/// Builds the header etcd puts on every response.
///
/// - Parameters:
///   - clusterID: The ID of the cluster that answers.
///   - memberID: The ID of the member that answers; etcdctl compares it with the leader ID.
///   - revision: The store revision of the answer, normally the MVCC response's `revision`.
///   - raftTerm: The Raft term of the answering member.
public func header(clusterID: UInt64, memberID: UInt64, revision: Int64, raftTerm: UInt64) -> Etcdserverpb_ResponseHeader {
    var header = Etcdserverpb_ResponseHeader()
    header.clusterID = clusterID
    header.memberID = memberID
    header.revision = revision
    header.raftTerm = raftTerm
    return header
}

/// The header etcd puts on a response nested in a transaction: only the revision is set
/// (etcd fills cluster, member and term on the top-level header alone).
func nestedHeader(revision: Int64) -> Etcdserverpb_ResponseHeader {
    header(clusterID: 0, memberID: 0, revision: revision, raftTerm: 0)
}
