import ServerConfiguration
import Testing

/// The limit flags: etcd's names and defaults, values checked at start naming the flag.
@Suite("Limit flags")
struct LimitFlagsTests {
    private func limits(_ arguments: [String]) throws -> ClientLimits {
        guard case .run(let configuration) = try ServerConfiguration.parse(arguments: arguments, environment: [:], readFile: { _ in "" })
        else {
            Issue.record("expected a configuration to run")
            return ClientLimits()
        }
        return configuration.limits
    }

    private func refusal(_ arguments: [String]) -> String? {
        do {
            _ = try ServerConfiguration.parse(arguments: arguments, environment: [:], readFile: { _ in "" })
            return nil
        } catch {
            return error.line
        }
    }

    @Test("Defaults are etcd's")
    func defaultsAreEtcds() throws {
        let defaults = try limits([])
        #expect(defaults.maxTxnOps == 128)
        #expect(defaults.maxConcurrentStreams == 4_294_967_295)
        #expect(defaults.keepaliveMinTimeMilliseconds == 5_000)
        #expect(defaults.keepaliveIntervalMilliseconds == 7_200_000)
        #expect(defaults.keepaliveTimeoutMilliseconds == 20_000)
        #expect(defaults.maxConnections == 10_000)
        #expect(defaults.idleTimeoutMilliseconds == 3_600_000)
        #expect(defaults == ClientLimits())
    }

    @Test("Every limit flag is applied")
    func everyLimitIsApplied() throws {
        let set = try limits([
            "--max-txn-ops", "2", "--max-concurrent-streams", "10", "--grpc-keepalive-min-time", "1s", "--grpc-keepalive-interval", "30m",
            "--grpc-keepalive-timeout", "500ms", "--max-connections", "3", "--connection-idle-timeout", "0",
        ])
        #expect(set.maxTxnOps == 2)
        #expect(set.maxConcurrentStreams == 10)
        #expect(set.keepaliveMinTimeMilliseconds == 1_000)
        #expect(set.keepaliveIntervalMilliseconds == 1_800_000)
        #expect(set.keepaliveTimeoutMilliseconds == 500)
        #expect(set.maxConnections == 3)
        #expect(set.idleTimeoutMilliseconds == 0)
        let environment = try ServerConfiguration.parse(
            arguments: [], environment: ["STATEHOUSE_MAX_TXN_OPS": "7"], readFile: { _ in "" })
        guard case .run(let configuration) = environment else { throw LimitTestFailure() }
        #expect(configuration.limits.maxTxnOps == 7)
    }

    @Test("Bad values fail at start, naming the flag")
    func badValuesNameTheFlag() {
        #expect(
            refusal(["--max-txn-ops", "0"])
                == #"statehouse: invalid value "0" for --max-txn-ops: expected a whole number from 1 to 1000000"#)
        #expect(refusal(["--max-concurrent-streams", "4294967296"])?.contains("--max-concurrent-streams") == true)
        #expect(refusal(["--max-connections", "-1"])?.contains("--max-connections") == true)
        #expect(
            refusal(["--grpc-keepalive-interval", "0"])
                == #"statehouse: invalid value "0" for --grpc-keepalive-interval: expected a duration such as 500ms, 20s or 2h, greater than 0"#
        )
        #expect(refusal(["--grpc-keepalive-timeout", "soon"])?.contains("--grpc-keepalive-timeout") == true)
        #expect(refusal(["--grpc-keepalive-min-time", "-5s"])?.contains("--grpc-keepalive-min-time") == true)
        #expect(refusal(["--connection-idle-timeout", "1x"])?.contains("--connection-idle-timeout") == true)
    }

    @Test("--help and --validate-config show the limits")
    func helpAndValidateShowLimits() throws {
        for flag in [
            "--max-txn-ops", "--max-concurrent-streams", "--grpc-keepalive-min-time", "--grpc-keepalive-interval",
            "--grpc-keepalive-timeout", "--max-connections", "--connection-idle-timeout",
        ] {
            #expect(ServerConfiguration.helpText.contains("  \(flag) <"), "\(flag)")
        }
        guard
            case .validated(let configuration) = try ServerConfiguration.parse(
                arguments: ["--validate-config", "--max-txn-ops", "9"], environment: [:], readFile: { _ in "" })
        else { throw LimitTestFailure() }
        #expect(configuration.summary.contains("limits: max-txn-ops 9,"))
    }
}

private struct LimitTestFailure: Error {}
