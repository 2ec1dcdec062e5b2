import Foundation

/// The JSON coders the `Codable` reads and writes use unless given others: keys sorted, so the
/// same value is always stored as the same bytes.
public enum StatehouseJSON {
    /// A JSON encoder with sorted keys.
    public static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    /// A JSON decoder.
    public static func makeDecoder() -> JSONDecoder { JSONDecoder() }
}

extension KeyValue {
    /// Decodes the value as JSON.
    ///
    /// - Throws: The decoder's error if the value is not a `Value`.
    public func decode<Value: Decodable>(
        _ type: Value.Type = Value.self, decoder: JSONDecoder = StatehouseJSON.makeDecoder()
    ) throws -> Value {
        try decoder.decode(type, from: Data(value))
    }
}

extension Operation {
    /// Writes `value`, encoded as JSON, under `key`.
    ///
    /// - Throws: The encoder's error if `value` cannot be encoded.
    public static func put(
        _ key: some BytesConvertible, encoding value: some Encodable, lease: LeaseID? = nil,
        encoder: JSONEncoder = StatehouseJSON.makeEncoder()
    ) throws -> Operation {
        .put(key, Array(try encoder.encode(value)), lease: lease)
    }
}

extension KeyValueStore {
    /// Reads `key` and decodes its value as JSON; nil if the key does not exist.
    ///
    /// ```swift
    /// let settings = try await client.get("config/settings", as: Settings.self)
    /// ```
    ///
    /// - Throws: ``StatehouseError`` if the read fails; the decoder's error if the value is not
    ///   a `Value`.
    public func get<Value: Decodable>(
        _ key: some BytesConvertible, as type: Value.Type, decoder: JSONDecoder = StatehouseJSON.makeDecoder()
    ) async throws -> Value? {
        try await get(key, serializable: false).map { try $0.decode(type, decoder: decoder) }
    }

    /// Encodes `value` as JSON and writes it under `key`, attached to `lease` if given.
    ///
    /// ```swift
    /// try await client.put("config/settings", encoding: Settings(replicas: 3))
    /// ```
    @discardableResult
    public func put(
        _ key: some BytesConvertible, encoding value: some Encodable, lease: LeaseID? = nil,
        encoder: JSONEncoder = StatehouseJSON.makeEncoder()
    ) async throws -> PutResult {
        try await put(key, Array(try encoder.encode(value)), lease: lease, prevKV: false)
    }
}
