import Foundation
import Glibc

/// How a child process ended.
enum ExitStatus: Equatable, CustomStringConvertible {
    /// It exited with this code.
    case exited(Int32)
    /// A signal killed it.
    case signaled(Int32)

    var description: String {
        switch self {
        case .exited(let code): return "exited with status \(code)"
        case .signaled(let signal): return "killed by signal \(signal)"
        }
    }
}

/// An error that ends ``eventually(_:timeout:interval:_:)`` at once instead of being retried.
protocol StopsWaiting: Error {}

/// A condition the tests waited for did not come about in time.
struct TimeoutError: Error, CustomStringConvertible {
    var description: String
}

/// Polls `body` every `interval` until it returns a value, and returns that value. Errors
/// `body` throws are retried, except ``StopsWaiting`` ones.
///
/// - Throws: ``TimeoutError`` naming `what` (and the last error `body` threw) once `timeout` has
///   passed.
func eventually<Value>(
    _ what: String, timeout: Duration = .seconds(20), interval: Duration = .milliseconds(100),
    _ body: () async throws -> Value?
) async throws -> Value {
    let deadline = ContinuousClock.now + timeout
    var lastError: (any Error)?
    while true {
        do {
            if let value = try await body() { return value }
        } catch let error as any StopsWaiting {
            throw error
        } catch {
            lastError = error
        }
        guard ContinuousClock.now < deadline else {
            throw TimeoutError(
                description: "timed out after \(timeout) waiting for \(what)" + (lastError.map { "; last error: \($0)" } ?? ""))
        }
        try await Task.sleep(for: interval)
    }
}

/// A child process whose standard output and error go to files, so that nothing blocks however
/// much it prints, and what it printed can be read at any time.
final class ChildProcess {
    /// The process.
    let process: Process
    /// The file its standard output goes to.
    let outputPath: String
    /// The file its standard error goes to (the same as ``outputPath`` when they are merged).
    let errorPath: String

    /// Starts `executable` with `arguments`.
    ///
    /// - Parameters:
    ///   - environment: The child's environment; nil inherits this process's.
    ///   - input: What the child reads on standard input; nil gives it `/dev/null`.
    ///   - outputPath: Where standard output goes; appended to if the file exists.
    ///   - errorPath: Where standard error goes; nil merges it into standard output.
    init(
        executable: String, arguments: [String], environment: [String: String]? = nil, input: String? = nil,
        outputPath: String, errorPath: String? = nil
    ) throws {
        signal(SIGPIPE, SIG_IGN)
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        self.outputPath = outputPath
        self.errorPath = errorPath ?? outputPath
        let output = try Self.appendingHandle(outputPath)
        let error = try errorPath.map(Self.appendingHandle) ?? output
        process.standardOutput = output
        process.standardError = error
        var inputHandle = FileHandle.nullDevice
        if let input {
            let inputPath = outputPath + ".stdin"
            try Data(input.utf8).write(to: URL(fileURLWithPath: inputPath))
            inputHandle = try FileHandle(forReadingFrom: URL(fileURLWithPath: inputPath))
        }
        process.standardInput = inputHandle
        try process.run()
        try? output.close()
        if error !== output { try? error.close() }
        if input != nil { try? inputHandle.close() }
    }

    private static func appendingHandle(_ path: String) throws -> FileHandle {
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        return handle
    }

    /// The process ID.
    var pid: Int32 { process.processIdentifier }

    /// Whether it is still running.
    var isRunning: Bool { process.isRunning }

    /// Everything it printed on standard output so far.
    var output: String { Self.read(outputPath) }

    /// Everything it printed on standard error so far.
    var errorOutput: String { Self.read(errorPath) }

    static func read(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    /// Sends `signal` (if it still runs).
    func send(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// Waits until it exits, and returns how.
    ///
    /// - Throws: ``TimeoutError`` if it still runs after `timeout`.
    func waitForExit(timeout: Duration = .seconds(10)) async throws -> ExitStatus {
        let process = self.process
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else {
                throw TimeoutError(
                    description: "\(process.executableURL?.lastPathComponent ?? "process") \(pid) still runs after \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return exitStatus
    }

    /// How it ended; only meaningful once it is no longer running.
    var exitStatus: ExitStatus {
        process.terminationReason == .uncaughtSignal ? .signaled(process.terminationStatus) : .exited(process.terminationStatus)
    }

    /// Waits until its standard output satisfies `condition`, and returns that output.
    func waitForOutput(
        _ what: String, timeout: Duration = .seconds(15), until condition: (String) -> Bool
    ) async throws -> String {
        try await eventually(what, timeout: timeout, interval: .milliseconds(50)) {
            let output = self.output
            return condition(output) ? output : nil
        }
    }

    /// Kills it with SIGKILL, if it still runs, and reaps it.
    func killAndWait() async {
        send(SIGKILL)
        _ = try? await waitForExit(timeout: .seconds(5))
    }
}

/// The last `count` lines of the file at `path`.
func tail(of path: String, lines count: Int) -> String {
    let lines = ChildProcess.read(path).split(separator: "\n", omittingEmptySubsequences: false)
    return lines.suffix(count).joined(separator: "\n")
}
