/// A key/value pair as stored at one revision, mirroring `mvccpb.KeyValue`.
public struct KeyValue: Hashable, Sendable {
    /// The key. Never empty for a stored pair.
    public var key: [UInt8]
    /// The revision of the last creation of this key.
    public var createRevision: Int64
    /// The revision of the last modification of this key.
    public var modRevision: Int64
    /// The number of modifications since creation: 1 on creation, 0 for a deleted key.
    public var version: Int64
    /// The value.
    public var value: [UInt8]
    /// The lease attached to the key, or 0 for none.
    public var lease: Int64

    /// Creates a key/value pair.
    public init(
        key: [UInt8],
        createRevision: Int64 = 0,
        modRevision: Int64 = 0,
        version: Int64 = 0,
        value: [UInt8] = [],
        lease: Int64 = 0
    ) {
        self.key = key
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.value = value
        self.lease = lease
    }
}

/// A revision: the main revision of a write request plus the index of the change within it.
///
/// Revisions order first by `main`, then by `sub`.
public struct Revision: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The store revision of the write request that made the change.
    public var main: Int64
    /// The position of the change within its write request, starting at 0.
    public var sub: Int64

    /// Creates a revision.
    public init(main: Int64, sub: Int64 = 0) {
        self.main = main
        self.sub = sub
    }

    /// Returns whether `lhs` orders before `rhs`.
    public static func < (lhs: Revision, rhs: Revision) -> Bool {
        lhs.main != rhs.main ? lhs.main < rhs.main : lhs.sub < rhs.sub
    }

    /// A textual form, `main.sub`.
    public var description: String { "\(main).\(sub)" }
}

/// A watch event, mirroring `mvccpb.Event`.
public struct Event: Hashable, Sendable {
    /// The kind of change, mirroring `mvccpb.Event.EventType`.
    public enum Kind: Int, Hashable, Sendable {
        /// The key was created or modified.
        case put = 0
        /// The key was deleted.
        case delete = 1
    }

    /// The kind of change.
    public var kind: Kind
    /// The key/value after the change. For a delete it carries only the key and
    /// `modRevision`, the revision of the deletion.
    public var kv: KeyValue
    /// The key/value before the change, if the key existed (and its previous version
    /// has not been compacted).
    public var prevKV: KeyValue?

    /// Creates an event.
    public init(kind: Kind, kv: KeyValue, prevKV: KeyValue? = nil) {
        self.kind = kind
        self.kv = kv
        self.prevKV = prevKV
    }
}

/// One write to the durable backend, produced by applying a request.
///
/// All mutations of one applied request must be written in one atomic batch (together with the
/// Raft applied index) so that the backend state equals the in-memory state.
public enum BackendMutation: Hashable, Sendable {
    /// Sets `key` to `value`.
    case put(key: [UInt8], value: [UInt8])
    /// Removes `key`.
    case delete(key: [UInt8])
}

/// The result of applying a request: the response, the backend mutations to persist, and the
/// watch events, in revision order.
public struct Applied<Response: Sendable>: Sendable {
    /// The response for the client.
    public var response: Response
    /// The backend mutations to persist atomically; empty for requests that change nothing.
    public var mutations: [BackendMutation]
    /// The watch events produced, in revision order; empty unless keys were written.
    public var events: [Event]

    /// Creates an applied result.
    public init(response: Response, mutations: [BackendMutation] = [], events: [Event] = []) {
        self.response = response
        self.mutations = mutations
        self.events = events
    }
}
