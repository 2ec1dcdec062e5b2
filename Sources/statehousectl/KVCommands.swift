import ArgumentParser
import Foundation
import StatehouseClient

/// `get`: reads a key or a range of keys.
struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reads a key or a range of keys.",
        discussion: """
            Prints each key and its value on two lines (simple), a JSON object with "header", "kvs", \
            "count" and "more" (json), or a table of KEY, VALUE, CREATE_REVISION, MOD_REVISION, VERSION \
            and LEASE (table). Nothing is printed for a key that does not exist.
            """)

    @OptionGroup var range: KeyRangeArguments

    @Option(help: "Read at this revision (0: the latest).")
    var rev: Int64 = 0

    @Option(help: "At most this many keys (0: no limit).")
    var limit: Int64 = 0

    @Flag(help: "Read keys without values.")
    var keysOnly = false

    @Flag(help: "Print only the values (simple output).")
    var printValueOnly = false

    @Option(help: "l (linearizable, through a quorum) or s (serializable: the member's local, possibly stale, state).")
    var consistency: Consistency = .l

    @Option(help: "Sort by CREATE, KEY, MODIFY, VALUE or VERSION.")
    var sortBy: SortTarget?

    @Option(help: "ASCEND or DESCEND (with or without --sort-by, which then defaults to KEY).")
    var order: SortDirection?

    @OptionGroup var global: GlobalOptions

    /// `--consistency`.
    enum Consistency: String, ExpressibleByArgument, CaseIterable {
        case l, s
    }

    /// `--sort-by`.
    enum SortTarget: String, ExpressibleByArgument, CaseIterable {
        case create = "CREATE", key = "KEY", modify = "MODIFY", value = "VALUE", version = "VERSION"

        var target: KeySortOrder.Target {
            switch self {
            case .create: .createRevision
            case .key: .key
            case .modify: .modRevision
            case .value: .value
            case .version: .version
            }
        }
    }

    /// `--order`.
    enum SortDirection: String, ExpressibleByArgument, CaseIterable {
        case ascend = "ASCEND", descend = "DESCEND"
    }

    mutating func validate() throws {
        if rev < 0 { throw ValidationError("--rev must not be negative") }
        if limit < 0 { throw ValidationError("--limit must not be negative") }
    }

    func run() async throws {
        var options = GetOptions(limit: limit, revision: rev, serializable: consistency == .s, keysOnly: keysOnly)
        if sortBy != nil || order != nil {
            options.sort = KeySortOrder(sortBy?.target ?? .key, ascending: order != .descend)
        }
        let result = try await global.withClient { try await $0.get(try range.range, options: options) }
        GetOutput(result: result, valueOnly: printValueOnly).print(as: global.writeOut)
    }
}

/// What `get` prints.
struct GetOutput: Printable {
    var result: GetResult
    var valueOnly = false

    var simpleLines: [String] { result.kvs.flatMap { valueOnly ? [$0.valueString] : $0.simpleLines } }

    var json: JSONValue {
        .object([
            ("header", result.header.json), ("kvs", .array(result.kvs.map(\.json))), ("count", .int(result.count)),
            ("more", .bool(result.more)),
        ])
    }

    var table: Table? {
        Table(
            header: ["KEY", "VALUE", "CREATE_REVISION", "MOD_REVISION", "VERSION", "LEASE"],
            rows: result.kvs.map { kv in
                [
                    kv.keyString, kv.valueString, String(kv.createRevision), String(kv.modRevision), String(kv.version),
                    kv.lease == 0 ? "0" : LeaseID(kv.lease).description,
                ]
            })
    }
}

/// `put`: writes a value under a key.
struct Put: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Writes a value under a key.",
        discussion: """
            Prints OK (and with --prev-kv the previous key and value). Without VALUE, the value is read \
            from standard input (all of it, as etcdctl does). A value that starts with "-" follows "--".
            """)

    @Argument(help: "The key.")
    var key: String

    @Argument(help: "The value (read from standard input if left out).")
    var value: String?

    @Option(help: "Attach the key to this lease (its ID in hexadecimal, as `lease grant` prints it).")
    var lease: LeaseArgument?

    @Flag(help: "Print the key's previous value.")
    var prevKv = false

    @OptionGroup var global: GlobalOptions

    mutating func validate() throws {
        if key.isEmpty { throw ValidationError("the key is empty") }
    }

    func run() async throws {
        let value = self.value ?? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        let result = try await global.withClient { try await $0.put(key, value, lease: lease?.id, prevKV: prevKv) }
        PutOutput(result: result).print(as: global.writeOut)
    }
}

/// What `put` prints.
struct PutOutput: Printable {
    var result: PutResult

    var simpleLines: [String] { ["OK"] + (result.previous?.simpleLines ?? []) }

    var json: JSONValue {
        .object([("header", result.header.json), ("prev_kv", result.previous?.json ?? .null)])
    }
}

/// `del`: deletes a key or a range of keys.
struct Del: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Deletes a key or a range of keys.",
        discussion: "Prints the number of keys deleted (and with --prev-kv each deleted key and its last value).")

    @OptionGroup var range: KeyRangeArguments

    @Flag(help: "Print the deleted keys and their last values.")
    var prevKv = false

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let result = try await global.withClient { try await $0.delete(try range.range, prevKV: prevKv) }
        DeleteOutput(result: result).print(as: global.writeOut)
    }
}

/// What `del` prints.
struct DeleteOutput: Printable {
    var result: DeleteResult

    var simpleLines: [String] { [String(result.deleted)] + result.previous.flatMap(\.simpleLines) }

    var json: JSONValue {
        .object([
            ("header", result.header.json), ("deleted", .int(result.deleted)), ("prev_kvs", .array(result.previous.map(\.json))),
        ])
    }
}

/// `compaction`: discards the history before a revision.
struct Compaction: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Discards the history before a revision.",
        discussion: "Revisions before REVISION can no longer be read or watched. Prints \"compacted revision REVISION\".")

    @Argument(help: "The revision to compact up to.")
    var revision: Int64

    @Flag(help: "Return only once the compaction has been applied to the backend.")
    var physical = false

    @OptionGroup var global: GlobalOptions

    mutating func validate() throws {
        if revision <= 0 { throw ValidationError("the revision must be positive") }
    }

    func run() async throws {
        let header = try await global.withClient { try await $0.compact(revision: revision, physical: physical) }
        switch global.writeOut {
        case .json: emit([JSONValue.object([("header", header.json), ("compacted", .int(revision))]).rendered])
        case .simple, .table: emit(["compacted revision \(revision)"])
        }
    }
}

/// A lease ID given in hexadecimal, as etcdctl takes it.
struct LeaseArgument: ExpressibleByArgument, Sendable {
    /// The lease.
    var id: LeaseID

    init?(argument: String) {
        guard !argument.isEmpty, argument.count <= 16, let value = UInt64(argument, radix: 16) else { return nil }
        id = LeaseID(Int64(bitPattern: value))
    }
}
