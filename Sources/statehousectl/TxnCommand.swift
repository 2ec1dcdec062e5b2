import ArgumentParser
import Foundation
import StatehouseClient

/// `txn`: one transaction read from standard input.
struct TxnCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "txn",
        abstract: "Runs a transaction read from standard input.",
        discussion: """
            Standard input holds, as for etcdctl: the comparisons, one per line; a \
            blank line; the operations to run when every comparison holds; a blank \
            line; the operations to run otherwise (up to a blank line or the end of \
            input). For example:

              value("config") = "v1"
              mod("counter") > "5"

              put config v2
              get counter

              get config

            Comparisons: TARGET("KEY") OP "VALUE", TARGET one of value (val), mod (m), \
            create (c), version (ver) or lease (the lease ID in hexadecimal), OP one of \
            = != < >. Numbers may also be written without quotes.

            Operations: put [--lease=ID] [--prev-kv] KEY VALUE; get [--prefix|--from-key] \
            [--keys-only] [--limit=N] [--rev=N] KEY [END]; del [--prefix|--from-key] \
            [--prev-kv] KEY [END]. Words with spaces go in double quotes.

            Prints SUCCESS or FAILURE, then a blank line before each operation's result \
            (put: OK; get: keys and values; del: the count); -w json: {"header", \
            "succeeded", "responses": [{"put"|"get"|"delete": {...}}]}. A line that does \
            not parse is a usage error (exit status 2).
            """)

    @Flag(name: .shortAndLong, help: "Prompt for each part (compares, success and failure requests).")
    var interactive = false

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let compares: [Compare]
        let success: [TxnOperation]
        let failure: [TxnOperation]
        do {
            compares = try section(prompt: "compares:").map(TxnParser.compare)
            success = try section(prompt: "success requests (get, put, del):").map(TxnParser.operation)
            failure = try section(prompt: "failure requests (get, put, del):").map(TxnParser.operation)
        } catch let error as TxnParser.SyntaxError {
            throw ValidationError(error.message)
        }
        let result = try await global.withClient { client in
            try await client.txn().when(compares).then(success).else(failure).commit()
        }
        TxnOutput(result: result).print(as: global.writeOut)
    }

    /// The lines of standard input up to a blank line or the end, after printing `prompt` when
    /// interactive.
    private func section(prompt: String) -> [String] {
        if interactive { emit([prompt]) }
        var lines: [String] = []
        while let line = readLine() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { break }
            lines.append(trimmed)
        }
        return lines
    }
}

/// What `txn` prints.
struct TxnOutput: Printable {
    var result: TxnResult

    var simpleLines: [String] {
        [result.succeeded ? "SUCCESS" : "FAILURE"] + result.results.flatMap { [""] + Self.lines(of: $0) }
    }

    static func lines(of result: TxnResult.OperationResult) -> [String] {
        switch result {
        case .get(let get): GetOutput(result: get).simpleLines
        case .put(let put): PutOutput(result: put).simpleLines
        case .delete(let delete): DeleteOutput(result: delete).simpleLines
        case .txn(let txn): TxnOutput(result: txn).simpleLines
        }
    }

    var json: JSONValue {
        .object([
            ("header", result.header.json), ("succeeded", .bool(result.succeeded)),
            ("responses", .array(result.results.map(Self.json))),
        ])
    }

    static func json(of result: TxnResult.OperationResult) -> JSONValue {
        switch result {
        case .get(let get): .object([("get", GetOutput(result: get).json)])
        case .put(let put): .object([("put", PutOutput(result: put).json)])
        case .delete(let delete): .object([("delete", DeleteOutput(result: delete).json)])
        case .txn(let txn): .object([("txn", TxnOutput(result: txn).json)])
        }
    }
}
