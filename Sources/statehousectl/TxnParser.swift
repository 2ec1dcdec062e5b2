import ArgumentParser
import Foundation
import StatehouseClient

/// Parses etcdctl's transaction syntax: comparisons such as `value("k") = "v"` and operations
/// such as `put k v`, `get k`, `del k`.
enum TxnParser {
    /// A line that is not a comparison or an operation.
    struct SyntaxError: Error {
        var message: String
    }

    /// Parses one comparison: `TARGET("KEY") OP VALUE`, TARGET one of `value`/`val`,
    /// `version`/`ver`, `create`/`c`, `mod`/`m`, `lease`; OP one of `=`, `!=`, `<`, `>`; VALUE a
    /// quoted string (numbers may also be bare; a lease is hexadecimal).
    static func compare(_ line: String) throws -> Compare {
        guard let open = line.firstIndex(of: "(") else { throw SyntaxError(message: "malformed comparison: \(line)") }
        let target = line[..<open].trimmingCharacters(in: .whitespaces)
        var rest = Substring(line[line.index(after: open)...])
        guard let key = quoted(&rest), rest.hasPrefix(")") else {
            throw SyntaxError(message: "malformed comparison: \(line) (expected \(target)(\"key\"))")
        }
        let words = tokens(String(rest.dropFirst()))
        guard words.count == 2 else { throw SyntaxError(message: "malformed comparison: \(line) (expected an operator and a value)") }
        let (op, value) = (words[0], words[1])
        guard ["=", "!=", "<", ">"].contains(op) else { throw SyntaxError(message: "unknown operator \"\(op)\" in: \(line)") }
        switch target {
        case "value", "val":
            return make(.value(key), op, bytes: value)
        case "version", "ver", "create", "c", "mod", "m", "lease":
            let number: Int64?
            if target == "lease" {
                number = UInt64(value, radix: 16).map { Int64(bitPattern: $0) }
            } else {
                number = Int64(value)
            }
            guard let number else { throw SyntaxError(message: "bad number \"\(value)\" in: \(line)") }
            let field: Compare.Target
            switch target {
            case "version", "ver": field = .version(key)
            case "create", "c": field = .createRevision(key)
            case "mod", "m": field = .modRevision(key)
            default: field = .lease(key)
            }
            return make(field, op, number: number)
        default:
            throw SyntaxError(message: "unknown comparison target \"\(target)\" in: \(line)")
        }
    }

    private static func make(_ target: Compare.Target, _ op: String, bytes: String) -> Compare {
        switch op {
        case "=": target == bytes
        case "!=": target != bytes
        case "<": target < bytes
        default: target > bytes
        }
    }

    private static func make(_ target: Compare.Target, _ op: String, number: Int64) -> Compare {
        switch op {
        case "=": target == number
        case "!=": target != number
        case "<": target < number
        default: target > number
        }
    }

    /// Parses one operation: `put [--lease=ID] [--prev-kv] KEY VALUE`,
    /// `get [--prefix|--from-key] [--keys-only] [--limit=N] [--rev=N] KEY [END]`,
    /// `del [--prefix|--from-key] [--prev-kv] KEY [END]`.
    static func operation(_ line: String) throws -> TxnOperation {
        let words = tokens(line)
        guard let verb = words.first else { throw SyntaxError(message: "empty operation") }
        var flags: [String: String] = [:]
        var positional: [String] = []
        for word in words.dropFirst() {
            if word.hasPrefix("--") {
                let parts = word.dropFirst(2).split(separator: "=", maxSplits: 1)
                flags[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            } else {
                positional.append(word)
            }
        }
        func number(_ flag: String) throws -> Int64 {
            guard let text = flags[flag] else { return 0 }
            guard let value = Int64(text), value >= 0 else { throw SyntaxError(message: "bad --\(flag) in: \(line)") }
            return value
        }
        func allow(_ known: Set<String>) throws {
            if let unknown = flags.keys.sorted().first(where: { !known.contains($0) }) {
                throw SyntaxError(message: "unknown flag --\(unknown) in: \(line)")
            }
        }
        switch verb {
        case "put":
            try allow(["lease", "prev-kv"])
            guard positional.count == 2 else { throw SyntaxError(message: "put takes a key and a value: \(line)") }
            var lease: LeaseID?
            if let text = flags["lease"] {
                guard let argument = LeaseArgument(argument: text) else { throw SyntaxError(message: "bad --lease in: \(line)") }
                lease = argument.id
            }
            return .put(positional[0], positional[1], lease: lease, prevKV: flags["prev-kv"] != nil)
        case "get":
            try allow(["prefix", "from-key", "keys-only", "limit", "rev"])
            var options = GetOptions(limit: try number("limit"), revision: try number("rev"))
            options.keysOnly = flags["keys-only"] != nil
            return .get(try range(positional, flags: flags, line: line), options: options)
        case "del", "delete":
            try allow(["prefix", "from-key", "prev-kv"])
            return .delete(try range(positional, flags: flags, line: line), prevKV: flags["prev-kv"] != nil)
        default:
            throw SyntaxError(message: "unknown operation \"\(verb)\" (expected put, get or del): \(line)")
        }
    }

    private static func range(_ positional: [String], flags: [String: String], line: String) throws -> KeyRange {
        guard (1...2).contains(positional.count) else { throw SyntaxError(message: "expected KEY [RANGE_END]: \(line)") }
        do {
            return try KeyRangeArguments.range(
                key: positional[0], end: positional.count > 1 ? positional[1] : nil, prefix: flags["prefix"] != nil,
                fromKey: flags["from-key"] != nil)
        } catch let error as ValidationError {
            throw SyntaxError(message: "\(error.message): \(line)")
        }
    }

    /// Splits `line` into words at spaces; a word in double quotes may hold spaces and
    /// backslash escapes (`\"`, `\\`, `\n`, `\t`).
    static func tokens(_ line: String) -> [String] {
        var words: [String] = []
        var rest = Substring(line)
        while true {
            rest = rest.drop { $0 == " " || $0 == "\t" }
            guard let first = rest.first else { return words }
            if first == "\"", let word = quoted(&rest) {
                words.append(word)
            } else {
                let word = rest.prefix { $0 != " " && $0 != "\t" }
                words.append(String(word))
                rest = rest.dropFirst(word.count)
            }
        }
    }

    /// Reads a double-quoted string at the start of `text` (after spaces) and advances past it;
    /// nil (leaving `text` alone) if there is none.
    static func quoted(_ text: inout Substring) -> String? {
        var rest = text.drop { $0 == " " }
        guard rest.first == "\"" else { return nil }
        rest = rest.dropFirst()
        var result = ""
        while let character = rest.first {
            rest = rest.dropFirst()
            switch character {
            case "\"":
                text = rest
                return result
            case "\\":
                guard let escaped = rest.first else { return nil }
                rest = rest.dropFirst()
                switch escaped {
                case "n": result.append("\n")
                case "t": result.append("\t")
                default: result.append(escaped)
                }
            default:
                result.append(character)
            }
        }
        return nil
    }
}
