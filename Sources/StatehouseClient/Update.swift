import Foundation

extension KeyValueStore {
    /// Reads `key`, computes its new value from the old one with `transform`, and writes it
    /// only if nobody wrote the key in between (compare-and-swap on the key's mod revision);
    /// otherwise reads again and retries. Returns the value written.
    ///
    /// ```swift
    /// let counter = try await client.update("stats/visits", as: Int.self) { old in (old ?? 0) + 1 }
    /// ```
    ///
    /// `transform` gets nil when the key does not exist, and may run several times under
    /// contention, so it must not have effects of its own. Values are JSON.
    ///
    /// - Parameters:
    ///   - key: The key to update.
    ///   - type: The value's type.
    ///   - maxAttempts: How many read-and-write rounds to try before giving up.
    ///   - encoder: Encodes the new value.
    ///   - decoder: Decodes the current value.
    ///   - transform: The new value, given the current one.
    /// - Throws: ``StatehouseError`` with code `conflict` if every attempt lost the race, or
    ///   the error of a failed call; whatever `transform` throws (then nothing is written).
    @discardableResult
    public func update<Value: Codable>(
        _ key: some BytesConvertible, as type: Value.Type = Value.self, maxAttempts: Int = 64,
        encoder: JSONEncoder = StatehouseJSON.makeEncoder(), decoder: JSONDecoder = StatehouseJSON.makeDecoder(),
        _ transform: (Value?) async throws -> Value
    ) async throws -> Value {
        let bytes = key.statehouseBytes
        for attempt in 0..<max(1, maxAttempts) {
            let current = try await get(bytes, serializable: false)
            let new = try await transform(try current.map { try $0.decode(type, decoder: decoder) })
            let guarded: Compare =
                current.map { .modRevision(bytes) == $0.modRevision } ?? (.createRevision(bytes) == 0)
            let written = try await commit(Txn().when(guarded).then(.put(bytes, encoding: new, encoder: encoder)))
            if written.succeeded { return new }
            // Lost the race: back off a little (more each time, with jitter) before reading again.
            try await Task.sleep(for: .microseconds(Int.random(in: 0...(1 << min(attempt, 10)) * 100)))
        }
        throw StatehouseError(.conflict, "\(String(decoding: bytes, as: UTF8.self)) changed on every one of \(maxAttempts) attempts")
    }
}
