import Foundation
import Testing

extension LocalClusterTests {
    /// The `etcd3` package from PyPI (python-etcd3 0.12.0, on gRPC's C core) against a
    /// three-member cluster: `Tests/Clients/python/etcd3_client.py` checks keys, transactions,
    /// watches, leases, locks, the member list and status, each against what etcd answers.
    ///
    /// `scripts/install-deps.sh` (run by `make test`) installs the client into a virtualenv,
    /// ``PythonClient/interpreter``; without it the test fails rather than skips, so a missing
    /// installation step cannot pass unnoticed.
    @Suite("Python etcd3 client")
    struct PythonClientTests {
        @Test("python-etcd3: KV, transactions, watch, leases, locks, members and status")
        func etcd3Client() async throws {
            let client = try PythonClient()
            try await withCluster { cluster in
                let run = try await client.run(endpoints: cluster.endpoints(), in: cluster)
                // The script exits 0 only once every check passed.
                #expect(run.status == .exited(0), "\(run)")
            }
        }
    }
}

/// The Python `etcd3` client script in `Tests/Clients/python`, run by the virtualenv that
/// `scripts/install-python-client.sh` makes.
struct PythonClient {
    /// The repository's root (this file is Tests/ClusterTests/PythonClientTests.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The virtualenv's interpreter.
    static let interpreter = root.appendingPathComponent(".build/python-etcd3/bin/python").path
    /// The script.
    static let script = root.appendingPathComponent("Tests/Clients/python/etcd3_client.py").path

    /// What one run of the script printed and how it ended.
    struct Run: CustomStringConvertible {
        var status: ExitStatus
        /// Its standard output and error, merged.
        var output: String

        var description: String { "etcd3_client.py \(status); its output:\n\(output)" }
    }

    /// The virtualenv is not there.
    struct NotInstalled: Error, CustomStringConvertible {
        var description: String {
            "the Python etcd3 client is not installed (no \(PythonClient.interpreter)); "
                + "install it with `bash scripts/install-deps.sh` (which `make test` runs)"
        }
    }

    /// Checks that the virtualenv exists.
    ///
    /// - Throws: ``NotInstalled`` if it does not.
    init() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.interpreter) else { throw NotInstalled() }
    }

    /// Runs the script against `endpoints` (comma-separated client URLs) and waits for it.
    ///
    /// The cluster kills the script when the test ends if it still runs.
    ///
    /// - Throws: ``TimeoutError``, with what the script printed, if it still runs after `timeout`.
    func run(endpoints: String, in cluster: LocalCluster, timeout: Duration = .seconds(300)) async throws -> Run {
        // gRPC's C core honours proxy variables; PYTHON* variables could swap the virtualenv's
        // packages. -B keeps the script's directory free of bytecode, -u its output unbuffered.
        let environment = ProcessInfo.processInfo.environment.filter {
            !$0.key.lowercased().hasSuffix("_proxy") && !$0.key.hasPrefix("PYTHON")
        }
        let process = cluster.adopt(
            try ChildProcess(
                executable: Self.interpreter, arguments: ["-B", "-u", Self.script, endpoints], environment: environment,
                outputPath: cluster.root + "/etcd3-client.out"))
        do {
            return Run(status: try await process.waitForExit(timeout: timeout), output: process.output)
        } catch {
            await process.killAndWait()
            throw TimeoutError(description: "etcd3_client.py still ran after \(timeout); its output:\n\(process.output)")
        }
    }
}
