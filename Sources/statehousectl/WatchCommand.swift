import ArgumentParser
import StatehouseClient

/// `watch`: prints the changes to a key or a range of keys until stopped.
struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prints the changes to a key or a range of keys until SIGINT or SIGTERM.",
        discussion: """
            Each event is printed as etcdctl prints it: PUT or DELETE, then (with --prev-kv) the \
            previous key and value, then the key and its new value (empty for a DELETE), one per line. \
            With -w json, each event is one line: {"type": "PUT"|"DELETE", "kv": {...}, "prev_kv": \
            {...}|null}. When an endpoint fails, the watch resumes on another from the next revision, \
            so no event is lost or repeated. A start revision that has been compacted is an error \
            (exit status 1). SIGINT or SIGTERM ends the watch with exit status 0.
            """)

    @OptionGroup var range: KeyRangeArguments

    @Option(help: "The first revision to print (0: changes from now on).")
    var rev: Int64 = 0

    @Flag(help: "Print each key's previous value too.")
    var prevKv = false

    @OptionGroup var global: GlobalOptions

    mutating func validate() throws {
        if rev < 0 { throw ValidationError("--rev must not be negative") }
    }

    func run() async throws {
        let range = try self.range.range
        let options = WatchOptions(startRevision: rev, prevKV: prevKv)
        let format = global.writeOut
        try await global.withClient { client in
            _ = try await TerminationSignals.run {
                for try await event in client.watch(range, options: options) {
                    WatchEventOutput(event: event).print(as: format)
                }
            }
        }
    }
}

/// What `watch` prints for one event.
struct WatchEventOutput: Printable {
    var event: WatchEvent

    var typeName: String { event.kind == .put ? "PUT" : "DELETE" }

    var simpleLines: [String] { [typeName] + (event.previous?.simpleLines ?? []) + event.kv.simpleLines }

    var json: JSONValue {
        .object([("type", .string(typeName)), ("kv", event.kv.json), ("prev_kv", event.previous?.json ?? .null)])
    }
}
