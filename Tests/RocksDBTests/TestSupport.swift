import Foundation
import RocksDB

/// The UTF-8 bytes of `string`.
func bytes(_ string: String) -> [UInt8] {
    Array(string.utf8)
}

/// Runs `body` with the path of a fresh, empty directory that is removed afterwards.
func withTemporaryDirectory<Result>(_ body: (String) throws -> Result) throws -> Result {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("rocksdb-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url.path)
}

/// Runs `body` with a database opened in a fresh temporary directory.
func withTemporaryDatabase<Result>(
    options: Database.Options = Database.Options(),
    _ body: (Database, String) throws -> Result
) throws -> Result {
    try withTemporaryDirectory { directory in
        let path = directory + "/db"
        let database = try Database(path: path, options: options)
        return try body(database, path)
    }
}

extension Database {
    /// Stores each pair of `entries` without syncing.
    func put(_ entries: [(String, String)]) throws {
        for (key, value) in entries {
            try put(bytes(key), bytes(value), sync: false)
        }
    }
}

/// The keys of `entries`, decoded as UTF-8.
func keys(_ entries: [Database.Entry]) -> [String] {
    entries.map { String(decoding: $0.key, as: UTF8.self) }
}

/// Like `withTemporaryDirectory`, for async bodies.
func withTemporaryDirectoryAsync<Result>(_ body: (String) async throws -> Result) async throws -> Result {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("rocksdb-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try await body(url.path)
}
