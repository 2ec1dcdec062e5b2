extension PeerTransport {
    /// The versions of the peer protocol this build speaks (what each adds is described at
    /// `PeerHello`). Two members talk at the highest version both speak and refuse each other's
    /// connections when their ranges do not overlap, so a build and the next one run together
    /// in a rolling upgrade as long as their ranges share a version.
    public static var supportedProtocolVersions: ClosedRange<UInt8> { PeerHello.supportedVersions }

    /// The environment variable through which **tests only** make a member speak another range of
    /// peer protocol versions than its build's, standing for an older or newer build in upgrade
    /// tests. It is not an option: it is read only by
    /// ``protocolVersions(testingEnvironment:)``, and its name lacks the `STATEHOUSE_` prefix of
    /// the options on purpose.
    public static let protocolVersionsTestingVariable = "TESTING_STATEHOUSE_PEER_PROTOCOL_VERSIONS"

    /// The range of versions ``protocolVersionsTestingVariable`` sets in `environment` (`2`, or
    /// `1...2`, versions 1 to 255), or nil when it is unset or empty.
    /// - Throws: ``PeerTransportError/invalidProtocolVersions(_:)`` when it holds anything else.
    public static func protocolVersions(testingEnvironment environment: [String: String]) throws -> ClosedRange<UInt8>? {
        guard let text = environment[protocolVersionsTestingVariable], !text.isEmpty else { return nil }
        let bounds = text.split(separator: "...", omittingEmptySubsequences: false).map { UInt8($0) }
        guard (1...2).contains(bounds.count), let lowest = bounds.first ?? nil, let highest = bounds.last ?? nil, lowest >= 1,
            lowest <= highest
        else {
            throw PeerTransportError.invalidProtocolVersions(text)
        }
        return lowest...highest
    }
}

/// The round trips measured to one peer, in the buckets of etcd's
/// `etcd_network_peer_round_trip_time_seconds` (0.1 ms doubling to 3.2768 s).
public struct RoundTripHistogram: Sendable, Equatable {
    /// The buckets' upper bounds in seconds: `prometheus.ExponentialBuckets(0.0001, 2, 16)`.
    public static let upperBounds: [Double] = (0..<16).map { 0.0001 * Double(1 << $0) }

    /// The round trips at most each upper bound and above the previous one; the last element
    /// counts those above every bound.
    public private(set) var bucketCounts = [Int](repeating: 0, count: upperBounds.count + 1)
    /// The sum of every round trip, in seconds.
    public private(set) var sum = 0.0
    /// How many round trips were measured.
    public private(set) var count = 0

    /// An empty histogram.
    public init() {}

    /// Adds a round trip of `seconds`.
    public mutating func record(_ seconds: Double) {
        let bucket = Self.upperBounds.firstIndex { seconds <= $0 } ?? Self.upperBounds.count
        bucketCounts[bucket] += 1
        sum += seconds
        count += 1
    }

    /// The round trips at most each upper bound (Prometheus' cumulative `le` buckets), then all of them.
    public var cumulativeCounts: [Int] {
        var total = 0
        return bucketCounts.map { count in
            total += count
            return total
        }
    }
}
