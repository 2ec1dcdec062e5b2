import Foundation
import Glibc

/// What one etcdctl run printed and how it ended.
struct EtcdctlResult: CustomStringConvertible {
    /// The command line, for messages.
    var command: String
    /// How it ended.
    var status: ExitStatus
    /// What it printed on standard output.
    var output: String
    /// What it printed on standard error.
    var errorOutput: String

    var description: String { "`\(command)` \(status); stdout: \(output.debugDescription); stderr: \(errorOutput.debugDescription)" }

    /// The lines of standard output, without the final empty one.
    var lines: [String] {
        var lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        return lines
    }
}

/// Runs `/usr/bin/etcdctl` (3.4, v3 API) against a ``LocalCluster``.
struct Etcdctl {
    /// Where etcdctl is expected.
    static let path = "/usr/bin/etcdctl"

    /// The cluster whose members are the default endpoints.
    let cluster: LocalCluster
    /// Flags given to every run before the command's own (`--cacert`, `--cert`, `--key`).
    var globalArguments: [String] = []
    init(cluster: LocalCluster) {
        self.cluster = cluster
    }

    /// The arguments and environment etcdctl runs with: the endpoints, short timeouts, and the
    /// v3 API, without any proxy settings.
    private func invocation(_ arguments: [String], endpoints: [LocalMember]?) -> (arguments: [String], environment: [String: String]) {
        var environment = ProcessInfo.processInfo.environment.filter {
            !$0.key.lowercased().hasSuffix("_proxy") && !$0.key.hasPrefix("ETCDCTL_")
        }
        environment["ETCDCTL_API"] = "3"
        let global = ["--endpoints=\(cluster.endpoints(endpoints))", "--dial-timeout=3s", "--command-timeout=15s"] + globalArguments
        return (global + arguments, environment)
    }

    /// Fresh output files in the cluster's directory (unique across every runner of the
    /// cluster, so that two runners never append to each other's files).
    private func nextFiles() -> (output: String, error: String) {
        let base = cluster.root + "/etcdctl-\(UUID().uuidString.prefix(12))"
        return (base + ".out", base + ".err")
    }

    /// Runs `etcdctl arguments` to completion, feeding it `input` on standard input.
    ///
    /// - Throws: ``TimeoutError`` if it still runs after `timeout` (it is killed then).
    func run(
        _ arguments: [String], endpoints: [LocalMember]? = nil, input: String? = nil, timeout: Duration = .seconds(30)
    ) async throws -> EtcdctlResult {
        let process = try start(arguments, endpoints: endpoints, input: input)
        do {
            let status = try await process.waitForExit(timeout: timeout)
            return EtcdctlResult(
                command: "etcdctl " + arguments.joined(separator: " "), status: status, output: process.output,
                errorOutput: process.errorOutput)
        } catch {
            await process.killAndWait()
            throw TimeoutError(
                description: "`etcdctl \(arguments.joined(separator: " "))` did not finish within \(timeout); stdout: "
                    + "\(process.output.debugDescription); stderr: \(process.errorOutput.debugDescription)")
        }
    }

    /// Starts `etcdctl arguments` in the background (watch, lock, elect, …).
    func start(_ arguments: [String], endpoints: [LocalMember]? = nil, input: String? = nil) throws -> ChildProcess {
        let (fullArguments, environment) = invocation(arguments, endpoints: endpoints)
        let files = nextFiles()
        return try ChildProcess(
            executable: Self.path, arguments: fullArguments, environment: environment, input: input, outputPath: files.output,
            errorPath: files.error)
    }
}

/// The unsigned integers that follow `"name":` in the JSON text `json`, in order, read exactly
/// (member IDs do not fit a Double).
func jsonIntegers(named name: String, in json: String) -> [UInt64] {
    var result: [UInt64] = []
    var rest = Substring(json)
    let marker = "\"\(name)\":"
    while let range = rest.range(of: marker) {
        rest = rest[range.upperBound...]
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        if let value = UInt64(digits) { result.append(value) }
    }
    return result
}

/// A command printed something the test cannot read.
struct UnexpectedOutput: Error, CustomStringConvertible {
    var description: String
}

/// The JSON object `text` encodes.
func jsonObject(_ text: String) throws -> [String: Any] {
    guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
        throw UnexpectedOutput(description: "not a JSON object: \(text)")
    }
    return object
}

/// A JSON number as an Int64.
func jsonInt64(_ value: Any?) -> Int64? {
    if let number = value as? NSNumber { return number.int64Value }
    if let number = value as? Int { return Int64(number) }
    if let number = value as? Double { return Int64(number) }
    return nil
}

/// The bytes a base64 JSON string encodes, as text.
func base64Text(_ value: Any?) -> String? {
    guard let text = value as? String, let data = Data(base64Encoded: text) else { return nil }
    return String(decoding: data, as: UTF8.self)
}
