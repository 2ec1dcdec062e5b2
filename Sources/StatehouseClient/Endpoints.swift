import Foundation
import Primitives

/// One server the client may call: `host:port`, parsed from `http://host:port`,
/// `https://host:port`, `host:port` or `host` (port 2379).
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    /// The host name or IP address.
    public var host: String
    /// The client port.
    public var port: Int
    /// Whether the endpoint was written `https://`: the client speaks TLS to it, with
    /// ``StatehouseClientConfiguration/tls`` (the system's authorities when that is nil).
    public var usesTLS: Bool

    /// An endpoint at `host:port`, over TLS if `usesTLS`.
    public init(host: String, port: Int, usesTLS: Bool = false) {
        self.host = host
        self.port = port
        self.usesTLS = usesTLS
    }

    /// Parses `http://host:port`, `https://host:port`, `host:port` or `host`; nil when the text
    /// is not an endpoint.
    public init?(_ text: String) {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let address = try? NetworkAddress(parsing: rest, defaultPort: 2379), ["http", "https"].contains(address.scheme ?? "http")
        else {
            return nil
        }
        host = address.host
        port = address.port
        usesTLS = address.scheme == "https"
    }

    public var description: String { NetworkAddress(host: host, port: port).description }
}

/// A circuit breaker for one endpoint: closed while calls succeed; open (skipped) after
/// `threshold` consecutive failures; after `cooldown` it lets one probe call through
/// (half-open) and closes again if the probe succeeds, or opens for another cooldown if not.
///
/// Time is passed in (`now`), so the breaker is deterministic and tested without clocks.
struct CircuitBreaker: Sendable, Equatable {
    enum State: Sendable, Equatable {
        case closed
        case open(until: ContinuousClock.Instant)
        case halfOpen
    }

    private(set) var state: State = .closed
    private(set) var consecutiveFailures = 0
    let threshold: Int
    let cooldown: Duration

    init(threshold: Int, cooldown: Duration) {
        precondition(threshold >= 1, "a circuit breaker opens after at least one failure")
        self.threshold = threshold
        self.cooldown = cooldown
    }

    /// Whether a call may go to this endpoint now; an open breaker whose cooldown is over turns
    /// half-open and admits this one call as its probe.
    mutating func admit(now: ContinuousClock.Instant) -> Bool {
        switch state {
        case .closed:
            return true
        case .open(let until):
            guard now >= until else { return false }
            state = .halfOpen
            return true
        case .halfOpen:
            // One probe at a time.
            return false
        }
    }

    /// Whether a call could be admitted now (without turning the breaker half-open).
    func isAvailable(now: ContinuousClock.Instant) -> Bool {
        switch state {
        case .closed: true
        case .open(let until): now >= until
        case .halfOpen: false
        }
    }

    mutating func recordSuccess() {
        consecutiveFailures = 0
        state = .closed
    }

    mutating func recordFailure(now: ContinuousClock.Instant) {
        consecutiveFailures += 1
        if state == .halfOpen || consecutiveFailures >= threshold {
            state = .open(until: now + cooldown)
        }
    }

    /// A call admitted as the half-open probe ended without telling anything about the endpoint
    /// (the caller cancelled it): let the next call probe.
    mutating func recordInconclusive(now: ContinuousClock.Instant) {
        if state == .halfOpen { state = .open(until: now) }
    }
}

/// Exponential backoff with full jitter: attempt `n` (from 0) waits a uniformly random time in
/// `[0, min(maximum, base × 2ⁿ)]`.
struct Backoff: Sendable {
    var base: Duration
    var maximum: Duration

    /// The ceiling of the wait before retry number `attempt` (0-based).
    func ceiling(attempt: Int) -> Duration {
        let factor = 1 << min(attempt, 30)
        let raw = base * factor
        return raw > maximum ? maximum : raw
    }

    /// The wait before retry number `attempt`, drawn with `generator`.
    func delay(attempt: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let ceiling = ceiling(attempt: attempt)
        let nanoseconds = ceiling.components.seconds * 1_000_000_000 + ceiling.components.attoseconds / 1_000_000_000
        guard nanoseconds > 0 else { return .zero }
        return .nanoseconds(Int64.random(in: 0...nanoseconds, using: &generator))
    }
}
