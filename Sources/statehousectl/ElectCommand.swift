import ArgumentParser
import StatehouseClient

/// `elect`: campaigns in a leader election, or observes its leaders.
struct Elect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Campaigns in a leader election (until SIGINT/SIGTERM), or observes its leaders.",
        discussion: """
            The election is etcd's client-side recipe (candidate keys NAME/<lease ID> under a session \
            lease), so it interoperates with etcdctl elect.

            With PROPOSAL: waits until elected, prints the leader key and the proposal on two lines \
            (-w json: the key-value pair as JSON), and leads until SIGINT or SIGTERM, then resigns and \
            exits 0. Exits 1 if the session's lease is lost meanwhile.

            With -l/--listen: prints the current leader's key and value, then each new leader or value, \
            until SIGINT or SIGTERM.
            """)

    @Flag(name: [.customShort("l"), .customLong("listen")], help: "Observe the election's leaders instead of campaigning.")
    var listen = false

    @Option(help: "The session lease's TTL in seconds: how long the leadership outlives a lost client.")
    var ttl: Int64 = 60

    @Argument(help: "The election's name.")
    var name: String

    @Argument(help: "The value to lead with.")
    var proposal: String?

    @OptionGroup var global: GlobalOptions

    mutating func validate() throws {
        if name.isEmpty { throw ValidationError("the election name is empty") }
        if ttl <= 0 { throw ValidationError("--ttl must be positive") }
        if listen, proposal != nil { throw ValidationError("-l/--listen takes no PROPOSAL") }
        if !listen, proposal == nil { throw ValidationError("missing PROPOSAL (or -l to observe)") }
    }

    func run() async throws {
        let (name, format, ttl) = (self.name, global.writeOut, self.ttl)
        if let proposal {
            try await global.withClient { try await Self.campaign(name, proposal, ttl: ttl, client: $0, format: format) }
            return
        }
        try await global.withClient { client in
            _ = try await TerminationSignals.run {
                for try await leader in client.observeElection(name) {
                    Self.print(leader, format: format)
                }
            }
        }
    }

    /// Campaigns with `proposal`, prints the leadership once won, and leads until stopped.
    static func campaign(
        _ name: String, _ proposal: String, ttl: Int64, client: StatehouseClient, format: OutputFormat
    ) async throws {
        let session = try await client.makeSession(ttl: ttl)
        let election = Election(session: session, name: name)
        do {
            guard let leader = try await TerminationSignals.run({ try await election.campaign(proposal) }) else {
                return try await session.close()
            }
            if let current = try await client.get(leader.key) { print(current, format: format) }
            let loss = try await TerminationSignals.run { await session.waitUntilLost() }
            if case .some(.some(let reason)) = loss {
                throw CommandFailure("the session's lease is lost (\(reason)): no longer the leader of \(name)")
            }
            try await election.resign()
            try await session.close()
        } catch {
            try? await session.close()
            throw error
        }
    }

    static func print(_ leader: KeyValue, format: OutputFormat) {
        switch format {
        case .json: emit([leader.json.rendered])
        case .simple, .table: emit(leader.simpleLines)
        }
    }
}
