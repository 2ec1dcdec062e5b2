#!/usr/bin/env python3
"""Drives the etcd v3 JSON gateway with Python's standard library only.

Usage: gateway_client.py ENDPOINT [ENDPOINT ...]   (e.g. http://127.0.0.1:2379)

Runs the core set of calls (KV, transactions, leases, compaction, status, members,
locks, elections, a streaming watch) and the error cases, checking each answer. The
script works against etcd 3.4 and Statehouse alike. Prints "ok" and exits 0 when every
check passed; prints the failed check and exits 1 otherwise.
"""

import base64
import http.client
import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request


def b64(text):
    return base64.b64encode(text.encode()).decode()


def unb64(text):
    return base64.b64decode(text).decode()


class GatewayError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


def call(endpoint, path, request, timeout=10):
    """POSTs `request` (a dict, or raw bytes) to `path`; returns the decoded JSON answer."""
    data = request if isinstance(request, bytes) else json.dumps(request).encode()
    req = urllib.request.Request(endpoint + path, data=data, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = error.read().decode(errors="replace")
        raise GatewayError(error.code, body) from None


def expect(condition, what):
    if not condition:
        raise AssertionError(what)


def expect_error(function, status, code, message=None):
    try:
        function()
    except GatewayError as error:
        expect(error.status == status, f"expected HTTP {status}, got {error.status}: {error.body}")
        try:
            body = json.loads(error.body)
        except ValueError:
            raise AssertionError(f"the error body is not JSON: {error.body!r}") from None
        expect(body.get("code") == code, f"expected gRPC code {code}: {body}")
        expect(body.get("error") == body.get("message"), f"error and message differ: {body}")
        if message is not None:
            expect(body.get("message") == message, f"expected message {message!r}: {body}")
        return body
    raise AssertionError(f"expected HTTP {status}, but the call succeeded")


class Watch:
    """A streaming watch: one POST whose chunked answer is read line by line on a thread."""

    def __init__(self, endpoint, request):
        url = urllib.parse.urlsplit(endpoint)
        self.connection = http.client.HTTPConnection(url.hostname, url.port, timeout=15)
        self.connection.request("POST", "/v3/watch", body=json.dumps(request),
                                headers={"Content-Type": "application/json"})
        self.response = self.connection.getresponse()
        expect(self.response.status == 200, f"watch answered HTTP {self.response.status}")
        self.messages = []
        self.lock = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for line in self.response:
                line = line.strip()
                if not line:
                    continue
                with self.lock:
                    self.messages.append(json.loads(line))
                    self.lock.notify_all()
        except (OSError, ValueError, http.client.HTTPException):
            pass

    def wait_for(self, predicate, what, timeout=10):
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                for message in self.messages:
                    if predicate(message):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"watch: no {what} within {timeout}s; saw {self.messages}")
                self.lock.wait(remaining)

    def close(self):
        # Shut the socket down first: the reading thread holds the response's buffer while it
        # waits, and a plain close would wait for it (until the socket timeout).
        if self.connection.sock is not None:
            self.connection.sock.shutdown(socket.SHUT_RDWR)
        self.thread.join(5)
        self.connection.close()


def main(endpoints):
    endpoint = endpoints[0]
    other = endpoints[-1]
    prefix = f"py-{int(time.time() * 1000)}/"

    # Status and members.
    status = call(endpoint, "/v3/maintenance/status", {})
    expect(int(status["header"]["revision"]) >= 1, f"status: {status}")
    expect(status.get("version"), f"status has no version: {status}")
    members = call(endpoint, "/v3/cluster/member/list", {})["members"]
    expect(len(members) == len(endpoints) or len(endpoints) == 1, f"members: {members}")
    expect(all(member.get("clientURLs") for member in members), f"members without client URLs: {members}")

    # A streaming watch on the prefix, opened on another member.
    watch = Watch(other, {"create_request": {"key": b64(prefix), "range_end": b64(prefix[:-1] + "0"),
                                             "prev_kv": True}})
    watch.wait_for(lambda m: m.get("result", {}).get("created"), "created response")

    # Put, range, txn, deleterange.
    put = call(endpoint, "/v3/kv/put", {"key": b64(prefix + "a"), "value": b64("1")})
    revision = int(put["header"]["revision"])
    got = call(endpoint, "/v3/kv/range", {"key": b64(prefix + "a")})
    expect(got["count"] == "1" and unb64(got["kvs"][0]["value"]) == "1", f"range: {got}")
    expect(got["kvs"][0]["create_revision"] == str(revision), f"create_revision: {got}")
    missing = call(endpoint, "/v3/kv/range", {"key": b64(prefix + "none")})
    expect("kvs" not in missing and "count" not in missing, f"empty range: {missing}")

    txn = call(endpoint, "/v3/kv/txn", {
        "compare": [{"target": "VALUE", "result": "EQUAL", "key": b64(prefix + "a"), "value": b64("1")}],
        "success": [{"request_put": {"key": b64(prefix + "a"), "value": b64("2"), "prev_kv": True}}],
        "failure": [{"request_range": {"key": b64(prefix + "a")}}],
    })
    expect(txn.get("succeeded") is True, f"txn: {txn}")
    expect(unb64(txn["responses"][0]["response_put"]["prev_kv"]["value"]) == "1", f"txn prev_kv: {txn}")
    failed = call(endpoint, "/v3/kv/txn", {
        "compare": [{"target": "VERSION", "key": b64(prefix + "a"), "version": "0"}],
        "failure": [{"request_range": {"key": b64(prefix + "a")}}],
    })
    expect("succeeded" not in failed, f"a failed txn leaves succeeded out: {failed}")
    expect(unb64(failed["responses"][0]["response_range"]["kvs"][0]["value"]) == "2", f"txn failure: {failed}")

    event = watch.wait_for(lambda m: any(unb64(e["kv"].get("value", "")) == "2"
                                         for e in m.get("result", {}).get("events", [])), "put event")
    put_event = [e for e in event["result"]["events"] if unb64(e["kv"].get("value", "")) == "2"][0]
    expect("type" not in put_event and unb64(put_event["prev_kv"]["value"]) == "1", f"put event: {put_event}")

    deleted = call(endpoint, "/v3/kv/deleterange", {"key": b64(prefix + "a"), "prev_kv": True})
    expect(deleted["deleted"] == "1" and unb64(deleted["prev_kvs"][0]["value"]) == "2", f"deleterange: {deleted}")
    watch.wait_for(lambda m: any(e.get("type") == "DELETE" for e in m.get("result", {}).get("events", [])),
                   "delete event")
    watch.close()

    # Leases: grant, attach, keepalive, timetolive, revoke.
    lease = call(endpoint, "/v3/lease/grant", {"TTL": "60"})
    lease_id = lease["ID"]
    expect(lease["TTL"] == "60", f"grant: {lease}")
    call(endpoint, "/v3/kv/put", {"key": b64(prefix + "leased"), "value": b64("x"), "lease": lease_id})
    keepalive = call(endpoint, "/v3/lease/keepalive", {"ID": lease_id})
    expect(keepalive["result"]["ID"] == lease_id and keepalive["result"]["TTL"] == "60", f"keepalive: {keepalive}")
    ttl = call(endpoint, "/v3/lease/timetolive", {"ID": lease_id, "keys": True})
    expect(ttl["grantedTTL"] == "60" and 0 < int(ttl["TTL"]) <= 60, f"timetolive: {ttl}")
    expect([unb64(key) for key in ttl["keys"]] == [prefix + "leased"], f"timetolive keys: {ttl}")
    call(endpoint, "/v3/lease/revoke", {"ID": lease_id})
    gone = call(endpoint, "/v3/kv/range", {"key": b64(prefix + "leased")})
    expect("kvs" not in gone, f"the revoked lease's key remains: {gone}")
    expect(call(endpoint, "/v3/lease/timetolive", {"ID": lease_id})["TTL"] == "-1", "timetolive of a revoked lease")
    unknown = call(endpoint, "/v3/lease/keepalive", {"ID": lease_id})
    expect("TTL" not in unknown["result"], f"keepalive of an unknown lease answers TTL 0: {unknown}")

    # Locks and elections, on a lease.
    session = call(endpoint, "/v3/lease/grant", {"TTL": "30"})["ID"]
    locked = call(endpoint, "/v3/lock/lock", {"name": b64(prefix + "lock"), "lease": session})
    lock_key = unb64(locked["key"])
    expect(lock_key.startswith(prefix + "lock/"), f"lock key: {locked}")
    call(endpoint, "/v3/lock/unlock", {"key": locked["key"]})
    campaign = call(endpoint, "/v3/election/campaign",
                    {"name": b64(prefix + "election"), "lease": session, "value": b64("me")})
    leader = campaign["leader"]
    expect(unb64(leader["name"]) == prefix + "election" and leader["lease"] == session, f"campaign: {campaign}")
    call(endpoint, "/v3/election/proclaim", {"leader": leader, "value": b64("me again")})
    current = call(endpoint, "/v3/election/leader", {"name": b64(prefix + "election")})
    expect(unb64(current["kv"]["value"]) == "me again", f"leader: {current}")
    call(endpoint, "/v3/election/resign", {"leader": leader})
    expect_error(lambda: call(endpoint, "/v3/election/leader", {"name": b64(prefix + "election")}),
                 500, 2, "election: no leader")
    call(endpoint, "/v3/lease/revoke", {"ID": session})

    # Compaction, and a read below it.
    for value in ("1", "2", "3"):
        latest = call(endpoint, "/v3/kv/put", {"key": b64(prefix + "c"), "value": b64(value)})
    latest = int(latest["header"]["revision"])
    call(endpoint, "/v3/kv/compaction", {"revision": str(latest - 1), "physical": True})
    expect_error(lambda: call(endpoint, "/v3/kv/range", {"key": b64(prefix + "c"), "revision": str(latest - 2)}),
                 400, 11, "etcdserver: mvcc: required revision has been compacted")

    # Errors: unknown lease, malformed JSON, unknown path, oversized message.
    expect_error(lambda: call(endpoint, "/v3/lease/revoke", {"ID": "1"}), 404, 5, "etcdserver: requested lease not found")
    expect_error(lambda: call(endpoint, "/v3/kv/put", b'{"key": '), 400, 3)
    expect_error(lambda: call(endpoint, "/v3/kv/put", b'{"key": "not base64!"}'), 400, 3)
    try:
        call(endpoint, "/v3/kv/nothing", {})
        raise AssertionError("an unknown path succeeded")
    except GatewayError as error:
        expect(error.status == 404, f"unknown path: HTTP {error.status}")
    big = {"key": b64(prefix + "big"), "value": base64.b64encode(bytes(3_000_000)).decode()}
    body = expect_error(lambda: call(endpoint, "/v3/kv/put", big), 429, 8)
    expect("larger than max" in body["message"], f"oversized: {body}")

    call(endpoint, "/v3/kv/deleterange", {"key": b64(prefix), "range_end": b64(prefix[:-1] + "0")})
    print("ok")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    try:
        main(sys.argv[1:])
    except (AssertionError, GatewayError, OSError) as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
