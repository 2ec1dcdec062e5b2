public import Foundation

/// Returns the executable product `name` that `swift build` put next to the running test bundle
/// (searching the bundle's directory and up to two above it), or nil if it was not built.
public func builtExecutable(named name: String) -> URL? {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<3 {
        let candidate = directory.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        directory.deleteLastPathComponent()
    }
    return nil
}
