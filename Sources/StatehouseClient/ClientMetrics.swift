import Metrics

/// The client's metrics (swift-metrics): calls, failures, retries and call latency per method.
struct ClientMetrics: Sendable {
    let factory: any MetricsFactory
    let retries: Counter
    let endpointFailures: Counter

    init(factory: any MetricsFactory) {
        self.factory = factory
        retries = Counter(label: "statehouse_client_retries_total", factory: factory)
        endpointFailures = Counter(label: "statehouse_client_endpoint_failures_total", factory: factory)
    }

    func recordCall(_ method: String, duration: Duration, failed: Bool) {
        Counter(label: "statehouse_client_calls_total", dimensions: [("method", method)], factory: factory).increment()
        if failed {
            Counter(label: "statehouse_client_call_failures_total", dimensions: [("method", method)], factory: factory)
                .increment()
        }
        Timer(label: "statehouse_client_call_duration_seconds", dimensions: [("method", method)], factory: factory)
            .record(duration: duration)
    }
}
