import ArgumentParser
import Foundation
import StatehouseClient
import Synchronization

/// `snapshot`: backs up a member's database.
struct SnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Backs up a member's database.",
        subcommands: [Save.self])

    /// `snapshot save`.
    struct Save: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Streams a backup of a member's database into a file.",
            discussion: """
                The backup comes from the first endpoint that answers (give one endpoint to choose the \
                member). It is written to FILE.part and moved to FILE once its SHA-256 trailer has been \
                checked, so a partial backup never appears at FILE. While it streams, a progress bar is \
                drawn on standard error if that is a terminal. Prints "Snapshot saved at FILE"; -w json \
                {"path", "size"}.
                """)

        @Argument(help: "Where to write the backup.")
        var file: String

        @OptionGroup var global: GlobalOptions

        mutating func validate() throws {
            if file.isEmpty { throw ValidationError("the file name is empty") }
        }

        func run() async throws {
            let bar = isatty(STDERR_FILENO) == 1 ? ProgressBar() : nil
            let file = self.file
            let size = try await global.withClient { client in
                try await client.snapshot(to: file) { received, remaining in bar?.update(received, of: received + remaining) }
            }
            bar?.finish()
            switch global.writeOut {
            case .json: emit([JSONValue.object([("path", .string(file)), ("size", .int(size))]).rendered])
            case .simple, .table: emit(["Snapshot saved at \(file)"])
            }
        }
    }
}

/// A one-line progress bar on standard error, redrawn when the percentage changes.
final class ProgressBar: Sendable {
    private let lastPercent = Atomic<Int>(-1)

    /// Redraws the bar for `done` of `total` bytes.
    func update(_ done: Int64, of total: Int64) {
        let percent = total > 0 ? Int(done * 100 / total) : 0
        guard lastPercent.exchange(percent, ordering: .relaxed) != percent else { return }
        let width = 30
        let filled = width * percent / 100
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        FileHandle.standardError.write(Data("\r[\(bar)] \(percent)% \(humanBytes(done)) / \(humanBytes(total))".utf8))
    }

    /// Ends the bar's line.
    func finish() {
        FileHandle.standardError.write(Data("\n".utf8))
    }
}

/// `move-leader`: hands the leadership to another member.
struct MoveLeader: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "move-leader",
        abstract: "Hands the Raft leadership to another member.",
        discussion: """
            The request goes to the current leader, found from the endpoints' status (so --endpoints \
            must include the leader). Prints "Leadership transferred from <old ID> to <new ID>".
            """)

    @Argument(help: "The member ID of the new leader (hexadecimal).")
    var id: MemberID

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let header = try await global.withClient { try await $0.moveLeader(to: id.value) }
        switch global.writeOut {
        case .json:
            emit([
                JSONValue.object([("header", header.json), ("from", .string(hex(header.memberID))), ("to", .string(hex(id.value)))])
                    .rendered
            ])
        case .simple, .table: emit(["Leadership transferred from \(hex(header.memberID)) to \(hex(id.value))"])
        }
    }
}

/// `alarm`: lists and disarms alarms.
struct AlarmCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alarm",
        abstract: "Lists and disarms alarms (NOSPACE, CORRUPT).",
        discussion: "Each alarm is printed as \"memberID:<decimal ID> alarm:<NOSPACE|CORRUPT>\"; -w json {\"alarms\": [...]}.",
        subcommands: [List.self, Disarm.self])

    /// `alarm list`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lists the raised alarms.")

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let alarms = try await global.withClient { try await $0.alarms() }
            AlarmOutput(alarms: alarms).print(as: global.writeOut)
        }
    }

    /// `alarm disarm`.
    struct Disarm: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disarms every raised alarm and prints those disarmed.")

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let alarms = try await global.withClient { client in
                let raised = try await client.alarms()
                for alarm in raised { try await client.disarm(alarm) }
                return raised
            }
            AlarmOutput(alarms: alarms).print(as: global.writeOut)
        }
    }
}

/// What `alarm list` and `alarm disarm` print.
struct AlarmOutput: Printable {
    var alarms: [Alarm]

    static func name(_ alarm: Alarm) -> String { alarm.kind == .noSpace ? "NOSPACE" : "CORRUPT" }

    var simpleLines: [String] { alarms.map { "memberID:\($0.memberID) alarm:\(Self.name($0))" } }

    var json: JSONValue {
        .object([
            (
                "alarms",
                .array(alarms.map { .object([("member_id", .string(hex($0.memberID))), ("alarm", .string(Self.name($0)))]) })
            )
        ])
    }
}
