// statehouse-restore: creates a member's data directory from a backup (`etcdctl snapshot save`).
//
//   statehouse-restore BACKUP [statehouse options…]
//
// The options are the `statehouse` options of the member that will use the directory (at least
// --name, --data-dir, --initial-cluster, --initial-advertise-peer-urls and
// --initial-cluster-token). Restore the same backup for every member of the new cluster, then
// start each with `--initial-cluster-state new`. The new cluster has the backup's keys (with their
// revisions and history) and leases; its membership comes from --initial-cluster.

import BackupFormat
import Foundation
import ReplicatedMember
import ServerConfiguration
import StateMachine
import StatehouseServer
import Storage
import StorageRocksDB

func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("statehouse-restore: \(message)\n".utf8))
    exit(code)
}

var arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "--help" || arguments.first == "-h" || arguments.isEmpty {
    print(
        """
        usage: statehouse-restore BACKUP [statehouse options…]

        Creates the data directory of one member of a new cluster from a backup file written by
        `etcdctl snapshot save` against Statehouse. Give the options the member will be started
        with (at least --name, --data-dir, --initial-cluster, --initial-advertise-peer-urls,
        --initial-cluster-token); restore the same backup for every member, then start them with
        --initial-cluster-state new. See `statehouse --help` for the options.
        """)
    exit(arguments.isEmpty ? 2 : 0)
}
let backupPath = arguments.removeFirst()
let configuration: ServerConfiguration
do {
    guard
        case .run(let parsed) = try ServerConfiguration.parse(
            arguments: arguments, environment: ProcessInfo.processInfo.environment,
            readFile: { try String(contentsOfFile: $0, encoding: .utf8) })
    else { fail("give the member's options, not --help or --version", code: 2) }
    configuration = parsed
} catch {
    fail(error.line, code: 2)
}
guard let file = FileManager.default.contents(atPath: backupPath) else { fail("cannot read \(backupPath)") }
let pairs: [([UInt8], [UInt8])]
do {
    pairs = try BackupFile.decode(Array(file))
} catch {
    fail("\(backupPath): \(error)")
}
let memberDirectory = configuration.dataDir + "/member"
if FileManager.default.fileExists(atPath: memberDirectory) {
    fail("\(memberDirectory) already exists; restore into an empty --data-dir")
}
do {
    try FileManager.default.createDirectory(atPath: memberDirectory, withIntermediateDirectories: true)
    let engine = try RocksDBEngine(path: memberDirectory + "/db")
    // The old cluster's members and alarms are dropped: the new membership comes from the
    // founding log entries, which are applied on top of the restored state at the first start.
    let storage = try MemberStorage(engine: engine)
    var batch = StorageBatch()
    for (key, value) in pairs
    where !key.starts(with: BackendLayout.memberPrefix) && !key.starts(with: BackendLayout.alarmPrefix) {
        batch.put(key, value)
    }
    // Through the member's storage, so that every record carries its checksum.
    try storage.engine.write(batch, sync: true)
    try storage.bootstrap(
        members: configuration.initialCluster.map { ClusterMember(id: $0.id, name: $0.name, peerURLs: $0.peerURLs) })
    try engine.close()
} catch {
    fail("restoring into \(memberDirectory): \(error)")
}
print("restored \(backupPath) into \(configuration.dataDir) for member \(configuration.name)")
