import ArgumentParser
import Foundation
import StatehouseClient

/// `statehousectl`: etcdctl-style commands for a Statehouse (or etcd v3) cluster.
@main
struct Statehousectl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "statehousectl",
        abstract: "A command-line client for Statehouse (and etcd v3) clusters, modelled on etcdctl 3.4.",
        discussion: """
            Every command takes the global options --endpoints, --command-timeout,
            -w/--write-out, --user and --password (see each command's help), before or
            after the command's name (for lock: before NAME).

            ENDPOINTS
              --endpoints takes a comma-separated list of host:port or http://host:port.
              Without the flag, $STATEHOUSE_ENDPOINTS is used, else 127.0.0.1:2379. Calls
              go to one endpoint at a time and move to the next when one fails.

            OUTPUT FORMATS (-w/--write-out)
              simple  Lines as etcdctl prints them (get: each key and value on two lines).
              json    One JSON object per result, on one line (per event for watch and
                      elect -l). Keys and values are UTF-8 strings (bytes that are not
                      UTF-8 show as U+FFFD); revisions, versions, counts and TTLs are
                      numbers; cluster, member and lease IDs are hexadecimal strings,
                      as the commands take them. Responses carry
                      "header": {"cluster_id", "member_id", "revision", "raft_term"};
                      key-value pairs are {"key", "value", "create_revision",
                      "mod_revision", "version", "lease"}. Each command's help names
                      its other fields.
              table   Aligned columns under a header row (get, member list, endpoint
                      status and health, lease list); other commands print their
                      simple lines.

            EXIT STATUS
              0  success.
              1  the cluster answered with an error, or could not be reached (printed
                 as "Error: <message>" on standard error).
              2  a bad flag or argument (one line on standard error).
              lock with a command exits with the command's status.
            """,
        subcommands: [
            Get.self, Put.self, Del.self, TxnCommand.self, Watch.self, Compaction.self,
            LeaseCommand.self, Lock.self, Elect.self,
            MemberCommand.self, EndpointCommand.self, SnapshotCommand.self, MoveLeader.self, AlarmCommand.self,
            UserCommand.self, RoleCommand.self, AuthCommand.self,
        ]
    )

    /// Parses the command line, runs the command, and exits: 0 on success, 1 for errors from the
    /// cluster, 2 for usage errors (ArgumentParser's own default would be 64).
    static func main() async {
        let command: any ParsableCommand
        do {
            command = try parseAsRoot(
                movingGlobalOptions(writingFlagsBare(Array(CommandLine.arguments.dropFirst()))))
        } catch {
            exit(for: error)
        }
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                var syncCommand = command
                try syncCommand.run()
            }
        } catch {
            exit(for: error)
        }
        Foundation.exit(0)
    }

    /// The global options, as they may be written before the command's name.
    static let globalOptionNames: Set<String> = [
        "--endpoints", "--command-timeout", "-w", "--write-out", "--user", "--password",
    ]

    /// `arguments` with the global options that precede the command's name moved after it
    /// (after `lease grant`, say), where the command's own option group parses them.
    ///
    /// etcdctl takes `etcdctl --endpoints=… get k`. Declaring the options on the root command
    /// too would let ArgumentParser parse them there, but then `lock`, whose COMMAND takes every
    /// argument after NAME, would no longer accept them after its own name.
    static func movingGlobalOptions(_ arguments: [String]) -> [String] {
        var leading: [String] = []
        var rest = arguments[...]
        while let first = rest.first, globalOptionNames.contains(String(first.prefix { $0 != "=" })) {
            leading.append(first)
            rest = rest.dropFirst()
            if !first.contains("="), let value = rest.first {
                leading.append(value)
                rest = rest.dropFirst()
            }
        }
        guard !leading.isEmpty else { return arguments }
        var command: any ParsableCommand.Type = Statehousectl.self
        var path: [String] = []
        while let word = rest.first, let next = command.configuration.subcommands.first(where: { $0._commandName == word }) {
            path.append(word)
            rest = rest.dropFirst()
            command = next
        }
        return path + leading + rest
    }

    /// `arguments` with etcdctl's `--prefix=true` and `--from-key=true` written as the bare flags
    /// and their `=false` forms dropped, so that scripts written for etcdctl work. `lock` and
    /// `elect` pass their arguments to a command, which are left as they are.
    static func writingFlagsBare(_ arguments: [String]) -> [String] {
        guard !arguments.contains(where: { $0 == "lock" || $0 == "elect" }) else { return arguments }
        var result: [String] = []
        for (index, argument) in arguments.enumerated() {
            if argument == "--" {
                result += arguments[index...]
                break
            }
            switch argument {
            case "--prefix=true", "--from-key=true": result.append(String(argument.dropLast("=true".count)))
            case "--prefix=false", "--from-key=false": continue
            default: result.append(argument)
            }
        }
        return result
    }

    /// Prints what `error` means in the form its kind calls for and exits with its status.
    static func exit(for error: any Error) -> Never {
        if let error = error as? StatehouseError {
            printError("Error: \(error.message)")
            Foundation.exit(1)
        }
        if let failure = error as? CommandFailure {
            printError("Error: \(failure.message)")
            Foundation.exit(1)
        }
        let code = exitCode(for: error)
        if error is ExitCode { Foundation.exit(code.rawValue) }
        if code == .success {
            // --help, `help <command>`, or a command group run without a subcommand.
            Swift.print(fullMessage(for: error))
            Foundation.exit(0)
        }
        var message = message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
        if message.hasPrefix("Error: ") { message.removeFirst("Error: ".count) }
        if code == .validationFailure {
            printError("statehousectl: \(message)")
            Foundation.exit(2)
        }
        printError("Error: \(message)")
        Foundation.exit(1)
    }
}

/// A command failed in a way the cluster did not report as an error (an unhealthy endpoint, a
/// lost session): printed as `Error: <message>`, exit status 1.
struct CommandFailure: Error {
    /// What went wrong.
    var message: String

    init(_ message: String) {
        self.message = message
    }
}
