import Foundation
import XCTest

/// A test case that runs a ``LocalCluster``: it kills every member in `tearDown`, and when the
/// test failed prints the end of every member's log and keeps the cluster's files.
class ClusterTestCase: XCTestCase {
    /// The cluster the test started, if any.
    var cluster: LocalCluster?
    /// Child processes other than members (etcdctl runs) to kill in `tearDown`.
    var children: [ChildProcess] = []

    /// Starts a cluster of `size` members and waits until it is healthy with a leader.
    func startCluster(size: Int = 3, snapshotCount: Int? = nil) async throws -> LocalCluster {
        let cluster: LocalCluster
        do {
            cluster = try LocalCluster(size: size, snapshotCount: snapshotCount)
        } catch let error as LocalCluster.MissingExecutable {
            throw XCTSkip("\(error); build it with `swift build --product statehouse`")
        }
        self.cluster = cluster
        try await cluster.start()
        return cluster
    }

    override func tearDown() async throws {
        for child in children { await child.killAndWait() }
        children = []
        if let cluster {
            await cluster.shutdown()
            if let testRun, testRun.totalFailureCount > 0 {
                print("==== \(name) failed; the cluster's files are kept in \(cluster.root)")
                print(cluster.logTails())
            } else {
                cluster.removeFiles()
            }
        }
        cluster = nil
        try await super.tearDown()
    }
}
