import ArgumentParser
import Foundation
import StatehouseClient

/// `lock`: takes a distributed lock and holds it until stopped, or while a command runs.
struct Lock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Takes a distributed lock; holds it until SIGINT/SIGTERM, or while a command runs.",
        discussion: """
            The lock is etcd's client-side recipe (a key NAME/<lease ID> under a session lease kept \
            alive in the background), so it interoperates with etcdctl lock.

            Without COMMAND: waits for the lock, prints the lock key (-w json: {"key", "revision"}), \
            and holds it until SIGINT or SIGTERM, then releases it and exits 0. If the session's lease \
            is lost meanwhile (the cluster could not be reached for a whole TTL), exits 1.

            With COMMAND: runs it while holding the lock, with these environment
            variables:
              STATEHOUSE_LOCK_KEY       the lock key
              STATEHOUSE_FENCING_TOKEN  the lock key's create revision, the fencing
                                        token (larger for every later holder)
              ETCD_LOCK_KEY             the lock key (etcdctl's name)
              ETCD_LOCK_REV             the fencing token (etcdctl's name)
            Then it releases the lock and exits with the command's status (128+N if signal N killed it). \
            SIGINT and SIGTERM are passed on to the command. Options go before NAME: everything after \
            NAME belongs to the command.
            """)

    @Option(help: "The session lease's TTL in seconds: how long the lock outlives a lost client.")
    var ttl: Int64 = 10

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The lock's name (the key prefix its holders queue under).")
    var name: String

    @Argument(parsing: .captureForPassthrough, help: "A command to run while holding the lock, and its arguments.")
    var command: [String] = []

    mutating func validate() throws {
        if name.isEmpty { throw ValidationError("the lock name is empty") }
        if ttl <= 0 { throw ValidationError("--ttl must be positive") }
        if command.first == "--" { command.removeFirst() }
    }

    func run() async throws {
        let (name, command, ttl, format) = (self.name, self.command, self.ttl, global.writeOut)
        let status: Int32? = try await global.withClient { client in
            let session = try await client.makeSession(ttl: ttl)
            let mutex = DistributedMutex(session: session, name: name)
            guard let token = try await TerminationSignals.run({ try await mutex.lock() }) else {
                // Stopped while waiting: withdraw (revoking the lease deletes the queued key).
                try await session.close()
                return nil
            }
            let status: Int32?
            do {
                if command.isEmpty {
                    switch format {
                    case .json:
                        emit([JSONValue.object([("key", .string(token.keyString)), ("revision", .int(token.revision))]).rendered])
                    case .simple, .table: emit([token.keyString])
                    }
                    let loss = try await TerminationSignals.run { await session.waitUntilLost() }
                    if case .some(.some(let reason)) = loss {
                        throw CommandFailure("the session's lease is lost (\(reason)): the lock \(token.keyString) is no longer held")
                    }
                    status = nil
                } else {
                    status = try await ChildCommand.run(command, environment: Self.environment(for: token))
                }
            } catch {
                try? await session.close()
                throw error
            }
            try await mutex.unlock()
            try await session.close()
            return status
        }
        if let status, status != 0 { throw ExitCode(status) }
    }

    /// The variables a command run under the lock gets.
    static func environment(for token: LockToken) -> [String: String] {
        [
            "STATEHOUSE_LOCK_KEY": token.keyString, "STATEHOUSE_FENCING_TOKEN": String(token.revision),
            "ETCD_LOCK_KEY": token.keyString, "ETCD_LOCK_REV": String(token.revision),
        ]
    }
}
