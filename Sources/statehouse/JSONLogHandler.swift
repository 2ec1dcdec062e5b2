import Foundation
import Logging

/// Writes each log message to standard error as one JSON object on one line (`--log-format
/// json`): `level`, `ts` (RFC 3339, UTC, milliseconds), `logger`, `msg`, then the metadata's fields.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { $1 } }
        var object: [(String, String)] = [
            ("level", "\(event.level)"), ("ts", Self.timestamp()), ("logger", label), ("msg", "\(event.message)"),
        ]
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) { object.append((key, "\(value)")) }
        let line = "{" + object.map { Self.quoted($0.0) + ":" + Self.quoted($0.1) }.joined(separator: ",") + "}\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    /// Now in RFC 3339 with milliseconds, UTC.
    static func timestamp() -> String {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        var broken = tm()
        var seconds = time.tv_sec
        gmtime_r(&seconds, &broken)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", broken.tm_year + 1900, broken.tm_mon + 1, broken.tm_mday, broken.tm_hour,
            broken.tm_min, broken.tm_sec, time.tv_nsec / 1_000_000)
    }

    /// `text` as a JSON string.
    static func quoted(_ text: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
        let array = String(decoding: data, as: UTF8.self)
        return String(array.dropFirst().dropLast())
    }
}
