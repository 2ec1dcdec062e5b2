import Foundation
import RocksDB
import Testing

@Suite("Errors")
struct ErrorTests {
    @Test func openingARegularFileReportsRocksDBMessage() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/file"
            #expect(FileManager.default.createFile(atPath: path, contents: Data("x".utf8)))
            let error = #expect(throws: RocksDBError.self) { try Database(path: path) }
            #expect(error?.message.hasPrefix("IO error") == true)
            #expect(error?.message.contains(path) == true)
            #expect(error?.description == error?.message)
        }
    }

    @Test func errorIfExistsRejectsExistingDatabase() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/db"
            try Database(path: path, options: Database.Options(errorIfExists: true)).close()
            let error = #expect(throws: RocksDBError.self) {
                try Database(path: path, options: Database.Options(errorIfExists: true))
            }
            #expect(error?.message.hasPrefix("Invalid argument") == true)
            #expect(error?.message.contains("exists") == true)
        }
    }

    @Test func missingDatabaseWithoutCreateIfMissing() throws {
        try withTemporaryDirectory { directory in
            let error = #expect(throws: RocksDBError.self) {
                try Database(path: directory + "/missing", options: Database.Options(createIfMissing: false))
            }
            #expect(error?.message.contains("does not exist") == true)
        }
    }

    @Test func secondOpenOfSamePathFailsOnLock() throws {
        try withTemporaryDatabase { database, path in
            let error = #expect(throws: RocksDBError.self) { try Database(path: path) }
            #expect(error?.message.contains("LOCK") == true)
            try database.put(bytes("still"), bytes("usable"), sync: false)
        }
    }
}
