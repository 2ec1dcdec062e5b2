import ArgumentParser
import Foundation
import Linearizability

@main
struct CheckHistory: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-history",
        abstract: "Checks a recorded client history for linearizability.",
        discussion: """
            Reads the history `make chaos` and `make bench-availability` record (Tools/go/src/nemesis): \
            one operation per line, `CLIENT CALL RETURN OP KEY ARGS... RESULT` with OP put, get, cas \
            (compare the value) or casv (compare the version), times in nanoseconds, `-` for an absent \
            value or an unknown return. Refused (failed) operations are left out; a write with an \
            unknown outcome may have taken effect at any time after its call. Keys are checked \
            independently with the project's checker (Wing-Gong/Lowe search on KeyValueModel); an \
            unknown write whose value no other operation mentions is checked as writing one shared \
            placeholder, which cannot change the verdict but lets the search treat such writes as \
            interchangeable. \
            Prints the counts and the verdict; exits 0 when the history is linearizable, 1 when it is \
            not or when the search ran out of its step budget on some key, 2 on an unreadable file.
            """)

    @Argument(help: "The history file.")
    var path: String

    @Option(help: "Search steps allowed per key before the verdict is unknown (which fails).")
    var stepBudget = 50_000_000

    func run() throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            print("check-history: cannot read \(path)")
            throw ExitCode(2)
        }
        let recorded: RecordedHistory
        do {
            recorded = try RecordedHistory(parsing: String(decoding: data, as: UTF8.self))
        } catch {
            print("check-history: \(path): \(error)")
            throw ExitCode(2)
        }
        let counts = recorded.counts
        print(
            "operations \(counts.operations): ok \(counts.ok), failed \(counts.failed), unknown \(counts.unknown)"
                + " (\(counts.unknownWrites) writes); checking \(recorded.history.count)")
        let result = LinearizabilityChecker(model: KeyValueModel(), stepBudget: stepBudget).check(
            recorded.history.forgettingUnobservedValues())
        switch result {
        case .ok:
            print("verdict: linearizable")
        case .illegal(let violation):
            print("verdict: NOT linearizable\n\(violation)")
            throw ExitCode(1)
        case .unknown(let partitions):
            print(
                "verdict: unknown: the search ran out of \(stepBudget) steps on key(s) \(partitions.joined(separator: ", "))"
                    + " (raise --step-budget); not a pass")
            throw ExitCode(1)
        }
    }
}
