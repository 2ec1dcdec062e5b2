import GRPCCore
import Primitives
import Testing

@testable import StatehouseClient

@Suite("Endpoints, circuit breaker, backoff, errors")
struct ResilienceTests {
    @Test("Endpoints parse as etcdctl writes them")
    func endpoints() throws {
        #expect(Endpoint("http://127.0.0.1:2379") == Endpoint(host: "127.0.0.1", port: 2379))
        #expect(Endpoint("localhost:22379") == Endpoint(host: "localhost", port: 22379))
        #expect(Endpoint("db.internal") == Endpoint(host: "db.internal", port: 2379))
        #expect(Endpoint("[::1]:2379") == Endpoint(host: "::1", port: 2379))
        #expect(Endpoint("https://127.0.0.1:2379") == Endpoint(host: "127.0.0.1", port: 2379, usesTLS: true))
        #expect(Endpoint("ftp://127.0.0.1:2379") == nil)
        #expect(Endpoint("127.0.0.1:0") == nil)
        #expect(Endpoint("127.0.0.1:port") == nil)
        #expect(Endpoint("") == nil)
        let configuration = try StatehouseClientConfiguration(endpoints: ["127.0.0.1:2379,127.0.0.1:22379", "127.0.0.1:32379"])
        #expect(configuration.endpoints.map(\.port) == [2379, 22379, 32379])
        #expect(throws: StatehouseError.self) { try StatehouseClientConfiguration(endpoints: ["ftp://x"]) }
    }

    @Test("The breaker opens after N failures, probes once after the cooldown, closes on success")
    func circuitBreaker() {
        var breaker = CircuitBreaker(threshold: 3, cooldown: .seconds(2))
        let t0 = ContinuousClock.now
        breaker.recordFailure(now: t0)
        breaker.recordFailure(now: t0)
        var admitted = breaker.admit(now: t0)
        #expect(admitted, "two failures leave it closed")
        breaker.recordFailure(now: t0)
        admitted = breaker.admit(now: t0 + .seconds(1))
        #expect(!admitted, "open: skipped during the cooldown")
        admitted = breaker.admit(now: t0 + .seconds(2))
        #expect(admitted, "half-open: one probe")
        admitted = breaker.admit(now: t0 + .seconds(2))
        #expect(!admitted, "only one probe at a time")
        breaker.recordFailure(now: t0 + .seconds(2))
        admitted = breaker.admit(now: t0 + .seconds(3))
        #expect(!admitted, "a failed probe reopens it")
        admitted = breaker.admit(now: t0 + .seconds(4))
        #expect(admitted)
        breaker.recordSuccess()
        #expect(breaker.state == .closed)
        admitted = breaker.admit(now: t0 + .seconds(4))
        #expect(admitted)
        #expect(breaker.consecutiveFailures == 0)
    }

    @Test("Backoff: full jitter under an exponentially growing, capped ceiling")
    func backoff() {
        let backoff = Backoff(base: .milliseconds(50), maximum: .seconds(1))
        #expect(backoff.ceiling(attempt: 0) == .milliseconds(50))
        #expect(backoff.ceiling(attempt: 3) == .milliseconds(400))
        #expect(backoff.ceiling(attempt: 10) == .seconds(1))
        var generator = SeededGenerator(seed: 7)
        var delays: [Duration] = []
        for attempt in 0..<200 {
            let delay = backoff.delay(attempt: attempt % 6, using: &generator)
            #expect(delay >= .zero && delay <= backoff.ceiling(attempt: attempt % 6))
            delays.append(delay)
        }
        // Full jitter spreads the waits: they are not all at the ceiling.
        #expect(Set(delays).count > 150)
        var again = SeededGenerator(seed: 7)
        #expect(backoff.delay(attempt: 0, using: &again) == delays[0], "the same seed gives the same waits")
    }

    @Test("Server errors map to codes by etcd's exact messages")
    func errorCodes() {
        let cases: [(RPCError.Code, String, StatehouseError.Code)] = [
            (.outOfRange, "etcdserver: mvcc: required revision has been compacted", .compacted),
            (.outOfRange, "etcdserver: mvcc: required revision is a future revision", .futureRevision),
            (.notFound, "etcdserver: requested lease not found", .leaseNotFound),
            (.unavailable, "etcdserver: no leader", .noLeader),
            (.resourceExhausted, "etcdserver: mvcc: database space exceeded", .noSpace),
            (.invalidArgument, "etcdserver: too many operations in txn request", .tooManyOps),
            (.invalidArgument, "etcdserver: request is too large", .requestTooLarge),
            (.resourceExhausted, "grpc: received message larger than max (3 vs. 2)", .requestTooLarge),
            (.permissionDenied, "etcdserver: permission denied", .permissionDenied),
            (.unavailable, "connection refused", .unavailable),
            (.deadlineExceeded, "timed out", .deadlineExceeded),
            (.failedPrecondition, "etcdserver: session expired", .sessionLost),
            (.failedPrecondition, "etcdserver: session request already acknowledged", .sessionLost),
        ]
        for (grpc, message, expected) in cases {
            let error = StatehouseError(RPCError(code: grpc, message: message))
            #expect(error.code == expected, "\(message)")
            #expect(error.message == message)
        }
        #expect(StatehouseError(RPCError(code: .unavailable, message: "connection refused")).isEndpointFailure)
        #expect(!StatehouseError(RPCError(code: .unavailable, message: "etcdserver: leader changed")).isEndpointFailure)
    }

    @Test("Prefix ends and key ranges")
    func keyRanges() {
        #expect(KeyRange.prefix("a/").rangeEnd == Array("a0".utf8))
        #expect(KeyRange.prefix([0x61, 0xFF]).rangeEnd == [0x62])
        #expect(KeyRange.prefix([0xFF]).rangeEnd == [0])
        #expect(KeyRange.prefix("").key == [0])
        #expect(KeyRange.key("k").rangeEnd.isEmpty)
        #expect(KeyRange.from("k").rangeEnd == [0])
    }
}
