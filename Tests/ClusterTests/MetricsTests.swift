import Foundation
import TestSupport
import Testing

extension LocalClusterTests {
    /// What `/metrics` exports, for etcd's dashboards and alert rules.
    @Suite("Metrics")
    struct MetricsTests {
        /// The metrics etcd's dashboards and alert rules read exist with etcd's names, types,
        /// labels and buckets, and `promtool check metrics` parses the page.
        @Test("/metrics has etcd's metrics, gRPC call counters and process metrics")
        func etcdMetrics() async throws {
            try await withCluster { cluster in
                let leader = try await cluster.waitForLeader()
                let client = try await cluster.client(leader)
                _ = try await client.put("metrics/key", "v")
                _ = try await client.get("metrics/key")
                await #expect(throws: GRPCCallError.self) { try await client.get("metrics/key", revision: 1_000_000) }
                try await Task.sleep(for: .milliseconds(1_200))  // the sizes are refreshed every ten ticks
                // Round trips to each peer are probed as its connection opens, then every 4 s.
                let followers = cluster.others(than: leader)
                let (status, text) = try await eventually("/metrics to show a round trip to every follower") {
                    let (status, text) = try await LocalCluster.httpGet(port: leader.clientPort, path: "/metrics")
                    let probed = followers.allSatisfy { follower in
                        let count = #"etcd_network_peer_round_trip_time_seconds_count{To=""# + follower.hexID + #""}"#
                        return (metricValue(count, in: text) ?? 0) >= 1
                    }
                    return probed ? (status, text) : nil
                }
                #expect(status == 200)
                let types: [(String, String)] = [
                    ("etcd_server_has_leader", "gauge"), ("etcd_server_is_leader", "gauge"),
                    ("etcd_server_leader_changes_seen_total", "counter"), ("etcd_server_proposals_committed_total", "gauge"),
                    ("etcd_server_proposals_applied_total", "gauge"), ("etcd_server_proposals_pending", "gauge"),
                    ("etcd_server_proposals_failed_total", "counter"), ("etcd_mvcc_db_total_size_in_bytes", "gauge"),
                    ("etcd_mvcc_db_total_size_in_use_in_bytes", "gauge"), ("etcd_server_quota_backend_bytes", "gauge"),
                    ("etcd_disk_wal_fsync_duration_seconds", "histogram"), ("etcd_disk_backend_commit_duration_seconds", "histogram"),
                    ("grpc_server_started_total", "counter"), ("grpc_server_handled_total", "counter"),
                    ("process_resident_memory_bytes", "gauge"), ("process_cpu_seconds_total", "counter"),
                    ("process_open_fds", "gauge"), ("process_start_time_seconds", "gauge"),
                    ("etcd_network_peer_sent_bytes_total", "counter"), ("etcd_network_peer_received_bytes_total", "counter"),
                    ("etcd_network_peer_sent_failures_total", "counter"),
                    ("etcd_network_peer_round_trip_time_seconds", "histogram"), ("statehouse_network_peer_protocol_version", "gauge"),
                ]
                for (name, type) in types {
                    #expect(text.contains("# TYPE \(name) \(type)\n"), "\(name) is not a \(type)")
                }
                #expect((metricValue("etcd_server_proposals_applied_total", in: text) ?? 0) >= 2)
                #expect(metricValue("etcd_server_quota_backend_bytes", in: text) == Double(2 << 30))
                #expect((metricValue("process_resident_memory_bytes", in: text) ?? 0) > 1_000_000)
                // etcd's disk buckets: 1 ms doubling to 8.192 s.
                #expect(text.contains(#"etcd_disk_wal_fsync_duration_seconds_bucket{le="0.001"}"#))
                #expect(text.contains(#"etcd_disk_wal_fsync_duration_seconds_bucket{le="8.192"}"#))
                // etcd's round-trip buckets: 0.1 ms doubling to 3.2768 s, by peer (label To); this
                // build and its peers speak protocol version 4.
                for follower in followers {
                    let to = #"To=""# + follower.hexID + #"""#
                    #expect(text.contains("etcd_network_peer_round_trip_time_seconds_bucket{\(to),le=\"0.0001\"}"))
                    #expect(text.contains("etcd_network_peer_round_trip_time_seconds_bucket{\(to),le=\"3.2768\"}"))
                    #expect(metricValue("statehouse_network_peer_protocol_version{\(to)}", in: text) == 4)
                }
                let put = #"grpc_server_handled_total{grpc_type="unary",grpc_service="etcdserverpb.KV",grpc_method="Put",grpc_code="OK"}"#
                #expect(text.contains(put), "no OK Put counted")
                let range =
                    #"grpc_server_handled_total{grpc_type="unary",grpc_service="etcdserverpb.KV",grpc_method="Range",grpc_code="OutOfRange"}"#
                #expect(text.contains(range), "no OutOfRange Range counted")
                #expect(text.contains(#"grpc_server_started_total{grpc_type="unary",grpc_service="etcdserverpb.KV",grpc_method="Put"}"#))
                // The leader has sent its followers appends and heard their answers.
                for follower in cluster.others(than: leader) {
                    let to = #"etcd_network_peer_sent_bytes_total{To=""# + String(follower.id, radix: 16) + #""} "#
                    let from = #"etcd_network_peer_received_bytes_total{From=""# + String(follower.id, radix: 16) + #""} "#
                    for prefix in [to, from] {
                        let value = text.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap {
                            Double($0.dropFirst(prefix.count))
                        }
                        #expect((value ?? 0) > 0, "\(prefix)")
                    }
                }

                let promtool = "/usr/bin/promtool"
                guard FileManager.default.isExecutableFile(atPath: promtool) else {
                    print("==== promtool is not installed (Debian's prometheus package): the format check is skipped")
                    return
                }
                let page = cluster.root + "/metrics.txt"
                try text.write(toFile: page, atomically: true, encoding: .utf8)
                let check = try ChildProcess(
                    executable: "/bin/sh", arguments: ["-c", "\(promtool) check metrics < \(page)"],
                    outputPath: cluster.root + "/promtool.out")
                let result = try await check.waitForExit(timeout: .seconds(30))
                // promtool also lints names: the only remarks allowed are on etcd's own gauges whose
                // names end in _total (kept for etcd's dashboards).
                let etcdNames: Set = [
                    "etcd_debugging_mvcc_watcher_total", "etcd_server_proposals_applied_total", "etcd_server_proposals_committed_total",
                ]
                let remarks = check.output.split(separator: "\n").map(String.init)
                let unexpected = remarks.filter { line in
                    !etcdNames.contains { line == "\($0) non-counter metrics should not have \"_total\" suffix" }
                }
                #expect(unexpected.isEmpty, "promtool check metrics (\(result)): \(check.output)")
            }
        }
    }
}

extension LocalClusterTests.MetricsTests {
    /// `--listen-metrics-urls` serves the HTTP endpoints on a port of their own, and
    /// `--log-format json` writes every log line as a JSON object.
    @Test("--listen-metrics-urls serves /metrics apart from the client API; --log-format json writes JSON lines")
    func metricsListenerAndJSONLogs() async throws {
        let port = try freePorts(count: 1)[0]
        try await withCluster(size: 1, arguments: ["--listen-metrics-urls=http://127.0.0.1:\(port)", "--log-format=json"]) { cluster in
            _ = try await cluster.waitForLeader()
            let (status, text) = try await LocalCluster.httpGet(port: port, path: "/metrics")
            #expect(status == 200)
            #expect(metricValue("etcd_server_has_leader", in: text) == 1)
            let (healthStatus, _) = try await LocalCluster.httpGet(port: port, path: "/health")
            #expect(healthStatus == 200)
            let member = cluster.members[0]
            let lines = ChildProcess.read(member.logPath).split(separator: "\n").filter { !$0.hasPrefix("====") }
            #expect(!lines.isEmpty)
            for line in lines {
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(object?["level"] is String && object?["msg"] is String && object?["ts"] is String, "not a JSON log line: \(line)")
            }
            #expect(lines.contains { $0.contains(#""msg":"serving metrics""#) })
        }
    }
}

/// The monitoring files: alert rules that load and fire as their unit tests expect.
@Suite("Monitoring files")
struct MonitoringFileTests {
    @Test("the alert rules pass promtool check rules and promtool test rules")
    func alertRules() async throws {
        let promtool = "/usr/bin/promtool"
        guard FileManager.default.isExecutableFile(atPath: promtool) else {
            try skipTest("promtool is not installed (Debian's prometheus package provides it)")
        }
        let folder = DeployFileTests.root.appendingPathComponent("deploy/monitoring").path
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("statehouse-promtool-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (index, arguments) in [["check", "rules", "statehouse-alerts.yaml"], ["test", "rules", "statehouse-alerts.test.yaml"]]
            .enumerated()
        {
            let process = try ChildProcess(
                executable: "/bin/sh", arguments: ["-c", "cd '\(folder)' && \(promtool) \(arguments.joined(separator: " "))"],
                outputPath: directory + "/\(index).out")
            let status = try await process.waitForExit(timeout: .seconds(60))
            #expect(status == .exited(0), "promtool \(arguments.joined(separator: " ")): \(process.output)")
            #expect(process.output.contains("SUCCESS"), "\(process.output)")
        }
        let dashboard = try DeployFileTests.text("deploy/monitoring/statehouse-dashboard.json")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(dashboard.utf8)) as? [String: Any])
        let panels = try #require(parsed["panels"] as? [[String: Any]])
        #expect(panels.count >= 6)
        let alerts = try DeployFileTests.text("deploy/monitoring/statehouse-alerts.yaml")
        // Every metric a panel or rule reads is one the server exports (checked against MetricsTests' list).
        for name in [
            "etcd_server_has_leader", "etcd_disk_wal_fsync_duration_seconds_bucket", "grpc_server_handled_total",
            "etcd_network_peer_round_trip_time_seconds_bucket",
        ] {
            #expect(alerts.contains(name) || dashboard.contains(name))
        }
    }
}
