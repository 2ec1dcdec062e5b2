/// A client history recorded against real processes (the nemesis of `make chaos`), read from
/// its text form into a ``History`` of ``KeyValueModel`` operations.
///
/// One operation per line, fields separated by spaces; lines starting with `#` are comments:
///
///     CLIENT CALL RETURN put KEY VALUE RESULT        RESULT: ok | failed | unknown
///     CLIENT CALL RETURN get KEY RESULT              RESULT: VALUE VERSION | failed | unknown
///     CLIENT CALL RETURN cas KEY EXPECTED NEW RESULT  RESULT: true | false | failed | unknown
///     CLIENT CALL RETURN casv KEY VERSION NEW RESULT  RESULT: true | false | failed | unknown
///
/// `CALL` and `RETURN` are nanoseconds since the workload started (`RETURN` is `-` when the
/// outcome is unknown); a `VALUE` or `EXPECTED` of `-` means the key is absent. `cas` writes `NEW`
/// if the key holds `EXPECTED`, `casv` if its version is `VERSION`.
///
/// A `failed` operation was refused before it took effect and is left out of the history; so
/// is a read with an unknown outcome (it changed nothing). A write with an unknown outcome stays
/// in, as one that may have taken effect at any time after its call.
public struct RecordedHistory: Sendable {
    /// What the client saw, by outcome.
    public struct Counts: Sendable, Equatable {
        /// Operations recorded.
        public var operations = 0
        /// Operations answered by the server.
        public var ok = 0
        /// Operations refused before they took effect.
        public var failed = 0
        /// Operations whose outcome the client never learned.
        public var unknown = 0
        /// Writes among the unknown operations.
        public var unknownWrites = 0

        /// Creates zero counts.
        public init() {}
    }

    /// A line that does not follow the format.
    public struct ParseError: Error, Equatable, CustomStringConvertible {
        /// The 1-based line number.
        public var line: Int
        /// What is wrong with it.
        public var reason: String

        /// Creates the error of line `line`.
        public init(line: Int, reason: String) {
            self.line = line
            self.reason = reason
        }

        /// For example `line 3: unknown operation "del"`.
        public var description: String { "line \(line): \(reason)" }
    }

    /// The operations that go to the checker.
    public private(set) var history = History<KeyValueModel>()
    /// Every recorded operation, by outcome.
    public private(set) var counts = Counts()

    /// Reads a recorded history.
    public init(parsing text: String) throws(ParseError) {
        var number = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let fields = line.split(separator: " ")
            if fields.isEmpty || fields[0].hasPrefix("#") { continue }
            do {
                try add(fields.map(String.init))
            } catch {
                throw ParseError(line: number, reason: error.reason)
            }
        }
    }

    private struct FieldError: Error {
        var reason: String
    }

    private mutating func add(_ fields: [String]) throws(FieldError) {
        guard fields.count >= 6 else { throw FieldError(reason: "expected at least 6 fields, found \(fields.count)") }
        guard let client = Int(fields[0]) else { throw FieldError(reason: "client \"\(fields[0])\" is not a number") }
        guard let call = Int64(fields[1]) else { throw FieldError(reason: "call time \"\(fields[1])\" is not a number") }
        let key = fields[4]
        let (input, resultFields) = try Self.input(fields[3], key: key, arguments: fields[5...])
        let result = Array(resultFields)
        counts.operations += 1
        switch result {
        case ["failed"]:
            counts.failed += 1
            return
        case ["unknown"]:
            counts.unknown += 1
            guard case .get = input else {
                counts.unknownWrites += 1
                history.appendUnknown(client: client, input, call: call)
                return
            }
            return
        default:
            break
        }
        guard let returnTime = Int64(fields[2]), returnTime >= call else {
            throw FieldError(reason: "return time \"\(fields[2])\" is not a number at or after the call")
        }
        let output = try Self.output(of: input, result)
        counts.ok += 1
        history.append(client: client, input, call: call, return: returnTime, output: output)
    }

    /// The request of an operation and the fields left for its result.
    private static func input(
        _ name: String, key: String, arguments: ArraySlice<String>
    ) throws(FieldError) -> (KeyValueModel.Input, ArraySlice<String>) {
        func absentIfDash(_ field: String) -> String? { field == "-" ? nil : field }
        let needed = ["put": 1, "get": 0, "cas": 2, "casv": 2][name]
        guard let needed else { throw FieldError(reason: "unknown operation \"\(name)\"") }
        guard arguments.count > needed else { throw FieldError(reason: "\(name) needs \(needed) arguments and a result") }
        let values = Array(arguments.prefix(needed))
        let rest = arguments.dropFirst(needed)
        switch name {
        case "put":
            return (.put(key: key, value: values[0]), rest)
        case "get":
            return (.get(key: key), rest)
        case "cas":
            return (.compareAndSwap(key: key, expected: absentIfDash(values[0]), new: values[1]), rest)
        default:
            guard let version = Int64(values[0]) else { throw FieldError(reason: "version \"\(values[0])\" is not a number") }
            return (.compareVersionAndSwap(key: key, expectedVersion: version, new: values[1]), rest)
        }
    }

    /// The response an answered operation's result fields describe.
    private static func output(of input: KeyValueModel.Input, _ result: [String]) throws(FieldError) -> KeyValueModel.Output {
        switch input {
        case .put:
            guard result == ["ok"] else { throw FieldError(reason: "a put's result is ok, failed or unknown") }
            return .ok
        case .get:
            guard result.count == 2, let version = Int64(result[1]) else {
                throw FieldError(reason: "a get's result is VALUE VERSION, failed or unknown")
            }
            return .value(result[0] == "-" ? nil : result[0], version: version)
        default:
            guard result.count == 1, let swapped = Bool(result[0]) else {
                throw FieldError(reason: "a compare-and-swap's result is true, false, failed or unknown")
            }
            return .swapped(swapped)
        }
    }
}
