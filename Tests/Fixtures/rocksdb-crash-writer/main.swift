// Test helper for RocksDBTests: writes `count` keys to the database at `path`
// with sync=true and prints each key to standard output once its write has
// returned. The test kills this process with SIGKILL part-way through.
//
// Usage: rocksdb-crash-writer <path> <count>
import Glibc
import RocksDB

/// Writes `line` and a newline to `descriptor` with a single unbuffered write.
func writeLine(_ line: String, to descriptor: Int32) {
    let bytes = Array((line + "\n").utf8)
    let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    if written != bytes.count {
        exit(3)
    }
}

let arguments = CommandLine.arguments
guard arguments.count == 3, let count = Int(arguments[2]) else {
    writeLine("usage: rocksdb-crash-writer <path> <count>", to: STDERR_FILENO)
    exit(2)
}
do {
    let database = try Database(path: arguments[1])
    for index in 0..<count {
        let key = "key-\(index)"
        try database.put(Array(key.utf8), Array("value-\(index)".utf8), sync: true)
        writeLine(key, to: STDOUT_FILENO)
    }
} catch {
    writeLine("error: \(error)", to: STDERR_FILENO)
    exit(1)
}
