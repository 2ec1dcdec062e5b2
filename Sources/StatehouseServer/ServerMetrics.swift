import CoreMetrics
import GRPCStatus
import Prometheus

/// The server's metrics, exported in Prometheus text format on `/metrics`. Names follow etcd's
/// where etcd has the same metric.
public final class ServerMetrics: Sendable {
    /// The registry `/metrics` renders.
    public let registry: PrometheusCollectorRegistry
    let proposalsCommitted: CoreMetrics.Counter
    let proposalsFailed: CoreMetrics.Counter
    let proposalsPending: CoreMetrics.Counter
    let leaderChanges: CoreMetrics.Counter
    let hasLeader: CoreMetrics.Gauge
    let isLeader: CoreMetrics.Gauge
    let databaseSize: CoreMetrics.Gauge
    let watchers: CoreMetrics.Gauge
    let leases: CoreMetrics.Gauge
    let applyDuration: CoreMetrics.Timer
    let fsyncDuration: CoreMetrics.Timer
    let batchDuration: CoreMetrics.Timer
    let tickLateness: CoreMetrics.Timer

    /// Creates the metrics in a registry of their own (so several servers can share a process).
    public init() {
        registry = PrometheusCollectorRegistry()
        let factory = PrometheusMetricsFactory(registry: registry)
        proposalsCommitted = CoreMetrics.Counter(label: "etcd_server_proposals_committed_total", factory: factory)
        proposalsFailed = CoreMetrics.Counter(label: "etcd_server_proposals_failed_total", factory: factory)
        proposalsPending = CoreMetrics.Counter(label: "statehouse_server_proposals_submitted_total", factory: factory)
        leaderChanges = CoreMetrics.Counter(label: "etcd_server_leader_changes_seen_total", factory: factory)
        hasLeader = CoreMetrics.Gauge(label: "etcd_server_has_leader", factory: factory)
        isLeader = CoreMetrics.Gauge(label: "etcd_server_is_leader", factory: factory)
        databaseSize = CoreMetrics.Gauge(label: "etcd_mvcc_db_total_size_in_bytes", factory: factory)
        watchers = CoreMetrics.Gauge(label: "etcd_debugging_mvcc_watcher_total", factory: factory)
        leases = CoreMetrics.Gauge(label: "statehouse_lease_total", factory: factory)
        applyDuration = CoreMetrics.Timer(label: "statehouse_apply_duration_seconds", factory: factory)
        fsyncDuration = CoreMetrics.Timer(label: "etcd_disk_wal_fsync_duration_seconds", factory: factory)
        batchDuration = CoreMetrics.Timer(label: "statehouse_member_batch_duration_seconds", factory: factory)
        tickLateness = CoreMetrics.Timer(label: "statehouse_member_tick_lateness_seconds", factory: factory)
    }

    /// The metrics in Prometheus text format.
    public func render() -> [UInt8] { registry.emitToBuffer() }
}

extension CoreMetrics.Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        recordInterval(ContinuousClock.now - start)
    }

    func recordInterval(_ elapsed: Duration) {
        let (seconds, attoseconds) = elapsed.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
