/// Why a configuration was refused: one setting, its value, and what was expected instead.
///
/// ``line`` renders the error as the single line the server prints before exiting, for example
/// `statehouse: invalid value "abc" for --heartbeat-interval: expected a whole number of
/// milliseconds greater than 0`.
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of mistake the error reports.
    public enum Kind: Sendable, Hashable {
        /// A known option was given a value it does not accept.
        case invalidValue
        /// A flag that takes a value was the last argument.
        case missingValue
        /// A command-line flag that does not exist, or a malformed one such as `---name`.
        case unknownFlag
        /// An argument that is not a flag (the server takes no positional arguments).
        case unexpectedArgument
        /// An environment variable starting with `STATEHOUSE_` that names no option.
        case unknownEnvironmentVariable
        /// A config-file key that names no option.
        case unknownConfigKey
        /// A config-file line that is not a `key: value` line.
        case malformedConfigFile
    }

    /// Where the value at fault came from.
    public enum Source: Sendable, Hashable {
        /// The command line.
        case commandLine
        /// An environment variable.
        case environment(variable: String)
        /// A line of the config file (lines count from 1).
        case configFile(path: String, line: Int)
        /// The option was not set, and its default was refused (for example, a default
        /// `--election-timeout` shorter than five times a configured `--heartbeat-interval`).
        case defaultValue
    }

    /// What kind of mistake this is.
    public var kind: Kind
    /// The option at fault as a flag (`--heartbeat-interval`); for an unknown flag, environment
    /// variable or config-file key, the name exactly as it was written.
    public var flag: String
    /// The value refused (for a list, the element at fault), or the offending argument or line.
    public var value: String
    /// What would have been accepted, as a phrase that follows "expected".
    public var expected: String
    /// Where the value came from.
    public var source: Source

    /// Creates an error.
    public init(kind: Kind = .invalidValue, flag: String, value: String, expected: String, source: Source = .commandLine) {
        self.kind = kind
        self.flag = flag
        self.value = value
        self.expected = expected
        self.source = source
    }

    /// The error as one line, naming the setting, its value and what was expected.
    public var line: String {
        let problem: String
        switch kind {
        case .invalidValue:
            problem = "invalid value \(quoted(value)) for \(flag)\(origin)"
        case .missingValue:
            problem = "missing value for \(flag)"
        case .unknownFlag:
            problem = "unknown flag \(quoted(flag))"
        case .unexpectedArgument:
            problem = "unexpected argument \(quoted(value))"
        case .unknownEnvironmentVariable:
            problem = "unknown environment variable \(quoted(flag))"
        case .unknownConfigKey:
            problem = "unknown key \(quoted(flag)) in \(location)"
        case .malformedConfigFile:
            problem = "cannot read \(quoted(value)) in \(location)"
        }
        return "statehouse: \(problem): expected \(oneLine(expected))"
    }

    public var description: String { line }

    /// Where an invalid value came from, as a parenthesized suffix (empty for the command line).
    private var origin: String {
        switch source {
        case .commandLine: return ""
        case .environment(let variable): return " (from \(variable))"
        case .configFile: return " (from \(location))"
        case .defaultValue: return " (the default)"
        }
    }

    /// The config file and line the error is about.
    private var location: String {
        switch source {
        case .configFile(let path, let line): return "config file \(quoted(path)), line \(line)"
        case .commandLine, .environment, .defaultValue: return "the config file"
        }
    }
}

/// `text` in double quotes, with quotes, backslashes and control characters escaped so that it
/// stays on one line.
func quoted(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        case "\t": result += "\\t"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F {
                result += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
    }
    return result + "\""
}

/// `text` with line breaks replaced by spaces.
func oneLine(_ text: String) -> String {
    String(String.UnicodeScalarView(text.unicodeScalars.map { $0 == "\n" || $0 == "\r" ? " " : $0 }))
}
