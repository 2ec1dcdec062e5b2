/// The limits a member puts on its clients: etcd's flags of the same names, and two of
/// Statehouse's own (`--max-connections`, `--connection-idle-timeout`).
public struct ClientLimits: Sendable, Hashable {
    /// The most operations in one transaction level (`--max-txn-ops`); more is refused with
    /// "etcdserver: too many operations in txn request".
    public var maxTxnOps = 128
    /// The most concurrent streams on one client connection (`--max-concurrent-streams`,
    /// HTTP/2's SETTINGS_MAX_CONCURRENT_STREAMS); 2³² − 1, etcd's default, means no limit.
    public var maxConcurrentStreams = Int(UInt32.max)
    /// The shortest interval between a client's keepalive pings, in milliseconds
    /// (`--grpc-keepalive-min-time`).
    public var keepaliveMinTimeMilliseconds: Int64 = 5_000
    /// How long a client connection may stay silent before the member pings it, in milliseconds
    /// (`--grpc-keepalive-interval`).
    public var keepaliveIntervalMilliseconds: Int64 = 7_200_000
    /// How long the member waits for a ping's answer before closing the connection, in
    /// milliseconds (`--grpc-keepalive-timeout`).
    public var keepaliveTimeoutMilliseconds: Int64 = 20_000
    /// The most client connections open at once on each client listener (`--max-connections`).
    public var maxConnections = 10_000
    /// How long a client connection may stay without a call before it is closed, in
    /// milliseconds; 0 never closes it (`--connection-idle-timeout`).
    public var idleTimeoutMilliseconds: Int64 = 3_600_000

    /// The defaults, etcd's where etcd has the flag.
    public init() {}
}

extension Option {
    /// The limit options, in `--help` order.
    static let limits: [Option] = [
        .maxTxnOps, .maxConcurrentStreams, .grpcKeepaliveMinTime, .grpcKeepaliveInterval, .grpcKeepaliveTimeout, .maxConnections,
        .connectionIdleTimeout,
    ]

    /// The default value of a limit option.
    var limitDefaultValue: String {
        switch self {
        case .maxTxnOps: return "128"
        case .maxConcurrentStreams: return "4294967295"
        case .grpcKeepaliveMinTime: return "5s"
        case .grpcKeepaliveInterval: return "2h"
        case .grpcKeepaliveTimeout: return "20s"
        case .maxConnections: return "10000"
        default: return "1h"
        }
    }

    /// The placeholder for a limit option's value in `--help`.
    var limitValueName: String {
        switch self {
        case .maxTxnOps: return "count"
        case .maxConcurrentStreams, .maxConnections: return "count"
        default: return "duration"
        }
    }

    /// What a limit option means, one `--help` line per element.
    var limitSummary: [String] {
        switch self {
        case .maxTxnOps:
            return ["Most operations in one transaction (1 to 1000000), as etcd's."]
        case .maxConcurrentStreams:
            return [
                "Most concurrent gRPC streams on one client connection (1 to 4294967295), as etcd's;",
                "the default means no limit.",
            ]
        case .grpcKeepaliveMinTime:
            return [
                "Shortest interval between a client's keepalive pings, as etcd's: a client pinging",
                "more often, with no response in between, gets GOAWAY ENHANCE_YOUR_CALM \"too_many_pings\".",
            ]
        case .grpcKeepaliveInterval:
            return ["How long a client connection may stay silent before the member pings it, as etcd's."]
        case .grpcKeepaliveTimeout:
            return ["How long the member waits for the answer to its ping before closing the connection,", "as etcd's."]
        case .maxConnections:
            return [
                "Statehouse's own: most client connections open at once on each client listener",
                "(1 to 1000000); a connection over it is closed at once.",
            ]
        default:
            return [
                "Statehouse's own: how long a client connection may stay without a call (or, new,",
                "without a first request) before it is closed; 0 keeps it open.",
            ]
        }
    }
}

extension ServerConfiguration {
    /// The limits the settings describe, each checked.
    static func resolveLimits(_ setting: (Option) -> Setting) throws(ConfigurationError) -> ClientLimits {
        var limits = ClientLimits()
        limits.maxTxnOps = try count(setting(.maxTxnOps), .maxTxnOps, upTo: 1_000_000)
        limits.maxConcurrentStreams = try count(setting(.maxConcurrentStreams), .maxConcurrentStreams, upTo: Int(UInt32.max))
        limits.keepaliveMinTimeMilliseconds = try duration(setting(.grpcKeepaliveMinTime), .grpcKeepaliveMinTime, allowingZero: true)
        limits.keepaliveIntervalMilliseconds = try duration(setting(.grpcKeepaliveInterval), .grpcKeepaliveInterval, allowingZero: false)
        limits.keepaliveTimeoutMilliseconds = try duration(setting(.grpcKeepaliveTimeout), .grpcKeepaliveTimeout, allowingZero: false)
        limits.maxConnections = try count(setting(.maxConnections), .maxConnections, upTo: 1_000_000)
        limits.idleTimeoutMilliseconds = try duration(setting(.connectionIdleTimeout), .connectionIdleTimeout, allowingZero: true)
        return limits
    }

    private static func count(_ setting: Setting, _ option: Option, upTo maximum: Int) throws(ConfigurationError) -> Int {
        guard let value = wholeNumber(setting.text, as: Int.self), (1...maximum).contains(value) else {
            throw setting.error(option, expected: "a whole number from 1 to \(maximum)")
        }
        return value
    }

    private static func duration(_ setting: Setting, _ option: Option, allowingZero: Bool) throws(ConfigurationError) -> Int64 {
        guard let milliseconds = goDurationMilliseconds(setting.text), allowingZero || milliseconds > 0 else {
            throw setting.error(
                option, expected: "a duration such as 500ms, 20s or 2h" + (allowingZero ? " (0 turns it off)" : ", greater than 0"))
        }
        return milliseconds
    }

    /// What `--validate-config` prints about the limits.
    var limitsSummary: String {
        func duration(_ milliseconds: Int64) -> String { milliseconds == 0 ? "off" : "\(milliseconds) ms" }
        return "limits: max-txn-ops \(limits.maxTxnOps), max-concurrent-streams \(limits.maxConcurrentStreams),"
            + " max-connections \(limits.maxConnections), connection-idle-timeout \(duration(limits.idleTimeoutMilliseconds)),"
            + " grpc-keepalive min-time \(duration(limits.keepaliveMinTimeMilliseconds)),"
            + " interval \(duration(limits.keepaliveIntervalMilliseconds)), timeout \(duration(limits.keepaliveTimeoutMilliseconds))"
    }
}
