import ArgumentParser
import StatehouseClient

/// `lease`: grants, revokes, renews and inspects leases.
struct LeaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lease",
        abstract: "Grants, revokes, renews and inspects leases.",
        discussion: "Lease IDs are printed and taken in hexadecimal, as etcdctl does.",
        subcommands: [Grant.self, Revoke.self, TimeToLive.self, List.self, KeepAlive.self])

    /// `lease grant`.
    struct Grant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Grants a lease.",
            discussion: "Prints \"lease <ID> granted with TTL(<TTL>s)\"; with -w json {\"header\", \"id\", \"ttl\"}.")

        @Argument(help: "The lease's time to live, in seconds.")
        var ttl: Int64

        @OptionGroup var global: GlobalOptions

        mutating func validate() throws {
            if ttl <= 0 { throw ValidationError("the TTL must be positive") }
        }

        func run() async throws {
            let grant = try await global.withClient { try await $0.grantLease(ttl: ttl) }
            switch global.writeOut {
            case .json:
                emit([
                    JSONValue.object([("header", grant.header.json), ("id", .string(grant.id.description)), ("ttl", .int(grant.ttl))])
                        .rendered
                ])
            case .simple, .table: emit(["lease \(paddedHex(grant.id)) granted with TTL(\(grant.ttl)s)"])
            }
        }
    }

    /// `lease revoke`.
    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revokes a lease, deleting the keys attached to it.", discussion: "Prints \"lease <ID> revoked\".")

        @Argument(help: "The lease ID (hexadecimal).")
        var id: LeaseArgument

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let header = try await global.withClient { try await $0.revokeLease(id.id) }
            switch global.writeOut {
            case .json: emit([JSONValue.object([("header", header.json), ("id", .string(id.id.description))]).rendered])
            case .simple, .table: emit(["lease \(paddedHex(id.id)) revoked"])
            }
        }
    }

    /// `lease timetolive`.
    struct TimeToLive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "timetolive",
            abstract: "Prints how long a lease has left.",
            discussion: """
                Prints "lease <ID> granted with TTL(<granted>s), remaining(<left>s)" (with --keys followed by \
                ", attached keys([k1 k2])"), or "lease <ID> already expired"; with -w json {"header", "id", \
                "ttl" (-1 when expired), "granted_ttl", "keys"}.
                """)

        @Argument(help: "The lease ID (hexadecimal).")
        var id: LeaseArgument

        @Flag(help: "Also print the keys attached to the lease.")
        var keys = false

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let info = try await global.withClient { try await $0.leaseTimeToLive(id.id, keys: keys) }
            let names = info.keys.map { String(decoding: $0, as: UTF8.self) }
            switch global.writeOut {
            case .json:
                emit([
                    JSONValue.object([
                        ("header", info.header.json), ("id", .string(id.id.description)), ("ttl", .int(info.ttl)),
                        ("granted_ttl", .int(info.grantedTTL)), ("keys", .array(names.map(JSONValue.string))),
                    ]).rendered
                ])
            case .simple, .table:
                guard info.ttl != -1 else { return emit(["lease \(paddedHex(id.id)) already expired"]) }
                let attached = keys ? ", attached keys([\(names.joined(separator: " "))])" : ""
                emit(["lease \(paddedHex(id.id)) granted with TTL(\(info.grantedTTL)s), remaining(\(info.ttl)s)\(attached)"])
            }
        }
    }

    /// `lease list`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Lists the leases.",
            discussion: "Prints \"found <N> leases\" and one ID per line; with -w json {\"leases\": [IDs]}; -w table: an ID column.")

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let leases = try await global.withClient { try await $0.leases() }
            switch global.writeOut {
            case .json: emit([JSONValue.object([("leases", .array(leases.map { .string($0.description) }))]).rendered])
            case .table: emit(Table(header: ["ID"], rows: leases.map { [paddedHex($0)] }).rendered)
            case .simple: emit(["found \(leases.count) leases"] + leases.map(paddedHex))
            }
        }
    }

    /// `lease keep-alive`.
    struct KeepAlive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "keep-alive",
            abstract: "Renews a lease, once or until SIGINT or SIGTERM.",
            discussion: """
                Prints "lease <ID> keepalived with TTL(<TTL>)" after each renewal, every third of the TTL. \
                When the lease expires or is revoked, prints "lease <ID> expired or revoked." and exits 0 \
                (with --once, an unknown lease is an error).
                """)

        @Argument(help: "The lease ID (hexadecimal).")
        var id: LeaseArgument

        @Flag(help: "Renew once and exit.")
        var once = false

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let id = self.id.id
            let format = global.writeOut
            let once = self.once
            try await global.withClient { client in
                if once {
                    let ttl = try await client.renewLease(id)
                    guard ttl > 0 else { throw StatehouseError(.leaseNotFound, "etcdserver: requested lease not found") }
                    Self.report(id, ttl: ttl, format: format)
                    return
                }
                _ = try await TerminationSignals.run { try await Self.renew(id, client: client, format: format) }
            }
        }

        /// Renews `id` every third of its TTL until it is gone or the task is cancelled; a failed
        /// renewal is retried until a whole TTL has passed without one.
        static func renew(_ id: LeaseID, client: StatehouseClient, format: OutputFormat) async throws {
            let clock = ContinuousClock()
            var lastRenewal = clock.now
            var ttl: Int64 = 0
            while !Task.isCancelled {
                do {
                    ttl = try await client.renewLease(id)
                } catch let error as StatehouseError where error.code != .cancelled {
                    guard clock.now - lastRenewal < .seconds(max(ttl, 1)) else { throw error }
                    try await Task.sleep(for: .milliseconds(500))
                    continue
                }
                guard ttl > 0 else {
                    switch format {
                    case .json: emit([JSONValue.object([("id", .string(id.description)), ("ttl", .int(0))]).rendered])
                    case .simple, .table: emit(["lease \(paddedHex(id)) expired or revoked."])
                    }
                    return
                }
                lastRenewal = clock.now
                report(id, ttl: ttl, format: format)
                try await Task.sleep(for: .milliseconds(max(ttl * 1000 / 3, 500)))
            }
        }

        static func report(_ id: LeaseID, ttl: Int64, format: OutputFormat) {
            switch format {
            case .json: emit([JSONValue.object([("id", .string(id.description)), ("ttl", .int(ttl))]).rendered])
            case .simple, .table: emit(["lease \(paddedHex(id)) keepalived with TTL(\(ttl))"])
            }
        }
    }
}
