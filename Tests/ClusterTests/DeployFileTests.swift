import Foundation
import TestSupport
import Testing
import Yams

/// Keeps the files in `deploy/` honest: no Docker engine or Kubernetes runs here, so every member
/// each file defines (systemd environment files, the Dockerfile's defaults, each compose service,
/// each StatefulSet pod) goes through `statehouse --validate-config`, which checks flags,
/// environment and config file exactly as a start does; and the systemd units go through
/// `systemd-analyze verify`.
@Suite("Deploy files")
struct DeployFileTests {
    /// The repository's root (this file is Tests/ClusterTests/DeployFileTests.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func text(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    /// The outcome of `statehouse --validate-config` with `arguments` and exactly `environment`.
    struct Validation {
        var status: ExitStatus
        var output: String
        var errors: String
    }

    static func validate(_ arguments: [String], environment: [String: String]) async throws -> Validation {
        guard let executable = builtExecutable(named: "statehouse") else {
            try skipTest("the statehouse executable was not built; build it with `swift build --product statehouse`")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("statehouse-deploy-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var base = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("STATEHOUSE_") }
        base.merge(environment) { $1 }
        let process = try ChildProcess(
            executable: executable.path, arguments: ["--validate-config"] + arguments, environment: base,
            outputPath: directory + "/out", errorPath: directory + "/err")
        let status = try await process.waitForExit(timeout: .seconds(10))
        return Validation(status: status, output: process.output, errors: process.errorOutput)
    }

    /// Expects `arguments` and `environment` to be a valid member named `name`.
    static func expectValid(_ what: String, _ arguments: [String], _ environment: [String: String], name: String) async throws {
        let result = try await validate(arguments, environment: environment)
        #expect(result.status == .exited(0), "\(what): \(result.errors)")
        #expect(result.output.contains("\nname: \(name) ("), "\(what) is not member \(name): \(result.output)")
    }

    /// `KEY=VALUE` lines, comments and blank lines skipped.
    static func environmentFile(_ text: String) -> [String: String] {
        var environment: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && line.contains("=") {
            let parts = line.split(separator: "=", maxSplits: 1)
            environment[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        return environment
    }

    @Test("the validator itself refuses what a start refuses")
    func validatorRefuses() async throws {
        let result = try await Self.validate(["--initial-cluster-state", "maybe"], environment: [:])
        #expect(result.status == .exited(2))
        #expect(result.errors.contains("--initial-cluster-state"))
        let environment = try await Self.validate([], environment: ["STATEHOUSE_HEARTBEAT_INTERVAL": "0"])
        #expect(environment.status == .exited(2))
    }

    @Test("systemd: every member's environment file is a valid member")
    func systemdMembers() async throws {
        for name in ["n1", "n2", "n3"] {
            let environment = Self.environmentFile(try Self.text("deploy/systemd/\(name).env"))
            #expect(environment["STATEHOUSE_NAME"] == name)
            try await Self.expectValid("deploy/systemd/\(name).env", [], environment, name: name)
        }
        let unit = try Self.text("deploy/systemd/statehouse@.service")
        #expect(unit.contains("EnvironmentFile=/etc/statehouse/%i.env"))
        #expect(unit.contains("ExecStartPre=/usr/local/bin/statehouse --validate-config"))
        let backup = Self.environmentFile(try Self.text("deploy/systemd/backup.env"))
        #expect(backup["STATEHOUSE_ENDPOINTS"]?.split(separator: ",").count == 3)
    }

    @Test("systemd: the units pass systemd-analyze verify")
    func systemdUnits() async throws {
        let analyzer = "/usr/bin/systemd-analyze"
        guard FileManager.default.isExecutableFile(atPath: analyzer) else {
            try skipTest("systemd-analyze is not installed (Debian's systemd package provides it)")
        }
        guard let statehouse = builtExecutable(named: "statehouse"), let ctl = builtExecutable(named: "statehousectl") else {
            try skipTest("statehouse and statehousectl were not built")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("statehouse-units-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The units name the installed binaries; point them at the ones just built.
        let binaries = statehouse.deletingLastPathComponent().path + "/"
        #expect(ctl.deletingLastPathComponent().path + "/" == binaries)
        let units = ["statehouse@.service": "statehouse@n1.service", "statehouse-backup.service": nil, "statehouse-backup.timer": nil]
        var names: [String] = []
        for (file, instance) in units.sorted(by: { $0.key < $1.key }) {
            let text = try Self.text("deploy/systemd/\(file)").replacing("/usr/local/bin/", with: binaries)
            let name = instance ?? file
            try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
            names.append(directory + "/" + name)
        }
        let process = try ChildProcess(
            executable: analyzer, arguments: ["verify"] + names, outputPath: directory + "/verify.out")
        let status = try await process.waitForExit(timeout: .seconds(60))
        #expect(status == .exited(0), "\(process.output)")
        // systemd-analyze only warns about a bad directive: any message is a failure here.
        #expect(process.output.isEmpty, "systemd-analyze verify: \(process.output)")
    }

    /// The Dockerfile's `ENV` defaults, as the image sets them for every container.
    static func dockerfileEnvironment() throws -> [String: String] {
        let dockerfile = try text("deploy/container/Dockerfile").replacing("\\\n", with: " ")
        var environment: [String: String] = [:]
        for line in dockerfile.split(separator: "\n") where line.hasPrefix("ENV ") {
            for pair in line.dropFirst(4).split(separator: " ") where pair.contains("=") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                environment[String(parts[0])] = String(parts[1])
            }
        }
        return environment
    }

    @Test("container: the image's defaults and every compose service are valid members")
    func container() async throws {
        let dockerfile = try Self.text("deploy/container/Dockerfile")
        #expect(dockerfile.contains(#"ENTRYPOINT ["/usr/local/bin/statehouse"]"#))
        #expect(dockerfile.contains("/readyz"))
        #expect(dockerfile.contains("USER statehouse"))
        let imageEnvironment = try Self.dockerfileEnvironment()
        #expect(!imageEnvironment.isEmpty)
        try await Self.expectValid("the image's defaults", [], imageEnvironment, name: "default")

        let compose = try #require(try Yams.load(yaml: try Self.text("deploy/container/compose.yaml")) as? [String: Any])
        let services = try #require(compose["services"] as? [String: Any])
        #expect(Set(services.keys) == ["n1", "n2", "n3"])
        for (name, value) in services.sorted(by: { $0.key < $1.key }) {
            let service = try #require(value as? [String: Any], "\(name)")
            #expect(service["image"] as? String == "statehouse", "\(name) runs another image")
            let arguments = try #require(service["command"] as? [String], "\(name) has no command list")
            var environment = imageEnvironment
            for (key, value) in service["environment"] as? [String: Any] ?? [:] { environment[key] = "\(value)" }
            try await Self.expectValid("compose service \(name)", arguments, environment, name: name)
        }
    }

    /// `$(NAME)` references in a Kubernetes argument, expanded as the kubelet does.
    static func expand(_ argument: String, _ environment: [String: String]) -> String {
        var result = argument
        for (name, value) in environment { result = result.replacing("$(\(name))", with: value) }
        return result
    }

    @Test("kubernetes: every StatefulSet pod is a valid member; probes, disruption budget and backup are in place")
    func kubernetes() async throws {
        let documents = try Yams.load_all(yaml: try Self.text("deploy/kubernetes/statehouse.yaml")).compactMap { $0 as? [String: Any] }
        func kind(_ kind: String) -> [String: Any]? { documents.first { $0["kind"] as? String == kind } }
        let statefulSet = try #require(kind("StatefulSet"))
        let spec = try #require(statefulSet["spec"] as? [String: Any])
        let replicas = try #require(spec["replicas"] as? Int)
        let serviceName = try #require(spec["serviceName"] as? String)
        let template = try #require((spec["template"] as? [String: Any])?["spec"] as? [String: Any])
        let container = try #require((template["containers"] as? [[String: Any]])?.first)
        let arguments = try #require(container["args"] as? [String])
        for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
            #expect(container[probe] != nil, "the container has no \(probe)")
        }
        let readiness = (container["readinessProbe"] as? [String: Any])?["httpGet"] as? [String: Any]
        #expect(readiness?["path"] as? String == "/readyz")
        #expect((container["resources"] as? [String: Any])?["requests"] != nil)

        let headless = try #require(
            documents.first { $0["kind"] as? String == "Service" && ($0["metadata"] as? [String: Any])?["name"] as? String == serviceName })
        #expect((headless["spec"] as? [String: Any])?["clusterIP"] as? String == "None")
        let budget = try #require(kind("PodDisruptionBudget"))
        #expect((budget["spec"] as? [String: Any])?["maxUnavailable"] as? Int == 1)
        let cronJob = try #require(kind("CronJob"))
        #expect("\(cronJob)".contains("statehousectl snapshot save"))

        for ordinal in 0..<replicas {
            let podName = "\(statefulSet["metadata"].flatMap { ($0 as? [String: Any])?["name"] as? String } ?? "")-\(ordinal)"
            var environment: [String: String] = [:]
            for variable in container["env"] as? [[String: Any]] ?? [] {
                guard let name = variable["name"] as? String else { continue }
                if let value = variable["value"] { environment[name] = "\(value)" }
                if let fieldPath = ((variable["valueFrom"] as? [String: Any])?["fieldRef"] as? [String: Any])?["fieldPath"] as? String {
                    #expect(fieldPath == "metadata.name")
                    environment[name] = podName
                }
            }
            let expanded = arguments.map { Self.expand($0, environment) }
            try await Self.expectValid("pod \(podName)", expanded, environment, name: podName)
        }
    }
}
