import Foundation
import Testing

/// The parent of every suite that runs a ``LocalCluster``. It is `.serialized`, which Swift
/// Testing applies to everything nested in it, so its tests run one at a time and no two clusters
/// ever run at once: on a two-core machine, two clusters (or a cluster and etcdctl's load
/// generator against another) make elections and deadlines miss.
///
/// Suites join it as `extension LocalClusterTests { @Suite("…") struct … }`.
@Suite("Local clusters, one at a time", .serialized)
struct LocalClusterTests {}

/// Starts a cluster of `size` members, waits until it is healthy with a leader, and runs `body`
/// with it. `prepare` runs first, before any member starts (to give members an environment).
///
/// Afterwards, also when `body` throws, every member and every process the cluster adopted
/// (``LocalCluster/adopt(_:)``) is killed. If the test failed meanwhile (`body` or the start threw,
/// or an expectation failed or an issue was recorded while it ran) the end of every member's log
/// is printed and the cluster's files are kept; otherwise they are removed.
///
/// - Throws: whatever the start or `body` threw. The test is skipped (cancelled, which Swift
///   Testing reports as skipped, not failed) if the server executable was not built.
func withCluster<Result>(
    size: Int = 3, snapshotCount: Int? = nil, arguments: [String] = [], scheme: String = "http", curlTLSArguments: [String] = [],
    prepare: (LocalCluster) -> Void = { _ in }, _ body: (LocalCluster) async throws -> Result
) async throws -> Result {
    let cluster: LocalCluster
    do {
        cluster = try LocalCluster(
            size: size, snapshotCount: snapshotCount, extraArguments: arguments, scheme: scheme, curlTLSArguments: curlTLSArguments)
    } catch let error as LocalCluster.MissingExecutable {
        try skipTest("\(error); build it with `swift build --product statehouse`")
    }
    let result: Result
    do {
        let (value, issueRecorded) = try await watchingForIssues {
            prepare(cluster)
            try await cluster.start()
            return try await body(cluster)
        }
        result = value
        await finish(cluster, failure: issueRecorded ? "an expectation failed" : nil)
    } catch {
        await finish(cluster, failure: "\(error)")
        throw error
    }
    return result
}

/// Kills what runs in `cluster`; keeps its files and prints its logs' tails if `failure` says
/// what failed, else removes them.
private func finish(_ cluster: LocalCluster, failure: String?) async {
    await cluster.shutdown()
    guard let failure else {
        cluster.removeFiles()
        return
    }
    let name = Test.current.map { $0.displayName ?? $0.name } ?? "the test"
    print("==== \(name) failed (\(failure)); the cluster's files are kept in \(cluster.root)")
    print(cluster.logTails())
}

/// Runs `body`, and returns what it returned and whether a failing issue (a failed `#expect`, an
/// `Issue.record`) was recorded for the current test while it ran, in its task or a child task.
///
/// It observes issues the way an issue-handling trait (`.compactMapIssues`) does, for the extent
/// of `body` only, and passes every issue on unchanged.
func watchingForIssues<Result>(_ body: () async throws -> Result) async throws -> (Result, issueRecorded: Bool) {
    guard let test = Test.current else { return (try await body(), false) }
    let recorded = NSLockedValue(false)
    let observer = IssueHandlingTrait.compactMapIssues { issue in
        if issue.isFailure { recorded.set(true) }
        return issue
    }
    let result = try await withoutActuallyEscaping(body) { body in
        // `body` runs in this task, within the observer's scope; the boxes only carry it and
        // its result through the scope's @Sendable closure.
        let box = UncheckedBox<() async throws -> Result>(body)
        let output = UncheckedBox<Result?>(nil)
        try await observer.provideScope(for: test, testCase: Test.Case.current) {
            output.value = try await box.value()
        }
        return output.value!
    }
    return (result, recorded.value)
}

/// A value carried across a `@Sendable` boundary by code that uses it from one task at a time.
private final class UncheckedBox<Value>: @unchecked Sendable {
    var value: Value

    init(_ value: Value) {
        self.value = value
    }
}

/// Skips the running test: prints why, then cancels the test, which Swift Testing reports as
/// skipped (with `reason`) rather than failed.
func skipTest(_ reason: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Never {
    let name = Test.current.map { $0.displayName ?? $0.name } ?? "the test"
    print("==== skipping \(name): \(reason)")
    try Test.cancel(Comment(rawValue: reason), sourceLocation: sourceLocation)
}
