import GRPCCore

/// The etcd v3 methods the client calls.
enum Methods {
    static func kv(_ method: String) -> MethodDescriptor {
        MethodDescriptor(fullyQualifiedService: "etcdserverpb.KV", method: method)
    }
    static func lease(_ method: String) -> MethodDescriptor {
        MethodDescriptor(fullyQualifiedService: "etcdserverpb.Lease", method: method)
    }
    static func cluster(_ method: String) -> MethodDescriptor {
        MethodDescriptor(fullyQualifiedService: "etcdserverpb.Cluster", method: method)
    }
    static func maintenance(_ method: String) -> MethodDescriptor {
        MethodDescriptor(fullyQualifiedService: "etcdserverpb.Maintenance", method: method)
    }

    static let range = kv("Range")
    static let put = kv("Put")
    static let deleteRange = kv("DeleteRange")
    static let txn = kv("Txn")
    static let compact = kv("Compact")
    static let watch = MethodDescriptor(fullyQualifiedService: "etcdserverpb.Watch", method: "Watch")
    static let leaseGrant = lease("LeaseGrant")
    static let leaseRevoke = lease("LeaseRevoke")
    static let leaseKeepAlive = lease("LeaseKeepAlive")
    static let leaseTimeToLive = lease("LeaseTimeToLive")
    static let leaseLeases = lease("LeaseLeases")
    static let memberAdd = cluster("MemberAdd")
    static let memberRemove = cluster("MemberRemove")
    static let memberUpdate = cluster("MemberUpdate")
    static let memberList = cluster("MemberList")
    static let memberPromote = cluster("MemberPromote")
    static let alarm = maintenance("Alarm")
    static let status = maintenance("Status")
    static let defragment = maintenance("Defragment")
    static let hash = maintenance("Hash")
    static let hashKV = maintenance("HashKV")
    static let snapshot = maintenance("Snapshot")
    static let moveLeader = maintenance("MoveLeader")
    static func auth(_ method: String) -> MethodDescriptor {
        MethodDescriptor(fullyQualifiedService: "etcdserverpb.Auth", method: method)
    }
    static let authenticate = auth("Authenticate")
}
