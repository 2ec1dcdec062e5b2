/// Reading settings from the three places they come from: the command line, the environment and
/// the config file.
extension ServerConfiguration {
    /// What the command line holds.
    enum CommandLine {
        case help
        case version
        case settings([Option: Setting], validateOnly: Bool)
    }

    /// Reads the command line the way Go's flag package does.
    static func parseCommandLine(_ arguments: [String]) throws(ConfigurationError) -> CommandLine {
        var settings: [Option: Setting] = [:]
        var wantsVersion = false
        var validateOnly = false
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                if index < arguments.endIndex { throw unexpectedArgument(arguments[index]) }
                break
            }
            guard argument.hasPrefix("-"), argument != "-" else { throw unexpectedArgument(argument) }
            let dashes = argument.hasPrefix("--") ? 2 : 1
            let body = argument.dropFirst(dashes)
            guard let first = body.first, first != "-", first != "=" else {
                throw ConfigurationError(
                    kind: .unknownFlag, flag: argument, value: "", expected: "a flag written --flag, --flag=value or -flag")
            }
            let name: Substring
            var value: String?
            if let equals = body.firstIndex(of: "=") {
                name = body[..<equals]
                value = String(body[body.index(after: equals)...])
            } else {
                name = body
            }
            let written = String(argument.prefix(dashes) + name)
            switch name {
            case "help", "h":
                if try boolean(value, flag: written) { return .help }
                continue
            case "version":
                wantsVersion = try boolean(value, flag: written)
                continue
            case "validate-config":
                validateOnly = try boolean(value, flag: written)
                continue
            default:
                break
            }
            guard let option = Option(rawValue: String(name)) else {
                throw ConfigurationError(
                    kind: .unknownFlag, flag: written, value: value ?? "", expected: "one of the flags listed by --help")
            }
            if value == nil, option.isBoolean {
                value = "true"
            } else if value == nil {
                guard index < arguments.endIndex else {
                    throw ConfigurationError(
                        kind: .missingValue, flag: written, value: "", expected: "a value after \(written), as in \(written)=value")
                }
                value = arguments[index]
                index += 1
            }
            settings[option] = Setting(text: value ?? "", source: .commandLine)
        }
        return wantsVersion ? .version : .settings(settings, validateOnly: validateOnly)
    }

    /// The value of a boolean flag such as `--version` or `--version=false`, spelled as Go's
    /// `strconv.ParseBool` accepts.
    private static func boolean(_ value: String?, flag: String) throws(ConfigurationError) -> Bool {
        switch value {
        case nil, "1", "t", "T", "true", "TRUE", "True": return true
        case "0", "f", "F", "false", "FALSE", "False": return false
        case let value?:
            throw ConfigurationError(flag: flag, value: value, expected: "no value, or true or false")
        }
    }

    private static func unexpectedArgument(_ argument: String) -> ConfigurationError {
        ConfigurationError(
            kind: .unexpectedArgument, flag: "", value: argument,
            expected: "only flags, such as --name n1 (statehouse takes no other arguments)")
    }

    /// The `STATEHOUSE_` variables that belong to the tools rather than the server: statehousectl's
    /// endpoints, and what `statehousectl lock` gives the command it runs. The server ignores them,
    /// so that it starts from a shell (or under a lock) where they are set.
    static let clientVariables: Set<String> = ["STATEHOUSE_ENDPOINTS", "STATEHOUSE_LOCK_KEY", "STATEHOUSE_FENCING_TOKEN"]

    /// Reads the `STATEHOUSE_` variables of the environment, refusing any that names no option
    /// unless it is one of ``clientVariables``.
    static func parseEnvironment(_ environment: [String: String]) throws(ConfigurationError) -> [Option: Setting] {
        var settings: [Option: Setting] = [:]
        let ours = environment.filter { $0.key.hasPrefix("STATEHOUSE_") && !clientVariables.contains($0.key) }
        for variable in ours.keys.sorted() {
            guard let option = Option(environmentVariable: variable) else {
                throw ConfigurationError(
                    kind: .unknownEnvironmentVariable, flag: variable, value: ours[variable] ?? "",
                    expected: "one of the STATEHOUSE_ variables listed by --help",
                    source: .environment(variable: variable))
            }
            if let text = ours[variable], !text.isEmpty {
                settings[option] = Setting(text: text, source: .environment(variable: variable))
            }
        }
        return settings
    }

    /// Reads a config file of YAML `key: value` lines with scalar values.
    ///
    /// Accepted: blank lines, `#` comments (whole lines, or after a value and a space), a `---`
    /// document start, and values plain, `'single quoted'` (`''` for a quote) or `"double
    /// quoted"` (with `\"`, `\\`, `\n` and `\t`). An empty value, `~` or `null` is the empty
    /// string. Each key may appear once.
    static func parseConfigFile(_ text: String, path: String) throws(ConfigurationError) -> [Option: Setting] {
        var settings: [Option: Setting] = [:]
        var lineNumber = 0
        var contents = Substring(text)
        if contents.hasPrefix("\u{FEFF}") { contents = contents.dropFirst() }
        for rawLine in contents.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNumber += 1
            let source = ConfigurationError.Source.configFile(path: path, line: lineNumber)
            func malformed(_ expected: String) -> ConfigurationError {
                ConfigurationError(
                    kind: .malformedConfigFile, flag: "--config-file", value: String(trimmed(rawLine)), expected: expected,
                    source: source)
            }
            let line = trimmed(rawLine)
            if line.isEmpty || line.hasPrefix("#") || (line == "---" && settings.isEmpty) { continue }
            if let first = rawLine.first, first == " " || first == "\t" {
                throw malformed("a \"key: value\" line starting at the first column (nested values are not supported)")
            }
            if line.hasPrefix("- ") || line == "-" {
                throw malformed("a \"key: value\" line (write a list as one comma-separated value)")
            }
            guard let colon = line.firstIndex(of: ":") else {
                throw malformed("a \"key: value\" line")
            }
            let key = String(line[..<colon])
            let rest = line[line.index(after: colon)...]
            guard rest.isEmpty || rest.first == " " || rest.first == "\t" else {
                throw malformed("a \"key: value\" line, with a space after the colon")
            }
            guard let option = Option(rawValue: key), option.isConfigFileKey else {
                throw ConfigurationError(
                    kind: .unknownConfigKey, flag: key, value: String(trimmed(rest)),
                    expected: key == Option.configFile.rawValue
                        ? "no config-file key (a config file cannot name another)"
                        : "one of the flag names listed by --help, without the dashes",
                    source: source)
            }
            guard settings[option] == nil else {
                throw malformed("each key at most once, but \(key) was already set")
            }
            guard let value = scalar(trimmed(rest)) else {
                throw malformed(
                    "\"\(key): value\" with a plain or quoted value, closed quotes and nothing but a comment after it"
                        + " (write a list as one comma-separated value)")
            }
            settings[option] = Setting(text: value, source: source)
        }
        return settings
    }

    /// The scalar a YAML value spells, or nil if it is not one this reader accepts.
    private static func scalar(_ text: Substring) -> String? {
        guard let first = text.first else { return "" }
        switch first {
        case "\"", "'":
            var result = ""
            var index = text.index(after: text.startIndex)
            while index < text.endIndex {
                let character = text[index]
                index = text.index(after: index)
                if character == first {
                    if first == "'", index < text.endIndex, text[index] == "'" {
                        result.append("'")
                        index = text.index(after: index)
                        continue
                    }
                    let after = trimmed(text[index...])
                    return after.isEmpty || after.hasPrefix("#") ? result : nil
                }
                if first == "\"", character == "\\" {
                    guard index < text.endIndex else { return nil }
                    let escaped = text[index]
                    index = text.index(after: index)
                    switch escaped {
                    case "\"", "\\", "/": result.append(escaped)
                    case "n": result.append("\n")
                    case "t": result.append("\t")
                    default: return nil
                    }
                    continue
                }
                result.append(character)
            }
            return nil
        case "[", "{", "|", ">", "&", "*", "!", "%", "@", "`":
            return nil
        default:
            var value = text
            if let comment = value.firstRange(of: " #") ?? value.firstRange(of: "\t#") {
                value = trimmed(value[..<comment.lowerBound])
            }
            return value == "~" || value == "null" ? "" : String(value)
        }
    }
}

/// `text` without leading and trailing spaces, tabs and carriage returns.
func trimmed(_ text: Substring) -> Substring {
    let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
    guard let start = text.firstIndex(where: { !isBlank($0) }) else { return text[text.endIndex...] }
    let end = text.lastIndex(where: { !isBlank($0) })!
    return text[start...end]
}
