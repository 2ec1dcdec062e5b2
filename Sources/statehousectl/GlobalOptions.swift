import ArgumentParser
import Foundation
import Logging
import StatehouseClient

#if canImport(Glibc)
import Glibc
#endif

/// The options every command takes: where the cluster is, how long a call may take, and how
/// results are printed.
struct GlobalOptions: ParsableArguments {
    /// The environment variable read when `--endpoints` is not given.
    static let endpointsVariable = "STATEHOUSE_ENDPOINTS"
    /// The endpoints used when neither the flag nor the environment variable is set.
    static let defaultEndpoints = "127.0.0.1:2379"

    @Option(
        help: ArgumentHelp(
            "The servers to call, comma-separated (host:port, http://host:port or https://host:port); defaults to $STATEHOUSE_ENDPOINTS, else 127.0.0.1:2379.",
            valueName: "endpoints"))
    var endpoints: String?

    @Option(
        name: .customLong("command-timeout"),
        help: ArgumentHelp(
            "How long each call may take, retries included (500ms, 5s, 1m; a bare number is seconds).",
            valueName: "duration"))
    var commandTimeout: CommandDuration = CommandDuration(.seconds(5), text: "5s")

    @Option(name: [.customShort("w"), .customLong("write-out")], help: "The output format: simple, json or table.")
    var writeOut: OutputFormat = .simple

    @Option(help: ArgumentHelp("Verify the servers' TLS certificates with these PEM CA certificates (turns TLS on).", valueName: "path"))
    var cacert: String?

    @Option(help: ArgumentHelp("Present this PEM client certificate to the servers (turns TLS on; needs --key).", valueName: "path"))
    var cert: String?

    @Option(help: ArgumentHelp("The PEM private key of --cert.", valueName: "path"))
    var key: String?

    @Flag(
        name: .customLong("insecure-skip-tls-verify"),
        help: "Speak TLS without verifying the servers' certificates (encrypted, not authenticated; for tests).")
    var insecureSkipTLSVerify = false

    @Option(
        help: ArgumentHelp(
            "Authenticate as this user, name[:password]; without a password, it is asked for when standard input is a terminal.",
            valueName: "name[:password]"))
    var user: String?

    @Option(help: ArgumentHelp("The password of --user (--user then holds only the name).", valueName: "password"))
    var password: String?

    /// The endpoints to use: the flag, else the environment variable, else the default.
    var endpointList: [String] {
        let text =
            endpoints ?? ProcessInfo.processInfo.environment[Self.endpointsVariable].flatMap { $0.isEmpty ? nil : $0 }
            ?? Self.defaultEndpoints
        return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    mutating func validate() throws {
        if (cert == nil) != (key == nil) { throw ValidationError("--cert and --key go together") }
        if password != nil {
            guard let user else { throw ValidationError("--password needs --user") }
            if user.contains(":") { throw ValidationError("--user must not hold a password when --password is given") }
        }
        if let user, user.isEmpty || user.hasPrefix(":") { throw ValidationError("--user needs a user name") }
        _ = try connectionConfiguration()
    }

    /// The credentials of `--user` and `--password`, asking for a missing password on the
    /// terminal; nil without `--user`.
    ///
    /// - Throws: `ValidationError` when the password is missing and standard input is not a
    ///   terminal.
    func credentials() throws -> StatehouseCredentials? {
        guard let user else { return nil }
        if let password { return StatehouseCredentials(user: user, password: password) }
        if let colon = user.firstIndex(of: ":") {
            return StatehouseCredentials(user: String(user[..<colon]), password: String(user[user.index(after: colon)...]))
        }
        guard let typed = readPassword(prompt: "Password: ") else {
            throw ValidationError(
                "no password for user \"\(user)\": give --user \(user):PASSWORD or --password, or run in a terminal to be asked for it")
        }
        return StatehouseCredentials(user: user, password: typed)
    }

    /// The client configuration these options describe, credentials included.
    ///
    /// - Throws: `ValidationError` naming a malformed endpoint or a missing password.
    func configuration(endpoints chosen: [String]? = nil) throws -> StatehouseClientConfiguration {
        var configuration = try connectionConfiguration(endpoints: chosen)
        configuration.credentials = try credentials()
        return configuration
    }

    /// The client configuration these options describe, without credentials.
    ///
    /// - Throws: `ValidationError` naming a malformed endpoint.
    func connectionConfiguration(endpoints chosen: [String]? = nil) throws -> StatehouseClientConfiguration {
        do {
            var configuration = try StatehouseClientConfiguration(endpoints: chosen ?? endpointList)
            configuration.requestTimeout = commandTimeout.duration
            if cacert != nil || cert != nil || insecureSkipTLSVerify {
                configuration.tls = StatehouseClientTLS(
                    trustedCAFile: cacert, certificateFile: cert, keyFile: key, skipsVerification: insecureSkipTLSVerify)
            }
            return configuration
        } catch let error as StatehouseError {
            throw ValidationError(error.message)
        }
    }

    /// Runs `body` with a client of the configured endpoints (or `chosen` ones), shut down
    /// afterwards.
    func withClient<Result: Sendable>(
        endpoints chosen: [String]? = nil, _ body: (StatehouseClient) async throws -> Result
    ) async throws -> Result {
        try await withStatehouseClient(configuration: configuration(endpoints: chosen), logger: Self.logger, body)
    }

    /// Where the client library logs: standard error, errors only (output stays parseable).
    static let logger: Logger = {
        var logger = Logger(label: "statehousectl") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .error
        return logger
    }()
}

/// A duration written as etcdctl takes it: `500ms`, `5s`, `1m`, `1m30s`, or a bare number of
/// seconds.
struct CommandDuration: ExpressibleByArgument, Sendable {
    /// The duration.
    var duration: Duration
    /// The duration as it was written.
    var text: String

    init(_ duration: Duration, text: String) {
        self.duration = duration
        self.text = text
    }

    init?(argument: String) {
        text = argument
        if let seconds = Double(argument) {
            guard seconds > 0 else { return nil }
            duration = .milliseconds(Int64(seconds * 1000))
            return
        }
        var total = Duration.zero
        var rest = Substring(argument)
        let units: [(String, Duration)] = [("ms", .milliseconds(1)), ("s", .seconds(1)), ("m", .seconds(60)), ("h", .seconds(3600))]
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isNumber || $0 == "." }
            guard let value = Double(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            guard let (unit, scale) = units.first(where: { rest.hasPrefix($0.0) }) else { return nil }
            rest = rest.dropFirst(unit.count)
            total += scale * value
        }
        guard total > .zero else { return nil }
        duration = total
    }

    var defaultValueDescription: String { text }
}

/// Reads a password from the terminal without echoing it; nil when standard input is not a
/// terminal.
func readPassword(prompt: String) -> String? {
    guard isatty(STDIN_FILENO) == 1, let typed = getpass(prompt) else { return nil }
    return String(cString: typed)
}
