import Foundation
import GRPCServer
import GRPCStatus
import PeerTransport
import Prometheus
import Synchronization

/// The server's metrics, exported in Prometheus text format on `/metrics`, with etcd's names,
/// types, labels and buckets where etcd has the same metric (so etcd's dashboards and alert rules
/// read them), and `statehouse_` names for the rest.
public final class ServerMetrics: Sendable {
    /// The registry `/metrics` renders.
    public let registry: PrometheusCollectorRegistry
    let proposalsCommitted: Gauge
    let proposalsApplied: Gauge
    let proposalsPending: Gauge
    let proposalsFailed: Counter
    let leaderChanges: Counter
    let hasLeader: Gauge
    let isLeader: Gauge
    let databaseSize: Gauge
    let databaseSizeInUse: Gauge
    let quotaBackendBytes: Gauge
    let watchers: Gauge
    let leases: Gauge
    let residentValueBytes: Gauge
    let rangesReadOffLoop: Counter
    let watchCatchUpsReadOffLoop: Counter
    let applyDuration: DurationHistogram
    let fsyncDuration: DurationHistogram
    let backendCommitDuration: DurationHistogram
    let batchDuration: DurationHistogram
    let tickLateness: DurationHistogram
    private let startTime = Date().timeIntervalSince1970

    /// etcd's disk latency buckets: 1 ms doubling to 8.192 s (`prometheus.ExponentialBuckets(0.001, 2, 14)`).
    static let diskBuckets: [Duration] = (0..<14).map { .microseconds(1_000 << $0) }

    private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    private static func gauge(_ registry: PrometheusCollectorRegistry, _ name: String, _ help: String) -> Gauge {
        registry.makeGauge(descriptor: descriptor(name, help))
    }

    private static func counter(_ registry: PrometheusCollectorRegistry, _ name: String, _ help: String) -> Counter {
        registry.makeCounter(descriptor: descriptor(name, help))
    }

    private static func histogram(_ registry: PrometheusCollectorRegistry, _ name: String, _ help: String) -> DurationHistogram {
        registry.makeDurationHistogram(descriptor: descriptor(name, help), buckets: diskBuckets)
    }

    /// Creates the metrics in a registry of their own (so several servers can share a process).
    public init() {
        registry = PrometheusCollectorRegistry()
        proposalsCommitted = Self.gauge(registry, "etcd_server_proposals_committed_total", "The index of the last committed entry.")
        proposalsApplied = Self.gauge(registry, "etcd_server_proposals_applied_total", "The index of the last applied entry.")
        proposalsPending = Self.gauge(registry, "etcd_server_proposals_pending", "Writes proposed here and not yet answered.")
        proposalsFailed = Self.counter(registry, "etcd_server_proposals_failed_total", "Requests that failed.")
        leaderChanges = Self.counter(registry, "etcd_server_leader_changes_seen_total", "Leader changes seen.")
        hasLeader = Self.gauge(registry, "etcd_server_has_leader", "1 if a leader is known, else 0.")
        isLeader = Self.gauge(registry, "etcd_server_is_leader", "1 if this member leads, else 0.")
        databaseSize = Self.gauge(registry, "etcd_mvcc_db_total_size_in_bytes", "The database size in bytes.")
        databaseSizeInUse = Self.gauge(
            registry, "etcd_mvcc_db_total_size_in_use_in_bytes", "The database size in use in bytes (RocksDB's live estimate).")
        quotaBackendBytes = Self.gauge(registry, "etcd_server_quota_backend_bytes", "The backend quota in bytes.")
        watchers = Self.gauge(registry, "etcd_debugging_mvcc_watcher_total", "Open watchers.")
        leases = Self.gauge(registry, "statehouse_leases", "Leases granted and not yet revoked.")
        residentValueBytes = Self.gauge(
            registry, "statehouse_mvcc_resident_value_bytes",
            "Bytes of key values held in memory after the last batch was written (values are read from the backend).")
        rangesReadOffLoop = Self.counter(
            registry, "statehouse_mvcc_ranges_read_off_loop_total",
            "Range reads and read-only transactions whose values were read from RocksDB on the read pool rather than the member loop.")
        watchCatchUpsReadOffLoop = Self.counter(
            registry, "statehouse_mvcc_watch_catch_up_reads_off_loop_total",
            "Watch catch-up windows whose values were read from RocksDB on the read pool rather than the member loop.")
        applyDuration = Self.histogram(registry, "statehouse_apply_duration_seconds", "Time to apply a batch.")
        fsyncDuration = Self.histogram(
            registry, "etcd_disk_wal_fsync_duration_seconds", "Time to make a batch's log entries and hard state durable.")
        backendCommitDuration = Self.histogram(
            registry, "etcd_disk_backend_commit_duration_seconds", "Time to write a batch's state-machine changes.")
        batchDuration = Self.histogram(registry, "statehouse_member_batch_duration_seconds", "Time to run a batch.")
        tickLateness = Self.histogram(registry, "statehouse_member_tick_lateness_seconds", "How late ticks ran.")
    }

    private let refusedFrames = Mutex<[PeerRefusal: Counter]>([:])

    /// The counter of peer frames refused for `reason`.
    func peerFramesRefused(_ reason: PeerRefusal) -> Counter {
        refusedFrames.withLock { counters in
            if let counter = counters[reason] { return counter }
            let counter = registry.makeCounter(
                descriptor: Self.descriptor(
                    "statehouse_peer_frames_refused_total",
                    "Frames from peers refused: a sender that is not a member, a sender unlike the connection's, a snapshot that does not install."
                ), labels: [("reason", reason.rawValue)])
            counters[reason] = counter
            return counter
        }
    }

    /// Where ``render()`` reads the peer transport's counters from (set once the transport exists).
    let peerStatistics = Mutex<(@Sendable () -> PeerTransport.Statistics)?>(nil)

    /// The metrics in Prometheus text format, with the peer network's and the process's own
    /// (`etcd_network_peer_*`, `process_*`) at the end.
    public func render() -> [UInt8] {
        registry.emitToBuffer() + Array((peerMetrics() + processMetrics()).utf8)
    }

    /// etcd's peer network counters, by peer (labels `To` and `From`, the peer's ID in hex).
    func peerMetrics() -> String {
        guard let statistics = peerStatistics.withLock({ $0 })?() else { return "" }
        var lines: [String] = []
        func family(_ name: String, _ help: String, _ label: String, _ values: [UInt64: Int]) {
            lines += ["# HELP \(name) \(help)", "# TYPE \(name) counter"]
            for (peer, value) in values.sorted(by: { $0.key < $1.key }) {
                lines.append("\(name){\(label)=\"\(String(peer, radix: 16))\"} \(value)")
            }
        }
        family(
            "etcd_network_peer_sent_bytes_total", "Bytes sent to peers.", "To", statistics.peers.mapValues(\.sentBytes))
        family("etcd_network_peer_received_bytes_total", "Bytes received from peers.", "From", statistics.receivedBytes)
        family(
            "etcd_network_peer_sent_failures_total", "Messages to peers that could not be sent (dropped).", "To",
            statistics.peers.mapValues(\.droppedFrames))
        lines += roundTripLines(statistics.peers)
        lines += [
            "# HELP statehouse_network_peer_protocol_version The peer protocol version spoken with each peer (0: not connected, or no version in common).",
            "# TYPE statehouse_network_peer_protocol_version gauge",
        ]
        for (peer, counters) in statistics.peers.sorted(by: { $0.key < $1.key }) {
            lines.append("statehouse_network_peer_protocol_version{To=\"\(String(peer, radix: 16))\"} \(counters.protocolVersion)")
        }
        lines += [
            "# HELP statehouse_peer_connections_rejected_total Peer connections closed for a bad hello (another cluster, an unknown sender) or an oversized frame.",
            "# TYPE statehouse_peer_connections_rejected_total counter",
            "statehouse_peer_connections_rejected_total \(statistics.rejectedConnections)",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// etcd's `etcd_network_peer_round_trip_time_seconds` histogram, by peer (label `To`), for the
    /// peers with at least one round trip measured.
    func roundTripLines(_ peers: [UInt64: PeerTransport.Statistics.Peer]) -> [String] {
        let name = "etcd_network_peer_round_trip_time_seconds"
        var lines = ["# HELP \(name) Round-Trip-Time histogram between peers.", "# TYPE \(name) histogram"]
        for (peer, counters) in peers.sorted(by: { $0.key < $1.key }) where counters.roundTrips.count > 0 {
            let label = "To=\"\(String(peer, radix: 16))\""
            let histogram = counters.roundTrips
            let bounds = RoundTripHistogram.upperBounds.map { "\($0)" } + ["+Inf"]
            for (bound, count) in zip(bounds, histogram.cumulativeCounts) {
                lines.append("\(name)_bucket{\(label),le=\"\(bound)\"} \(count)")
            }
            lines += ["\(name)_sum{\(label)} \(histogram.sum)", "\(name)_count{\(label)} \(histogram.count)"]
        }
        return lines
    }

    /// `process_*` metrics as Prometheus' Go client writes them, read from `/proc/self`.
    func processMetrics() -> String {
        var lines: [String] = []
        func add(_ name: String, _ type: String, _ help: String, _ value: Double) {
            lines += ["# HELP \(name) \(help)", "# TYPE \(name) \(type)", "\(name) \(value)"]
        }
        let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        {
            // Fields after the command name: state is field 3, utime 14, stime 15, vsize 23, rss 24.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 21, let user = Double(fields[11]), let system = Double(fields[12]), let virtual = Double(fields[20]),
                let resident = Double(fields[21])
            {
                add(
                    "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
                    (user + system) / ticksPerSecond)
                add("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", virtual)
                add(
                    "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                    resident * Double(sysconf(Int32(_SC_PAGESIZE))))
            }
        }
        if let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            add("process_open_fds", "gauge", "Number of open file descriptors.", Double(descriptors.count))
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            add("process_max_fds", "gauge", "Maximum number of open file descriptors.", Double(limit.rlim_cur))
        }
        add("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", startTime)
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: - gRPC calls

    /// `grpc_server_started_total` and `grpc_server_handled_total` by method, as etcd's gRPC
    /// interceptors (go-grpc-prometheus) count them.
    private let callCounters = Mutex<[String: Counter]>([:])

    /// The gRPC kind of each streaming method; the others are unary.
    static let streamingKinds: [String: String] = [
        "etcdserverpb.Watch/Watch": "bidi_stream", "etcdserverpb.Lease/LeaseKeepAlive": "bidi_stream",
        "etcdserverpb.Maintenance/Snapshot": "server_stream", "v3electionpb.Election/Observe": "server_stream",
    ]

    /// go-grpc-prometheus' names of the status codes (Go's `codes.Code.String()`).
    static func codeName(_ code: StatusCode) -> String {
        switch code {
        case .ok: "OK"
        case .cancelled: "Canceled"
        case .unknown: "Unknown"
        case .invalidArgument: "InvalidArgument"
        case .deadlineExceeded: "DeadlineExceeded"
        case .notFound: "NotFound"
        case .alreadyExists: "AlreadyExists"
        case .permissionDenied: "PermissionDenied"
        case .resourceExhausted: "ResourceExhausted"
        case .failedPrecondition: "FailedPrecondition"
        case .aborted: "Aborted"
        case .outOfRange: "OutOfRange"
        case .unimplemented: "Unimplemented"
        case .internal: "Internal"
        case .unavailable: "Unavailable"
        case .dataLoss: "DataLoss"
        case .unauthenticated: "Unauthenticated"
        }
    }

    private func callCounter(_ name: String, service: String, method: String, code: String?) -> Counter {
        var labels = [
            ("grpc_type", Self.streamingKinds["\(service)/\(method)"] ?? "unary"), ("grpc_service", service),
            ("grpc_method", method),
        ]
        if let code { labels.append(("grpc_code", code)) }
        let key = ([name] + labels.map(\.1)).joined(separator: "\u{1}")
        return callCounters.withLock { counters in
            if let counter = counters[key] { return counter }
            let help = code == nil ? "Calls started, by method." : "Calls finished, by method and status code."
            let counter = registry.makeCounter(descriptor: Self.descriptor(name, help), labels: labels)
            counters[key] = counter
            return counter
        }
    }
}

extension ServerMetrics: CallObserver {
    public func callStarted(service: String, method: String) {
        callCounter("grpc_server_started_total", service: service, method: method, code: nil).increment()
    }

    public func callFinished(service: String, method: String, status: StatusCode) {
        callCounter("grpc_server_handled_total", service: service, method: method, code: Self.codeName(status)).increment()
    }
}

extension DurationHistogram {
    func recordInterval(since start: ContinuousClock.Instant) {
        record(ContinuousClock.now - start)
    }

    func recordInterval(_ elapsed: Duration) {
        record(elapsed)
    }
}
