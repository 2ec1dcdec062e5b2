#!/usr/bin/env node
// A claim-execute-record workflow over the etcd v3 JSON gateway, with Node's built-in fetch
// only (Node 18+; no npm packages).
//
// Usage: node claim_workflow.mjs ENDPOINT [ENDPOINT ...]
// Environment: ITEMS (default 12), WORKERS (default 4), PREFIX (default a fresh one).
//
// Work items are keys under PREFIX/queue/. Each worker holds a lease; it claims an item with a
// transaction that creates PREFIX/claims/<item> on its lease only if neither a claim nor a
// result exists, executes the item, and records PREFIX/results/<item> with a transaction
// guarded by its claim (the claim key still has the worker's value and the create revision the
// claim got), deleting the queue entry and the claim in the same transaction. One extra worker
// claims an item and then stalls without keeping its lease alive: its claim expires, another
// worker takes the item over, and the stalled worker's late record is refused by the guard.
//
// Prints one JSON line: {"prefix", "items", "recorded": {item: worker}, "records",
// "conflicts", "refusedLateRecord"}; exits 1 if an item was recorded other than once.

const endpoints = process.argv.slice(2);
if (endpoints.length === 0) {
  console.error("usage: node claim_workflow.mjs ENDPOINT [ENDPOINT ...]");
  process.exit(2);
}
const itemCount = Number(process.env.ITEMS ?? 12);
const workerCount = Number(process.env.WORKERS ?? 4);
const prefix = process.env.PREFIX ?? `node-${Date.now()}/`;

const b64 = (text) => Buffer.from(text).toString("base64");
const unb64 = (text) => Buffer.from(text ?? "", "base64").toString();
const prefixEnd = (key) => key.slice(0, -1) + String.fromCharCode(key.charCodeAt(key.length - 1) + 1);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class GatewayError extends Error {
  constructor(status, body) {
    super(`HTTP ${status}: ${JSON.stringify(body)}`);
    this.status = status;
    this.body = body;
  }
}

/** POSTs `request` to `path` on `endpoint`; resolves to the JSON answer. */
async function call(endpoint, path, request) {
  const response = await fetch(endpoint + path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(request),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  const body = text ? JSON.parse(text) : {};
  if (!response.ok) throw new GatewayError(response.status, body);
  return body;
}

async function enqueue(endpoint) {
  for (let n = 0; n < itemCount; n++) {
    const item = `item-${String(n).padStart(3, "0")}`;
    await call(endpoint, "/v3/kv/put", { key: b64(`${prefix}queue/${item}`), value: b64(JSON.stringify({ n })) });
  }
}

/** Tries to claim `item` for `worker` on `lease`; returns the claim's create revision, or null. */
async function claim(endpoint, worker, lease, item) {
  const answer = await call(endpoint, "/v3/kv/txn", {
    compare: [
      { target: "CREATE", key: b64(`${prefix}claims/${item}`), create_revision: "0" },
      { target: "VERSION", key: b64(`${prefix}results/${item}`), version: "0" },
      { target: "VERSION", key: b64(`${prefix}queue/${item}`), result: "GREATER", version: "0" },
    ],
    success: [{ request_put: { key: b64(`${prefix}claims/${item}`), value: b64(worker), lease } }],
  });
  return answer.succeeded ? answer.header.revision : null;
}

/** Records `result` if `worker` still holds the claim it got at `claimRevision`. */
async function record(endpoint, worker, item, claimRevision, result) {
  const answer = await call(endpoint, "/v3/kv/txn", {
    compare: [
      { target: "VALUE", key: b64(`${prefix}claims/${item}`), value: b64(worker) },
      { target: "CREATE", key: b64(`${prefix}claims/${item}`), create_revision: claimRevision },
    ],
    success: [
      { request_put: { key: b64(`${prefix}results/${item}`), value: b64(JSON.stringify({ worker, result })) } },
      { request_delete_range: { key: b64(`${prefix}queue/${item}`) } },
      { request_delete_range: { key: b64(`${prefix}claims/${item}`) } },
    ],
  });
  return answer.succeeded === true;
}

async function pendingItems(endpoint) {
  const queue = `${prefix}queue/`;
  const answer = await call(endpoint, "/v3/kv/range", {
    key: b64(queue),
    range_end: b64(prefixEnd(queue)),
    keys_only: true,
  });
  return (answer.kvs ?? []).map((kv) => unb64(kv.key).slice(queue.length));
}

const stats = { records: 0, conflicts: 0, refusedLateRecord: false };

async function worker(index) {
  const endpoint = endpoints[index % endpoints.length];
  const name = `worker-${index}`;
  const { ID: lease } = await call(endpoint, "/v3/lease/grant", { TTL: "10" });
  try {
    for (;;) {
      const items = await pendingItems(endpoint);
      if (items.length === 0) return;
      // Workers start at different places so that they both collide and spread out.
      const start = (index * 3) % items.length;
      let claimed = null;
      for (let i = 0; i < items.length && claimed === null; i++) {
        const item = items[(start + i) % items.length];
        const revision = await claim(endpoint, name, lease, item);
        if (revision === null) {
          stats.conflicts += 1;
        } else {
          claimed = { item, revision };
        }
      }
      if (claimed === null) {
        await sleep(50); // everything left is claimed by others (or by the stalled worker)
        continue;
      }
      // Execute: keep the lease alive while working, as a long task would.
      await call(endpoint, "/v3/lease/keepalive", { ID: lease });
      const { kvs } = await call(endpoint, "/v3/kv/range", { key: b64(`${prefix}queue/${claimed.item}`) });
      const { n } = JSON.parse(unb64(kvs[0].value));
      await sleep(10);
      if (await record(endpoint, name, claimed.item, claimed.revision, n * n)) stats.records += 1;
    }
  } finally {
    await call(endpoint, "/v3/lease/revoke", { ID: lease }).catch(() => {});
  }
}

/** Claims the first item on a 2-second lease, stalls past its expiry, then tries to record. */
async function stalledWorker() {
  const endpoint = endpoints[0];
  const name = "worker-stalled";
  const { ID: lease } = await call(endpoint, "/v3/lease/grant", { TTL: "2" });
  const [item] = await pendingItems(endpoint);
  const revision = await claim(endpoint, name, lease, item);
  if (revision === null) throw new Error(`the stalled worker could not claim ${item}`);
  // Wait until the lease has expired and another worker has recorded the item.
  for (let tries = 0; tries < 200; tries++) {
    await sleep(100);
    const { kvs } = await call(endpoint, "/v3/kv/range", { key: b64(`${prefix}results/${item}`) });
    if (kvs) break;
  }
  stats.refusedLateRecord = !(await record(endpoint, name, item, revision, -1));
}

async function main() {
  await enqueue(endpoints[0]);
  const stalled = stalledWorker();
  await sleep(300); // let the stalled worker claim first
  await Promise.all([...Array(workerCount).keys()].map(worker));
  await stalled;

  const results = `${prefix}results/`;
  const answer = await call(endpoints[0], "/v3/kv/range", { key: b64(results), range_end: b64(prefixEnd(results)) });
  const recorded = {};
  const versions = {};
  for (const kv of answer.kvs ?? []) {
    const item = unb64(kv.key).slice(results.length);
    recorded[item] = JSON.parse(unb64(kv.value)).worker;
    versions[item] = kv.version;
  }
  const summary = { prefix, items: itemCount, recorded, records: stats.records, conflicts: stats.conflicts,
    refusedLateRecord: stats.refusedLateRecord };
  console.log(JSON.stringify(summary));
  const once = Object.keys(recorded).length === itemCount && stats.records === itemCount
    && Object.values(versions).every((version) => version === "1");
  if (!once || !stats.refusedLateRecord) {
    console.error(`FAILED: not every item was recorded exactly once (versions ${JSON.stringify(versions)})`);
    process.exit(1);
  }
}

main().catch((error) => {
  console.error(`FAILED: ${error.stack ?? error}`);
  process.exit(1);
});
