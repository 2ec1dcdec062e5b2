import ArgumentParser
import Foundation
import StatehouseClient

/// `endpoint`: the status and health of each endpoint.
struct EndpointCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "endpoint",
        abstract: "Prints the status or health of each endpoint.",
        subcommands: [Status.self, Health.self])

    /// `--cluster`: the endpoints to ask, from the flags or from the member list.
    struct Targets: ParsableArguments {
        @Flag(help: "Ask every member's client URLs (from the member list) instead of --endpoints.")
        var cluster = false

        /// The endpoints to ask, as written (the global ones, or the members' client URLs).
        func endpoints(_ global: GlobalOptions) async throws -> [String] {
            guard cluster else { return global.endpointList }
            let members = try await global.withClient { try await $0.members() }
            let urls = members.flatMap(\.clientURLs)
            guard !urls.isEmpty else { throw CommandFailure("no member has a client URL") }
            return urls
        }
    }

    /// `endpoint status`.
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Prints each endpoint's status.",
            discussion: """
                One line per endpoint (as etcdctl): ENDPOINT, ID, VERSION, DB SIZE, IS LEADER, IS LEARNER, \
                RAFT TERM, RAFT INDEX, RAFT APPLIED INDEX, ERRORS; -w table prints those columns; -w json \
                an array of {"endpoint", "header", "version", "db_size", "db_size_in_use", "leader", \
                "is_leader", "is_learner", "raft_term", "raft_index", "raft_applied_index", "errors"}. An \
                endpoint that does not answer is reported on standard error, and the exit status is 1.
                """)

        @OptionGroup var targets: Targets
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let endpoints = try await targets.endpoints(global)
            let (statuses, failures) = try await global.withClient(endpoints: endpoints) { client in
                var statuses: [(String, EndpointStatus)] = []
                var failures = 0
                for (text, endpoint) in zip(endpoints, client.configuration.endpoints) {
                    do {
                        statuses.append((text, try await client.status(of: endpoint)))
                    } catch let error as StatehouseError {
                        printError("Failed to get the status of endpoint \(text) (\(error.message))")
                        failures += 1
                    }
                }
                return (statuses, failures)
            }
            StatusOutput(statuses: statuses).print(as: global.writeOut)
            if failures > 0 { throw CommandFailure("\(failures) of \(endpoints.count) endpoints did not answer") }
        }
    }

    /// `endpoint health`.
    struct Health: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Checks that each endpoint serves a linearizable read.",
            discussion: """
                Prints "<endpoint> is healthy: successfully committed proposal: took = <time>" or \
                "<endpoint> is unhealthy: failed to commit proposal" for each endpoint; -w table: \
                ENDPOINT, HEALTH, TOOK, ERROR; -w json: an array of {"endpoint", "health", "took"}. \
                Exits 1 if any endpoint is unhealthy.
                """)

        @OptionGroup var targets: Targets
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let endpoints = try await targets.endpoints(global)
            let results = await withTaskGroup(of: (Int, Bool, Duration).self) { group in
                for (index, text) in endpoints.enumerated() {
                    group.addTask {
                        let start = ContinuousClock.now
                        let healthy =
                            (try? await global.withClient(endpoints: [text]) { client in
                                await client.isHealthy(client.configuration.endpoints[0])
                            }) ?? false
                        return (index, healthy, ContinuousClock.now - start)
                    }
                }
                var results: [(Int, Bool, Duration)] = []
                for await result in group { results.append(result) }
                return results.sorted { $0.0 < $1.0 }
            }
            let output = HealthOutput(results: results.map { (endpoints[$0.0], $0.1, $0.2) })
            output.print(as: global.writeOut)
            if results.contains(where: { !$0.1 }) { throw CommandFailure("unhealthy cluster") }
        }
    }
}

/// What `endpoint status` prints.
struct StatusOutput: Printable {
    var statuses: [(endpoint: String, status: EndpointStatus)]

    static func cells(_ endpoint: String, _ status: EndpointStatus) -> [String] {
        [
            endpoint, hex(status.header.memberID), status.version, humanBytes(status.dbSize),
            String(status.leader == status.header.memberID), String(status.isLearner), String(status.raftTerm),
            String(status.raftIndex), String(status.raftAppliedIndex), status.errors.joined(separator: ", "),
        ]
    }

    var simpleLines: [String] { statuses.map { Self.cells($0.endpoint, $0.status).joined(separator: ", ") } }

    var json: JSONValue {
        .array(
            statuses.map { endpoint, status in
                .object([
                    ("endpoint", .string(endpoint)), ("header", status.header.json), ("version", .string(status.version)),
                    ("db_size", .int(status.dbSize)), ("db_size_in_use", .int(status.dbSizeInUse)),
                    ("leader", .string(hex(status.leader))), ("is_leader", .bool(status.leader == status.header.memberID)),
                    ("is_learner", .bool(status.isLearner)), ("raft_term", .uint(status.raftTerm)),
                    ("raft_index", .uint(status.raftIndex)), ("raft_applied_index", .uint(status.raftAppliedIndex)),
                    ("errors", .array(status.errors.map(JSONValue.string))),
                ])
            })
    }

    var table: Table? {
        Table(
            header: [
                "ENDPOINT", "ID", "VERSION", "DB SIZE", "IS LEADER", "IS LEARNER", "RAFT TERM", "RAFT INDEX", "RAFT APPLIED INDEX",
                "ERRORS",
            ],
            rows: statuses.map { Self.cells($0.endpoint, $0.status) })
    }
}

/// What `endpoint health` prints.
struct HealthOutput: Printable {
    var results: [(endpoint: String, healthy: Bool, took: Duration)]

    static func milliseconds(_ duration: Duration) -> String {
        let value = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        return String(format: "%.3fms", value)
    }

    var simpleLines: [String] {
        results.map { result in
            result.healthy
                ? "\(result.endpoint) is healthy: successfully committed proposal: took = \(Self.milliseconds(result.took))"
                : "\(result.endpoint) is unhealthy: failed to commit proposal"
        }
    }

    var json: JSONValue {
        .array(
            results.map { result in
                .object([
                    ("endpoint", .string(result.endpoint)), ("health", .bool(result.healthy)),
                    ("took", .string(Self.milliseconds(result.took))),
                ])
            })
    }

    var table: Table? {
        Table(
            header: ["ENDPOINT", "HEALTH", "TOOK", "ERROR"],
            rows: results.map { result in
                [
                    result.endpoint, String(result.healthy), Self.milliseconds(result.took),
                    result.healthy ? "" : "failed to commit proposal",
                ]
            })
    }
}
