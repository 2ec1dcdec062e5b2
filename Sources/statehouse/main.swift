// statehouse: one member of a Statehouse cluster, serving etcd's v3 gRPC API.
//
// Configuration comes from flags, STATEHOUSE_* environment variables and an optional config
// file (see `statehouse --help`). Every value is checked before anything starts: a bad one
// stops the process with one line naming the flag, and exit code 2. SIGTERM and SIGINT shut
// the member down gracefully (a leader hands leadership to its most caught-up follower, then
// the member stops accepting calls, finishes in-flight ones, syncs and exits 0).

import Foundation
import Logging
import ServerConfiguration
import ServiceLifecycle
import StatehouseServer
import UnixSignals

/// Runs the server until a shutdown signal arrives.
struct StatehouseService: Service {
    let server: StatehouseServer

    func run() async throws {
        try await server.start()
        try? await gracefulShutdown()
        await server.stop()
    }
}

let arguments = Array(CommandLine.arguments.dropFirst())
let parsed: ServerConfiguration.ParseResult
do {
    parsed = try ServerConfiguration.parse(
        arguments: arguments, environment: ProcessInfo.processInfo.environment,
        readFile: { path in try String(contentsOfFile: path, encoding: .utf8) })
} catch {
    FileHandle.standardError.write(Data((error.line + "\n").utf8))
    exit(2)
}

let configuration: ServerConfiguration
switch parsed {
case .help:
    print(ServerConfiguration.helpText)
    exit(0)
case .version:
    print("statehouse \(StatehouseServer.version) (etcd API \(StatehouseServer.apiVersion))")
    exit(0)
case .validated(let value):
    print(value.summary)
    exit(0)
case .run(let value):
    configuration = value
}

LoggingSystem.bootstrap { label in
    let level: Logger.Level =
        switch configuration.logLevel {
        case .debug: .debug
        case .info: .info
        case .warn: .warning
        case .error: .error
        }
    switch configuration.logFormat {
    case .text:
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    case .json:
        return JSONLogHandler(label: label, logLevel: level)
    }
}
var logger = Logger(label: "statehouse")
logger[metadataKey: "member"] = "\(configuration.name)"

let server: StatehouseServer
do {
    server = try StatehouseServer(configuration: configuration, logger: logger)
} catch {
    FileHandle.standardError.write(Data("statehouse: cannot open the data directory \(configuration.dataDir): \(error)\n".utf8))
    exit(1)
}
let group = ServiceGroup(
    services: [StatehouseService(server: server)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
do {
    try await group.run()
} catch {
    FileHandle.standardError.write(Data("statehouse: \(error)\n".utf8))
    exit(1)
}
