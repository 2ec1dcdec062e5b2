import Foundation
import Testing

/// A task executor with threads of its own, for long synchronous test work: simulator sweeps,
/// randomized checks, waiting for a child process.
///
/// Swift Testing runs test functions on Swift concurrency's cooperative pool, which has one
/// thread per core. On a 2-core machine two synchronous tests that compute for a minute hold the
/// whole pool, and every async test meanwhile stalls: a cluster test polling `/health` every
/// 100 ms could not run at all for 95 s, and timed out although the cluster was healthy. Work
/// run with ``runOnOwnThreads(_:)`` or under the ``OwnThreadsTrait`` runs on these threads instead, which the kernel schedules
/// fairly with everything else. The task stays the same, so Swift Testing still attributes
/// `#expect` failures to the running test.
public final class OwnThreads: TaskExecutor, @unchecked Sendable {
    /// The executor the test suites share: two threads, like the pool it relieves.
    public static let shared = OwnThreads(count: 2)

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []  // guarded by `condition`

    /// Starts `count` threads that run the enqueued jobs, oldest first, for the process's lifetime.
    public init(count: Int) {
        for index in 0..<count {
            let thread = Thread { [unowned self] in
                // Named from inside: on Linux a name set before start() does not reach the thread.
                Thread.current.name = "test-work-\(index)"
                self.runJobs()
            }
            thread.stackSize = 16 << 20
            thread.start()
        }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        condition.lock()
        jobs.append(unowned)
        condition.signal()
        condition.unlock()
    }

    private func runJobs() -> Never {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

/// Runs `body` on ``OwnThreads/shared`` rather than on the cooperative pool (see ``OwnThreads``).
///
/// `body` runs in a child task that prefers that executor: a child task starts there, while
/// `withTaskExecutorPreference` alone lets the code before the first suspension run where the
/// caller was. Task-local values (Swift Testing's current test) are inherited.
public func runOnOwnThreads<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
    // The group waits for its one child, so `body` does not outlive this call.
    try await withoutActuallyEscaping(body) { body in
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask(executorPreference: OwnThreads.shared) { try await body() }
            return try await group.next()!
        }
    }
}

/// A trait that runs a test, or every test of a suite, on ``OwnThreads/shared``: put it on
/// suites whose tests compute or block for long (see ``OwnThreads``).
public struct OwnThreadsTrait: TestTrait, SuiteTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        // Suites get the trait recursively; only the test cases themselves need moving.
        guard testCase != nil else { return try await function() }
        try await runOnOwnThreads(function)
    }
}

extension Trait where Self == OwnThreadsTrait {
    /// Runs the test (every test of a suite) on threads of its own instead of the cooperative pool.
    public static var onOwnThreads: Self { OwnThreadsTrait() }
}
