import Foundation
import Testing

extension LocalClusterTests {
    /// etcd's grpc-gateway JSON API on the client port, driven by curl, by a Python client on the
    /// standard library, and by a Node script on the built-in `fetch`.
    @Suite("JSON gateway")
    struct GatewayTests {
        /// The directory of the Python and Node clients.
        static let clients = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Clients")

        @Test("curl: KV, transactions, leases, compaction, status, members, locks, elections and a streaming watch")
        func curl() async throws {
            try await withCluster { cluster in
                let gateway = GatewayClient(cluster: cluster)
                let (first, second, third) = (cluster.members[0], cluster.members[1], cluster.members[2])

                // A streaming watch on a prefix, on the third member, until the test kills curl.
                let watch = try gateway.stream(
                    third, "/v3/watch", #"{"create_request":{"key":"\#(b64("gw/"))","range_end":"\#(b64("gw0"))"}}"#)
                _ = try await watch.waitForOutput("the created response") { $0.contains(#""created":true"#) }

                // Put on one member, read on another, a transaction, a delete.
                let put = try await gateway.ok(first, "/v3/kv/put", #"{"key":"\#(b64("gw/a"))","value":"\#(b64("1"))"}"#)
                let revision = try #require(Int64(header(put, "revision")))
                let range = try await gateway.ok(second, "/v3/kv/range", #"{"key":"\#(b64("gw/a"))"}"#)
                #expect(range["count"] as? String == "1")
                let kv = try #require((range["kvs"] as? [[String: Any]])?.first)
                #expect(kv["value"] as? String == b64("1"))
                #expect(kv["create_revision"] as? String == String(revision))
                #expect(kv["version"] as? String == "1")
                let txn = try await gateway.ok(
                    first, "/v3/kv/txn",
                    #"{"compare":[{"target":"VALUE","key":"\#(b64("gw/a"))","value":"\#(b64("1"))"}],"#
                        + #""success":[{"request_put":{"key":"\#(b64("gw/a"))","value":"\#(b64("2"))","prev_kv":true}}]}"#)
                #expect(txn["succeeded"] as? Bool == true)
                _ = try await watch.waitForOutput("the put event") { $0.contains(b64("2")) }
                let deleted = try await gateway.ok(second, "/v3/kv/deleterange", #"{"key":"\#(b64("gw/a"))"}"#)
                #expect(deleted["deleted"] as? String == "1")
                let events = try await watch.waitForOutput("the delete event") { $0.contains(#""type":"DELETE""#) }
                #expect(events.split(separator: "\n").allSatisfy { $0.hasPrefix(#"{"result":{"header":"#) })
                // Ctrl-C; SIGKILL since curl keeps the signal mask it inherits from the test runner.
                watch.send(SIGKILL)
                _ = try await watch.waitForExit()

                // Leases.
                let grant = try await gateway.ok(first, "/v3/lease/grant", #"{"TTL":"60"}"#)
                let lease = try #require(grant["ID"] as? String)
                #expect(grant["TTL"] as? String == "60")
                _ = try await gateway.ok(first, "/v3/kv/put", #"{"key":"\#(b64("gw/leased"))","value":"eA==","lease":"\#(lease)"}"#)
                let keepalive = try await gateway.ok(second, "/v3/lease/keepalive", #"{"ID":"\#(lease)"}"#)
                let result = try #require(keepalive["result"] as? [String: Any])
                #expect(result["ID"] as? String == lease && result["TTL"] as? String == "60")
                let ttl = try await gateway.ok(third, "/v3/lease/timetolive", #"{"ID":"\#(lease)","keys":true}"#)
                #expect(ttl["grantedTTL"] as? String == "60")
                #expect(ttl["keys"] as? [String] == [b64("gw/leased")])
                _ = try await gateway.ok(second, "/v3/kv/lease/revoke", #"{"ID":"\#(lease)"}"#)
                let expired = try await gateway.ok(first, "/v3/lease/timetolive", #"{"ID":"\#(lease)"}"#)
                #expect(expired["TTL"] as? String == "-1")

                // Compaction, and a read below it.
                for value in ["1", "2", "3"] {
                    _ = try await gateway.ok(first, "/v3/kv/put", #"{"key":"\#(b64("gw/c"))","value":"\#(b64(value))"}"#)
                }
                let latest = try await gateway.ok(first, "/v3/kv/range", #"{"key":"\#(b64("gw/c"))"}"#)
                let compactAt = try #require(Int64(header(latest, "revision"))) - 1
                _ = try await gateway.ok(first, "/v3/kv/compaction", #"{"revision":"\#(compactAt)","physical":true}"#)
                let compacted = try await gateway.post(second, "/v3/kv/range", #"{"key":"\#(b64("gw/c"))","revision":"\#(compactAt - 1)"}"#)
                let message = "etcdserver: mvcc: required revision has been compacted"
                #expect(compacted.status == 400)
                #expect(compacted.body == #"{"error":"\#(message)","message":"\#(message)","code":11}"#)

                // Status and members.
                let status = try await gateway.ok(third, "/v3/maintenance/status", "{}")
                #expect(status["version"] as? String != nil && status["leader"] as? String != nil)
                let members = try await gateway.ok(first, "/v3/cluster/member/list", "")
                #expect((members["members"] as? [[String: Any]])?.count == 3)

                // A lock and an election on a session lease.
                let session = try #require(try await gateway.ok(first, "/v3/lease/grant", #"{"TTL":"30"}"#)["ID"] as? String)
                let locked = try await gateway.ok(first, "/v3/lock/lock", #"{"name":"\#(b64("gw-lock"))","lease":"\#(session)"}"#)
                let lockKey = try #require(locked["key"] as? String)
                #expect(String(decoding: Data(base64Encoded: lockKey) ?? Data(), as: UTF8.self).hasPrefix("gw-lock/"))
                _ = try await gateway.ok(second, "/v3/lock/unlock", #"{"key":"\#(lockKey)"}"#)
                let observe = try gateway.stream(second, "/v3/election/observe", #"{"name":"\#(b64("gw-election"))"}"#)
                let campaign = try await gateway.ok(
                    first, "/v3/election/campaign", #"{"name":"\#(b64("gw-election"))","lease":"\#(session)","value":"\#(b64("a"))"}"#)
                let leaderKey = try #require(campaign["leader"] as? [String: Any])
                let leaderJSON = String(decoding: try JSONSerialization.data(withJSONObject: leaderKey), as: UTF8.self)
                _ = try await gateway.ok(first, "/v3/election/proclaim", #"{"leader":\#(leaderJSON),"value":"\#(b64("b"))"}"#)
                let leader = try await gateway.ok(third, "/v3/election/leader", #"{"name":"\#(b64("gw-election"))"}"#)
                #expect((leader["kv"] as? [String: Any])?["value"] as? String == b64("b"))
                _ = try await observe.waitForOutput("the proclaimed value") { $0.contains(b64("b")) }
                observe.send(SIGKILL)
                _ = try await observe.waitForExit()
                _ = try await gateway.ok(first, "/v3/election/resign", #"{"leader":\#(leaderJSON)}"#)
                let none = try await gateway.post(first, "/v3/election/leader", #"{"name":"\#(b64("gw-election"))"}"#)
                #expect(none.status == 500 && none.body.contains(#""message":"election: no leader""#))
            }
        }

        @Test("curl: malformed JSON, unknown paths, wrong methods, oversized bodies and unknown leases")
        func curlErrors() async throws {
            try await withCluster { cluster in
                let gateway = GatewayClient(cluster: cluster)
                let member = cluster.members[0]
                let malformed = try await gateway.post(member, "/v3/kv/put", #"{"key": "#)
                #expect(malformed.status == 400 && malformed.body.contains(#""code":3"#))
                let badBytes = try await gateway.post(member, "/v3/kv/put", #"{"key":"not base64!"}"#)
                #expect(badBytes.status == 400 && badBytes.body.contains("etcdserverpb.PutRequest"))
                let unknown = try await gateway.post(member, "/v3/kv/nothing", "{}")
                #expect(unknown.status == 404 && unknown.body == "Not Found\n")
                let get = try await gateway.run(["-sS", "-w", "\n%{http_code}", member.clientURL + "/v3/kv/range"])
                #expect(get.status == 405)
                let noLease = try await gateway.post(member, "/v3/lease/revoke", #"{"ID":"12345"}"#)
                let message = "etcdserver: requested lease not found"
                #expect(noLease.status == 404 && noLease.body == #"{"error":"\#(message)","message":"\#(message)","code":5}"#)
                let notEnabled = try await gateway.post(member, "/v3/auth/authenticate", #"{"name":"root","password":"x"}"#)
                #expect(notEnabled.status == 400 && notEnabled.body.contains(#""code":9"#), "\(notEnabled)")
                #expect(notEnabled.body.contains("etcdserver: authentication is not enabled"), "\(notEnabled)")

                // A value of 3 MB is more than gRPC's limit (--max-request-bytes plus 512 KiB).
                let file = cluster.root + "/big.json"
                let value = Data(count: 3_000_000).base64EncodedString()
                try Data(#"{"key":"\#(b64("big"))","value":"\#(value)"}"#.utf8).write(to: URL(fileURLWithPath: file))
                let big = try await gateway.run([
                    "-sS", "-X", "POST", "-w", "\n%{http_code}", "--data-binary", "@" + file, member.clientURL + "/v3/kv/put",
                ])
                #expect(big.status == 429)
                #expect(big.body.contains("grpc: received message larger than max (3000") && big.body.contains(#""code":8"#))
                // The member still serves.
                _ = try await gateway.ok(member, "/v3/kv/put", #"{"key":"\#(b64("after"))","value":"eA=="}"#)
            }
        }

        @Test("Python's standard library drives the gateway on every member")
        func python() async throws {
            try await withCluster { cluster in
                let script = Self.clients.appendingPathComponent("gateway_client.py").path
                let result = try await GatewayClient(cluster: cluster).tool(
                    "python3", [script] + cluster.members.map(\.clientURL), timeout: .seconds(90))
                #expect(result.status == .exited(0), "\(result)")
                #expect(result.output.hasSuffix("ok\n"), "\(result)")
            }
        }

        @Test("Node's fetch runs a claim-execute-record workflow that records every item exactly once")
        func node() async throws {
            guard let node = ["/usr/bin/node", "/usr/local/bin/node"].first(where: FileManager.default.isExecutableFile) else {
                try skipTest("node is not installed (the gateway's Node client needs Node 18 or later)")
            }
            try await withCluster { cluster in
                let gateway = GatewayClient(cluster: cluster)
                let script = Self.clients.appendingPathComponent("claim_workflow.mjs").path
                let result = try await gateway.tool(
                    node, [script] + cluster.members.map(\.clientURL), environment: ["ITEMS": "12", "WORKERS": "4"],
                    timeout: .seconds(90))
                #expect(result.status == .exited(0), "\(result)")
                let summary = try jsonObject(result.output.trimmingCharacters(in: .whitespacesAndNewlines))
                #expect((summary["recorded"] as? [String: Any])?.count == 12)
                #expect(summary["records"] as? Int == 12)
                #expect(summary["refusedLateRecord"] as? Bool == true)
                // Read the results back: each was written once (version 1), and the queue is empty.
                let prefix = try #require(summary["prefix"] as? String)
                let results = try await gateway.ok(
                    cluster.members[1], "/v3/kv/range",
                    #"{"key":"\#(b64(prefix + "results/"))","range_end":"\#(b64(prefix + "results0"))"}"#)
                let kvs = try #require(results["kvs"] as? [[String: Any]])
                #expect(kvs.count == 12)
                #expect(kvs.allSatisfy { $0["version"] as? String == "1" })
                let queue = try await gateway.ok(
                    cluster.members[2], "/v3/kv/range",
                    #"{"key":"\#(b64(prefix + "queue/"))","range_end":"\#(b64(prefix + "queue0"))","count_only":true}"#)
                #expect(queue["count"] == nil)
            }
        }
    }
}

/// `text` in base64, as the gateway carries bytes.
private func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

/// A field of a response's header.
private func header(_ response: [String: Any], _ field: String) -> String {
    (response["header"] as? [String: Any])?[field] as? String ?? ""
}

/// Runs curl, python3 and node against a cluster's gateway.
struct GatewayClient {
    /// How a tool ended and what it printed.
    struct Result: CustomStringConvertible {
        var status: ExitStatus
        var output: String
        var errorOutput: String
        var description: String { "\(status); stdout: \(output.debugDescription); stderr: \(errorOutput.debugDescription)" }
    }

    /// An HTTP answer read by curl.
    struct Answer {
        var status: Int
        var body: String
    }

    let cluster: LocalCluster
    private let counter = Counter()

    private final class Counter {
        var value = 0
    }

    init(cluster: LocalCluster) {
        self.cluster = cluster
    }

    /// The environment of the tools: without proxy settings.
    private var environment: [String: String] {
        ProcessInfo.processInfo.environment.filter { !$0.key.lowercased().hasSuffix("_proxy") }
    }

    private func files() -> (output: String, error: String) {
        counter.value += 1
        let base = cluster.root + "/gateway-\(counter.value)"
        return (base + ".out", base + ".err")
    }

    /// Runs `executable` to completion (killed after `timeout`).
    func tool(
        _ executable: String, _ arguments: [String], environment extra: [String: String] = [:], timeout: Duration = .seconds(20)
    ) async throws -> Result {
        let path = executable.hasPrefix("/") ? executable : "/usr/bin/env"
        let fullArguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
        let files = files()
        let process = try ChildProcess(
            executable: path, arguments: fullArguments, environment: environment.merging(extra) { $1 }, outputPath: files.output,
            errorPath: files.error)
        cluster.adopt(process)
        do {
            let status = try await process.waitForExit(timeout: timeout)
            return Result(status: status, output: process.output, errorOutput: process.errorOutput)
        } catch {
            await process.killAndWait()
            throw TimeoutError(
                description: "`\(executable) \(arguments.joined(separator: " "))` did not finish within \(timeout); "
                    + "stdout: \(process.output.debugDescription); stderr: \(process.errorOutput.debugDescription)")
        }
    }

    /// Runs curl with `arguments` (which end with `-w "\n%{http_code}"`), and splits its output.
    func run(_ arguments: [String]) async throws -> Answer {
        let result = try await tool("/usr/bin/curl", ["--max-time", "15"] + arguments)
        guard result.status == .exited(0), let newline = result.output.lastIndex(of: "\n"),
            let status = Int(result.output[result.output.index(after: newline)...])
        else { throw UnexpectedOutput(description: "curl \(arguments.joined(separator: " ")): \(result)") }
        return Answer(status: status, body: String(result.output[..<newline]))
    }

    /// `POST path` with `body` to `member`.
    func post(_ member: LocalMember, _ path: String, _ body: String) async throws -> Answer {
        try await run(["-sS", "-X", "POST", "-w", "\n%{http_code}", "-d", body, member.clientURL + path])
    }

    /// `POST path`, which must answer 200 with a JSON object.
    func ok(_ member: LocalMember, _ path: String, _ body: String) async throws -> [String: Any] {
        let answer = try await post(member, path, body)
        guard answer.status == 200 else {
            throw UnexpectedOutput(description: "POST \(path) \(body) answered \(answer.status): \(answer.body)")
        }
        return try jsonObject(answer.body)
    }

    /// Starts `curl -N` on a streaming path, as a user watching from a terminal would.
    func stream(_ member: LocalMember, _ path: String, _ body: String) throws -> ChildProcess {
        let files = files()
        let process = try ChildProcess(
            executable: "/usr/bin/curl", arguments: ["-sS", "-N", "--max-time", "60", "-X", "POST", "-d", body, member.clientURL + path],
            environment: environment, outputPath: files.output, errorPath: files.error)
        cluster.adopt(process)
        return process
    }
}
