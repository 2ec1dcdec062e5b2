"""Drives a Statehouse cluster with the `etcd3` package from PyPI (python-etcd3 0.12.0).

    etcd3_client.py http://127.0.0.1:2379,http://127.0.0.1:22379,http://127.0.0.1:32379

Each check asserts what etcd itself answers. The first failing check prints its name, what it
expected and what it got, and the script exits 1; a check that hangs is cut short by a watchdog
that prints every thread's stack and exits 1. On success it prints one "ok" line per check and
"etcd3 client: all N checks passed", and exits 0.

The cluster must have exactly the members named by the endpoints. Keys and lock names carry a
random tag per run, so the script can run again against the same cluster.
"""

import argparse
import faulthandler
import io
import os
import sys
import threading
import time
import traceback
import uuid
from urllib.parse import urlsplit

import etcd3
from etcd3 import events

# This run's tag: every key the script writes is under PREFIX and every lock name ends with it,
# so runs against the same cluster do not meet.
RUN = uuid.uuid4().hex[:8]
PREFIX = "/pyclient/%s/" % RUN
# Seconds any single check may take before the watchdog ends the script.
CHECK_TIMEOUT = 60


class CheckFailed(Exception):
    """A check saw something other than what etcd answers."""


def expect(condition, message):
    """Fails the running check with `message` unless `condition` holds."""
    if not condition:
        raise CheckFailed(message)


def expect_equal(actual, expected, what):
    """Fails the running check unless `actual == expected`."""
    if actual != expected:
        raise CheckFailed("%s: expected %r, got %r" % (what, expected, actual))


def key(name):
    return PREFIX + name


def wait_until(what, condition, timeout=15.0, interval=0.1):
    """Polls `condition` until it returns something true, and returns that; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise CheckFailed("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def next_events(iterator, count, what, timeout=15.0):
    """Reads `count` events from a watch's event iterator on a helper thread, with a deadline."""
    received = []
    failure = []

    def read():
        try:
            for event in iterator:
                received.append(event)
                if len(received) == count:
                    return
        except Exception as error:  # reported below, in the check's thread
            failure.append(error)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if failure:
        raise CheckFailed("%s: the watch failed: %r" % (what, failure[0]))
    expect(len(received) == count, "%s: expected %d events within %.0f s, got %d: %s"
           % (what, count, timeout, len(received), [str(event) for event in received]))
    return received


# MARK: - Checks

def check_put_get_delete(clients):
    client, other, _ = clients
    value, meta = client.get(key("missing"))
    expect(value is None and meta is None, "get of a missing key: expected (None, None), got (%r, %r)" % (value, meta))

    first = client.put(key("a"), "1")
    expect(first.header.revision > 1, "put's header revision: %r" % first.header.revision)
    value, meta = client.get(key("a"))
    expect_equal(value, b"1", "get after put")
    expect_equal(meta.key, key("a").encode(), "metadata key")
    expect_equal(meta.version, 1, "version after one put")
    expect_equal(meta.create_revision, first.header.revision, "create revision")
    expect_equal(meta.mod_revision, first.header.revision, "mod revision")
    expect_equal(meta.lease_id, 0, "lease of a key put without one")

    # A write through one member is read back through another (reads are linearizable).
    second = other.put(key("a"), "2", prev_kv=True)
    expect_equal(second.header.revision, first.header.revision + 1, "the next put's revision")
    expect(second.HasField("prev_kv"), "put with prev_kv returned no previous key-value")
    expect_equal(second.prev_kv.value, b"1", "put's prev_kv value")
    expect_equal(second.prev_kv.mod_revision, first.header.revision, "put's prev_kv mod revision")
    value, meta = client.get(key("a"))
    expect_equal(value, b"2", "get through another member after put")
    expect_equal(meta.version, 2, "version after two puts")
    expect_equal(meta.create_revision, first.header.revision, "create revision after an update")
    plain = client.put(key("a"), "3")
    expect(not plain.HasField("prev_kv"), "put without prev_kv returned one")

    # Ranges: get_prefix, get_range, sorted and keys-only.
    for name, text in [("p/b", "2"), ("p/a", "1"), ("p/c", "3"), ("q", "x")]:
        client.put(key(name), text)
    listed = [(meta.key.decode(), value) for value, meta in client.get_prefix(key("p/"))]
    expect_equal(listed, [(key("p/a"), b"1"), (key("p/b"), b"2"), (key("p/c"), b"3")], "get_prefix")
    descending = [meta.key.decode() for _, meta in client.get_prefix(key("p/"), sort_order="descend")]
    expect_equal(descending, [key("p/c"), key("p/b"), key("p/a")], "get_prefix sorted descending")
    ranged = [meta.key.decode() for _, meta in client.get_range(key("p/a"), key("p/c"))]
    expect_equal(ranged, [key("p/a"), key("p/b")], "get_range [p/a, p/c)")
    keys_only = [value for value, _ in client.get_prefix(key("p/"), keys_only=True)]
    expect_equal(keys_only, [b"", b"", b""], "get_prefix keys_only values")
    counted = client.get_prefix_response(key("p/"))
    expect_equal(counted.count, 3, "get_prefix_response count")

    # Conditional puts.
    expect_equal(client.put_if_not_exists(key("new"), "n"), True, "put_if_not_exists on a new key")
    expect_equal(client.put_if_not_exists(key("new"), "m"), False, "put_if_not_exists on an existing key")
    expect_equal(client.get(key("new"))[0], b"n", "value after a refused put_if_not_exists")
    expect_equal(client.replace(key("new"), "n", "r"), True, "replace with the right old value")
    expect_equal(client.replace(key("new"), "n", "s"), False, "replace with a wrong old value")
    expect_equal(client.get(key("new"))[0], b"r", "value after replace")

    # Deletes.
    expect_equal(client.delete(key("a")), True, "delete of an existing key")
    expect_equal(client.get(key("a")), (None, None), "get after delete")
    expect_equal(client.delete(key("a")), False, "delete of a missing key")
    client.put(key("d"), "gone")
    deleted = client.delete(key("d"), prev_kv=True, return_response=True)
    expect_equal(deleted.deleted, 1, "delete response's deleted count")
    expect_equal([kv.value for kv in deleted.prev_kvs], [b"gone"], "delete's prev_kvs")
    removed = client.delete_prefix(key("p/"))
    expect_equal(removed.deleted, 3, "delete_prefix's deleted count")
    expect_equal(list(client.get_prefix(key("p/"))), [], "get_prefix after delete_prefix")


def check_large_and_concurrent(clients):
    client, other, third = clients
    # A value larger than HTTP/2's default windows and frames, both ways.
    large = bytes(range(256)) * 4096  # 1 MiB
    client.put(key("large"), large)
    expect_equal(other.get(key("large"))[0], large, "1 MiB value read back through another member")
    wait_until("a serializable get through a third member to see the 1 MiB value",
               lambda: [kv.value for kv in third.get_response(key("large"), serializable=True).kvs] == [large])

    # Many calls at once on one channel (gRPC multiplexes them as HTTP/2 streams).
    failures = []

    def writer(index):
        try:
            for number in range(25):
                client.put(key("c/%02d/%02d" % (index, number)), "%d" % number)
        except Exception as error:
            failures.append(error)

    writers = [threading.Thread(target=writer, args=(index,), daemon=True) for index in range(8)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(60)
    expect_equal(failures, [], "errors from concurrent puts")
    expect_equal(other.get_prefix_response(key("c/"), keys_only=True).count, 200, "keys after 8 x 25 concurrent puts")
    other.delete_prefix(key("c/"))


def check_transactions(clients):
    client, other, _ = clients
    tx = client.transactions
    client.put(key("tx"), "v1")
    _, meta = client.get(key("tx"))

    succeeded, responses = client.transaction(
        compare=[tx.value(key("tx")) == "v1", tx.version(key("tx")) > 0, tx.create(key("tx")) == meta.create_revision,
                 tx.mod(key("tx")) == meta.mod_revision],
        success=[tx.put(key("tx"), "v2"), tx.get(key("tx")), tx.put(key("tx-other"), "o")],
        failure=[tx.put(key("tx"), "failed")])
    expect_equal(succeeded, True, "transaction whose compares all hold: succeeded")
    expect_equal(len(responses), 3, "number of success-branch responses")
    expect(responses[0].WhichOneof("response") == "response_put", "first response: %r" % responses[0])
    got = [(value, m.key) for value, m in responses[1]]
    expect_equal(got, [(b"v2", key("tx").encode())], "get inside the transaction sees its own put")
    expect_equal(other.get(key("tx"))[0], b"v2", "value after the success branch")
    expect_equal(other.get(key("tx-other"))[0], b"o", "second put of the success branch")
    _, after = other.get(key("tx"))
    _, other_meta = other.get(key("tx-other"))
    expect_equal(after.mod_revision, other_meta.mod_revision, "a transaction's puts share one revision")

    succeeded, responses = other.transaction(
        compare=[tx.value(key("tx")) == "v1"],
        success=[tx.put(key("tx"), "wrong")],
        failure=[tx.get(key("tx")), tx.delete(key("tx-other"))])
    expect_equal(succeeded, False, "transaction whose compare fails: succeeded")
    expect_equal([value for value, _ in responses[0]], [b"v2"], "get in the failure branch")
    expect_equal(responses[1].response_delete_range.deleted, 1, "delete in the failure branch")
    expect_equal(client.get(key("tx"))[0], b"v2", "value after the failure branch")
    expect_equal(client.get(key("tx-other")), (None, None), "key deleted by the failure branch")

    # Comparisons against a missing key: its version and create revision are 0.
    succeeded, _ = client.transaction(compare=[tx.version(key("tx-missing")) == 0, tx.create(key("tx-missing")) == 0],
                                      success=[tx.put(key("tx-missing"), "created")], failure=[])
    expect_equal(succeeded, True, "create-if-absent transaction on a missing key")
    succeeded, _ = client.transaction(compare=[tx.create(key("tx-missing")) == 0],
                                      success=[tx.put(key("tx-missing"), "again")], failure=[])
    expect_equal(succeeded, False, "create-if-absent transaction on an existing key")
    expect_equal(client.get(key("tx-missing"))[0], b"created", "value after the refused create")

    # value < and > compare bytes.
    succeeded, _ = client.transaction(compare=[tx.value(key("tx")) < "v3", tx.value(key("tx")) > "v1"],
                                      success=[], failure=[])
    expect_equal(succeeded, True, "value range comparison")


def check_watch(clients):
    client, other, third = clients
    watched = key("w")
    start = client.put(key("w-before"), "x").header.revision

    # A watch through one member sees the puts made through another, in order.
    iterator, cancel = other.watch(watched)
    for index in range(5):
        client.put(watched, "v%d" % index)
    client.delete(watched)
    seen = next_events(iterator, 6, "watch on %s" % watched)
    expect_equal([type(event).__name__ for event in seen], ["PutEvent"] * 5 + ["DeleteEvent"], "event types")
    expect_equal([event.value for event in seen[:5]], [b"v0", b"v1", b"v2", b"v3", b"v4"], "put event values in order")
    revisions = [event.mod_revision for event in seen]
    expect(revisions == sorted(revisions) and len(set(revisions)) == 6,
           "event revisions not strictly increasing: %r" % revisions)
    expect_equal([event.version for event in seen[:5]], [1, 2, 3, 4, 5], "put event versions")

    # After cancel the iterator ends and later puts are not delivered.
    cancel()
    client.put(watched, "after-cancel")
    leftovers = []
    drain = threading.Thread(target=lambda: leftovers.extend(iterator), daemon=True)
    drain.start()
    drain.join(10)
    expect(not drain.is_alive(), "the watch's iterator did not end after cancel")
    expect_equal(leftovers, [], "events delivered after cancel")

    # A prefix watch from an old revision replays history, then continues live.
    iterator, cancel = third.watch_prefix(key("w"), start_revision=start, prev_kv=True)
    replayed = next_events(iterator, 8, "prefix watch from revision %d" % start)
    expect_equal(replayed[0].key, key("w-before").encode(), "first replayed event")
    expect_equal(replayed[-1].value, b"after-cancel", "last replayed event")
    expect_equal(replayed[-1].prev_value, b"", "prev_kv of a put after a delete")
    expect_equal(replayed[2].prev_value, b"v0", "prev_kv of the second put")
    client.put(key("w-live"), "live")
    live = next_events(iterator, 1, "live event on the prefix watch")
    expect_equal((live[0].key, live[0].value), (key("w-live").encode(), b"live"), "live event")
    cancel()

    # Callbacks: add_watch_callback and cancel_watch.
    received = []
    arrived = threading.Event()

    def callback(response):
        received.append(response)
        arrived.set()

    watch_id = other.add_watch_callback(key("cb"), callback)
    client.put(key("cb"), "1")
    expect(arrived.wait(15), "the watch callback was not called within 15 s")
    expect(not isinstance(received[0], Exception), "the watch callback got an error: %r" % received[0])
    expect_equal([event.value for event in received[0].events], [b"1"], "callback's events")
    other.cancel_watch(watch_id)
    client.put(key("cb"), "2")
    time.sleep(1)
    expect_equal(len(received), 1, "callbacks after cancel_watch")

    # watch_once returns the next event (from the next revision on, so that the put may come
    # before the watch is created).
    since = client.put(key("once-before"), "x").header.revision + 1
    result = []
    waiter = threading.Thread(
        target=lambda: result.append(other.watch_once(key("once"), timeout=15, start_revision=since)), daemon=True)
    waiter.start()
    client.put(key("once"), "now")
    waiter.join(20)
    expect(result and result[0].value == b"now", "watch_once: %r" % [str(event) for event in result])


def check_leases(clients):
    client, other, _ = clients
    lease = client.lease(30)
    expect(lease.id > 0, "granted lease ID: %r" % lease.id)
    expect_equal(lease.ttl, 30, "granted TTL")
    info = other.get_lease_info(lease.id)
    expect_equal(info.ID, lease.id, "time-to-live's lease ID")
    expect_equal(info.grantedTTL, 30, "time-to-live's granted TTL")
    expect(0 < info.TTL <= 30, "time-to-live's remaining TTL: %r" % info.TTL)

    client.put(key("leased"), "v", lease=lease)
    client.put(key("leased-2"), "v", lease=lease.id)
    _, meta = other.get(key("leased"))
    expect_equal(meta.lease_id, lease.id, "lease of a key put with one")
    expect_equal(sorted(lease.keys), [key("leased").encode(), key("leased-2").encode()], "lease's keys")

    time.sleep(1.5)
    refreshed = lease.refresh()
    expect_equal(len(refreshed), 1, "keep-alive responses")
    expect_equal((refreshed[0].ID, refreshed[0].TTL), (lease.id, 30), "keep-alive response")
    expect(25 <= lease.remaining_ttl <= 30, "remaining TTL right after a keep-alive: %r" % lease.remaining_ttl)
    expect_equal(lease.granted_ttl, 30, "granted TTL after a keep-alive")

    other.revoke_lease(lease.id)
    expect_equal(client.get(key("leased")), (None, None), "key of a revoked lease")
    expect_equal(client.get(key("leased-2")), (None, None), "second key of a revoked lease")
    expect_equal(client.get_lease_info(lease.id).TTL, -1, "time-to-live of a revoked lease")
    refreshed = client.refresh_lease(lease.id)
    expect_equal([response.TTL for response in refreshed], [0], "keep-alive of a revoked lease")

    # A lease that is not kept alive expires, and takes its keys with it.
    short = client.lease(2)
    client.put(key("expiring"), "v", lease=short)
    expect_equal(client.get(key("expiring"))[0], b"v", "key of a live short lease")
    wait_until("the key of an expired 2 s lease to go", lambda: client.get(key("expiring")) == (None, None), timeout=15)
    expect_equal(client.get_lease_info(short.id).TTL, -1, "time-to-live of an expired lease")

    # Lease.revoke and a lease with a chosen ID.
    chosen = client.lease(20, lease_id=0x5eed)
    expect_equal(chosen.id, 0x5eed, "lease granted with a chosen ID")
    chosen.revoke()
    expect_equal(other.get_lease_info(0x5eed).TTL, -1, "time-to-live after Lease.revoke")


def check_locks(clients):
    client, other, _ = clients
    first = client.lock("pyclient-lock-" + RUN, ttl=20)
    expect_equal(first.acquire(timeout=5), True, "acquire of a free lock")
    expect_equal(first.is_acquired(), True, "is_acquired of the holder")

    second = other.lock("pyclient-lock-" + RUN, ttl=20)
    started = time.monotonic()
    expect_equal(second.acquire(timeout=1), False, "acquire of a held lock with a 1 s timeout")
    expect(time.monotonic() - started >= 0.9, "acquire of a held lock gave up early")
    expect_equal(second.is_acquired(), False, "is_acquired of a waiter")

    # The second waits until the first is released, then gets it.
    acquired = []
    waiter = threading.Thread(target=lambda: acquired.append((second.acquire(timeout=20), time.monotonic())),
                              daemon=True)
    waiter.start()
    time.sleep(1.5)
    expect_equal(acquired, [], "a second lock acquired while the first was held")
    released_at = time.monotonic()
    expect_equal(first.release(), True, "release of the holder")
    waiter.join(25)
    expect(acquired, "the second lock was not acquired within 20 s of the release")
    expect_equal(acquired[0][0], True, "acquire after the release")
    expect(acquired[0][1] >= released_at, "the second lock was acquired before the release")
    expect_equal(second.is_acquired(), True, "is_acquired of the new holder")
    expect_equal(first.is_acquired(), False, "is_acquired of the old holder")
    expect_equal(first.release(), False, "release of a lock no longer held")

    # When the holder's lease is revoked (its holder died), a waiter gets the lock.
    third = client.lock("pyclient-lock-" + RUN, ttl=20)
    outcome = []
    waiter = threading.Thread(target=lambda: outcome.append(third.acquire(timeout=20)), daemon=True)
    waiter.start()
    time.sleep(1)
    second.lease.revoke()
    waiter.join(25)
    expect_equal(outcome, [True], "acquire after the holder's lease was revoked")
    third.release()

    # The context manager holds the lock inside the block and releases it after.
    with client.lock("pyclient-with-" + RUN, ttl=20) as held:
        expect_equal(held.is_acquired(), True, "is_acquired inside `with lock`")
        expect_equal(other.lock("pyclient-with-" + RUN).acquire(timeout=0.5), False, "acquire of a lock held by `with`")
        held.refresh()
    expect_equal(held.is_acquired(), False, "is_acquired after `with lock`")
    after = other.lock("pyclient-with-" + RUN, ttl=20)
    expect_equal(after.acquire(timeout=5), True, "acquire after `with lock` released it")
    after.release()


def check_members(clients, endpoints):
    members = list(clients[0].members)
    expect_equal(len(members), len(endpoints), "number of members")
    expect_equal(len({member.id for member in members}), len(members), "distinct member IDs")
    client_urls = sorted(url for member in members for url in member.client_urls)
    expect_equal(client_urls, sorted(endpoints), "members' client URLs")
    for member in members:
        expect(member.name, "a member without a name: %s" % member)
        expect(len(member.peer_urls) == 1 and member.peer_urls[0].startswith("http://"),
               "a member's peer URLs: %s" % member)
    other = sorted(member.id for member in clients[1].members)
    expect_equal(other, sorted(member.id for member in members), "member list through another member")


def check_status(clients):
    statuses = [client.status() for client in clients]
    leaders = {status.leader.id if status.leader else None for status in statuses}
    expect(None not in leaders, "a member reports no leader among the members: %r" % leaders)
    expect_equal(len(leaders), 1, "members agree on the leader")
    for status in statuses:
        expect(status.version.startswith("3.4."), "status version (the etcd API level): %r" % status.version)
        expect(status.raft_term >= 1, "raft term: %r" % status.raft_term)
        expect(status.raft_index > 0, "raft index: %r" % status.raft_index)
        expect(status.db_size > 0, "db size: %r" % status.db_size)
    expect_equal(list(clients[0].list_alarms()), [], "alarms")


def check_maintenance(clients):
    client = clients[0]
    revision = client.put(key("compact"), "1").header.revision
    client.put(key("compact"), "2")
    client.compact(revision)
    # As with etcd, the watch is created, then its first response cancels it with the compaction
    # revision, which etcd3 raises from the iterator.
    iterator, cancel = client.watch(key("compact"), start_revision=revision - 1)
    failure = []

    def read():
        try:
            failure.extend(iterator)
        except etcd3.exceptions.RevisionCompactedError as error:
            failure.append(error)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(15)
    cancel()
    expect(len(failure) == 1 and isinstance(failure[0], etcd3.exceptions.RevisionCompactedError),
           "watch from before the compaction revision: expected RevisionCompactedError, got %r" % failure)
    expect_equal(failure[0].compacted_revision, revision, "compacted revision")
    expect(client.hash() != 0, "hash of a non-empty store")
    snapshot = io.BytesIO()
    client.snapshot(snapshot)
    expect(len(snapshot.getvalue()) > 32, "snapshot of %d bytes" % len(snapshot.getvalue()))
    client.defragment()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoints", help="comma-separated client URLs, one per member (at least three)")
    arguments = parser.parse_args()
    endpoints = arguments.endpoints.split(",")
    if len(endpoints) < 3:
        parser.error("give the client URLs of three members")
    # One client per member; etcd3 0.12.0 talks to a single endpoint.
    clients = []
    for endpoint in endpoints:
        url = urlsplit(endpoint if "://" in endpoint else "http://" + endpoint)
        clients.append(etcd3.client(host=url.hostname, port=url.port, timeout=10,
                                    grpc_options=[("grpc.enable_http_proxy", 0)]))

    checks = [
        ("put, get, get_prefix, delete", lambda: check_put_get_delete(clients)),
        ("large values and concurrent calls", lambda: check_large_and_concurrent(clients)),
        ("transactions", lambda: check_transactions(clients)),
        ("watch", lambda: check_watch(clients)),
        ("leases", lambda: check_leases(clients)),
        ("locks", lambda: check_locks(clients)),
        ("members", lambda: check_members(clients, endpoints)),
        ("status", lambda: check_status(clients)),
        ("compaction and maintenance", lambda: check_maintenance(clients)),
    ]
    passed = 0
    for name, check in checks:
        faulthandler.dump_traceback_later(CHECK_TIMEOUT, exit=True)
        started = time.monotonic()
        try:
            check()
        except Exception as error:
            faulthandler.cancel_dump_traceback_later()
            print("FAILED: %s: %s" % (name, error))
            if not isinstance(error, CheckFailed):
                traceback.print_exc(file=sys.stdout)
            print("etcd3 client: %d of %d checks passed before this one failed" % (passed, len(checks)))
            sys.stdout.flush()
            # Watcher threads may still be blocked in gRPC: leave without waiting for them.
            os._exit(1)
        faulthandler.cancel_dump_traceback_later()
        passed += 1
        print("ok: %s (%.1f s)" % (name, time.monotonic() - started))
        sys.stdout.flush()
    print("etcd3 client: all %d checks passed" % passed)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
