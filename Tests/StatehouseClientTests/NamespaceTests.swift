import Primitives
import Testing

@testable import StatehouseClient

/// How a ``KeyNamespace`` moves keys and ranges under its prefix and back, without a cluster.
@Suite("Key namespaces")
struct NamespaceTests {
    private let namespace = KeyNamespace(
        client: try! StatehouseClient(configuration: StatehouseClientConfiguration(endpoints: ["127.0.0.1:1"])), prefix: "t/")

    @Test("Ranges move under the prefix; ranges to the end of the key space end at the namespace's end")
    func ranges() {
        #expect(namespace.map(.key("a")) == KeyRange.key("t/a"))
        #expect(namespace.map(.prefix("a/")) == KeyRange.prefix("t/a/"))
        #expect(namespace.map(.all) == KeyRange.prefix("t/"))
        #expect(namespace.map(.prefix("")) == KeyRange.prefix("t/"))
        #expect(namespace.map(.from("m")) == KeyRange(key: "t/m", end: prefixEnd(Array("t/".utf8))))
        #expect(namespace.map(KeyRange(key: "a", end: "c")) == KeyRange(key: "t/a", end: "t/c"))
    }

    @Test("Transactions: every compared, read and written key moves, nested ones too")
    func transactions() {
        let txn = Txn().when(.version("a") == 0).then(.put("b", "1"), .txn(Txn().when(.value("c") == "x").then(.delete(.prefix("d/")))))
        let mapped = namespace.map(txn.request)
        #expect(mapped.compares.map(\.target.range) == [KeyRange.key("t/a")])
        guard case .put(let key, _, _, _) = mapped.success[0].kind, case .txn(let nested) = mapped.success[1].kind,
            case .delete(let deleted, _) = nested.success[0].kind
        else {
            Issue.record("the operations changed kind: \(mapped.success.map(\.kind))")
            return
        }
        #expect(key == Array("t/b".utf8))
        #expect(nested.compares.map(\.target.range) == [KeyRange.key("t/c")])
        #expect(deleted == KeyRange.prefix("t/d/"))
    }

    @Test("Keys read come back relative; nested namespaces add their prefixes")
    func keys() {
        #expect(namespace.key("a") == Array("t/a".utf8))
        #expect(namespace.namespace("u/").key("a") == Array("t/u/a".utf8))
    }
}
