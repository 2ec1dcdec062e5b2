public import EtcdWire
import Foundation
public import StateMachine

extension KeyValue {
    /// Creates a key/value pair from its wire form, field by field.
    public init(_ wire: Mvccpb_KeyValue) {
        self.init(
            key: Array(wire.key),
            createRevision: wire.createRevision,
            modRevision: wire.modRevision,
            version: wire.version,
            value: Array(wire.value),
            lease: wire.lease
        )
    }
}

extension Mvccpb_KeyValue {
    /// Creates the wire form of a key/value pair, field by field.
    public init(_ kv: KeyValue) {
        self.init()
        key = Data(kv.key)
        createRevision = kv.createRevision
        modRevision = kv.modRevision
        version = kv.version
        value = Data(kv.value)
        lease = kv.lease
    }
}

extension Event {
    /// Creates a watch event from its wire form; `nil` for an event type etcd does not define.
    ///
    /// `prevKV` is set only when the wire event carries `prev_kv`.
    public init?(_ wire: Mvccpb_Event) {
        let kind: Kind
        switch wire.type {
        case .put: kind = .put
        case .delete: kind = .delete
        case .UNRECOGNIZED: return nil
        }
        self.init(kind: kind, kv: KeyValue(wire.kv), prevKV: wire.hasPrevKv ? KeyValue(wire.prevKv) : nil)
    }
}

extension Mvccpb_Event {
    /// Creates the wire form of a watch event; `prev_kv` is present only when the event has one.
    public init(_ event: Event) {
        self.init()
        switch event.kind {
        case .put: type = .put
        case .delete: type = .delete
        }
        kv = Mvccpb_KeyValue(event.kv)
        if let prev = event.prevKV { prevKv = Mvccpb_KeyValue(prev) }
    }
}
