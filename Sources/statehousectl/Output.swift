import ArgumentParser
import Foundation
import StatehouseClient

/// How a command prints its result (`-w/--write-out`).
enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    /// Lines as etcdctl prints them.
    case simple
    /// One JSON object per result (per event for `watch` and `elect -l`), on one line.
    case json
    /// Aligned columns with a header row.
    case table
}

/// What a command prints, in each output format.
protocol Printable {
    /// The lines printed with `-w simple`.
    var simpleLines: [String] { get }
    /// The value printed with `-w json`.
    var json: JSONValue { get }
    /// The table printed with `-w table` (nil: the command prints its simple lines instead).
    var table: Table? { get }
}

extension Printable {
    var table: Table? { nil }

    /// Prints the value in `format` on standard output.
    func print(as format: OutputFormat) {
        switch format {
        case .simple: emit(simpleLines)
        case .json: emit([json.rendered])
        case .table: emit(table.map { $0.rendered } ?? simpleLines)
        }
    }
}

/// Writes each line followed by a newline to standard output, at once (unbuffered, so that
/// `watch` and `lock` output reaches a pipe or file as it happens).
func emit(_ lines: [String]) {
    guard !lines.isEmpty else { return }
    FileHandle.standardOutput.write(Data(lines.map { $0 + "\n" }.joined().utf8))
}

/// Writes one line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

// MARK: - JSON

/// A JSON value rendered with its object members in a fixed order (so output is stable and
/// diffs well), without escaping slashes.
indirect enum JSONValue: Sendable {
    case string(String)
    case int(Int64)
    case uint(UInt64)
    case bool(Bool)
    case array([JSONValue])
    case object([(String, JSONValue)])
    case null

    /// The value as compact JSON text.
    var rendered: String {
        switch self {
        case .string(let text): return Self.quoted(text)
        case .int(let value): return String(value)
        case .uint(let value): return String(value)
        case .bool(let value): return value ? "true" : "false"
        case .null: return "null"
        case .array(let values): return "[" + values.map(\.rendered).joined(separator: ",") + "]"
        case .object(let members):
            return "{" + members.map { Self.quoted($0.0) + ":" + $0.1.rendered }.joined(separator: ",") + "}"
        }
    }

    /// `text` as a JSON string literal.
    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                result +=
                    "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}

/// An ID (cluster, member, lease) as the commands print and take it: lowercase hexadecimal.
func hex(_ id: UInt64) -> String { String(id, radix: 16) }

/// A lease ID as etcdctl prints it: 16 hexadecimal digits.
func paddedHex(_ id: LeaseID) -> String {
    let digits = id.description
    return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
}

extension ResponseHeader {
    /// The header as JSON: IDs in hexadecimal, the revision and term as numbers.
    var json: JSONValue {
        .object([
            ("cluster_id", .string(hex(clusterID))), ("member_id", .string(hex(memberID))),
            ("revision", .int(revision)), ("raft_term", .uint(raftTerm)),
        ])
    }
}

extension KeyValue {
    /// The key-value pair as JSON: key and value as UTF-8 text.
    var json: JSONValue {
        .object([
            ("key", .string(keyString)), ("value", .string(valueString)), ("create_revision", .int(createRevision)),
            ("mod_revision", .int(modRevision)), ("version", .int(version)),
            ("lease", .string(lease == 0 ? "0" : LeaseID(lease).description)),
        ])
    }

    /// The key and the value on two lines, as etcdctl prints them.
    var simpleLines: [String] { [keyString, valueString] }
}

// MARK: - Tables

/// Rows under a header, printed with aligned columns in a box, as etcdctl's tables.
struct Table {
    /// The column titles.
    var header: [String]
    /// The cells, row by row.
    var rows: [[String]]

    /// The table as lines of text.
    var rendered: [String] {
        let widths = header.indices.map { column in
            ([header[column]] + rows.map { column < $0.count ? $0[column] : "" }).map(\.count).max() ?? 0
        }
        let rule = "+" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "+") + "+"
        func line(_ cells: [String], centered: Bool) -> String {
            let padded = widths.indices.map { column -> String in
                let cell = column < cells.count ? cells[column] : ""
                let space = widths[column] - cell.count
                let left = centered ? space / 2 : 0
                return String(repeating: " ", count: left) + cell + String(repeating: " ", count: space - left)
            }
            return "| " + padded.joined(separator: " | ") + " |"
        }
        return [rule, line(header, centered: true), rule] + rows.map { line($0, centered: false) } + [rule]
    }
}

/// A byte count as etcdctl prints it (go-humanize's SI units: `20 kB`, `1.2 MB`).
func humanBytes(_ bytes: Int64) -> String {
    guard bytes >= 10 else { return "\(bytes) B" }
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]
    let exponent = min(Int(floor(log(Double(bytes)) / log(1000))), units.count - 1)
    let value = (Double(bytes) / pow(1000, Double(exponent)) * 10).rounded() / 10
    return String(format: value < 10 ? "%.1f" : "%.0f", value) + " " + units[exponent]
}
