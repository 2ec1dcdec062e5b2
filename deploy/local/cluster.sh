#!/usr/bin/env bash
# Starts a three-member Statehouse cluster on loopback and stops it on Ctrl-C.
#
#   deploy/local/cluster.sh [BINARY] [DATA_ROOT]
#
# Members n1, n2, n3 serve clients on 127.0.0.1:2379, :22379, :32379 and talk to each other on
# :2380, :22380, :32380. Data lives under DATA_ROOT (default ./local-cluster); delete it to start
# from scratch. Logs go to DATA_ROOT/<name>.log.
set -euo pipefail

binary=${1:-.build/release/statehouse}
root=${2:-./local-cluster}
token=statehouse-local
cluster="n1=http://127.0.0.1:2380,n2=http://127.0.0.1:22380,n3=http://127.0.0.1:32380"
mkdir -p "$root"

pids=()
stop() {
    echo
    echo "stopping the cluster…"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait "${pids[@]}" 2>/dev/null || true
    echo "stopped."
}
trap stop INT TERM

for member in "n1 2379 2380" "n2 22379 22380" "n3 32379 32380"; do
    read -r name client peer <<<"$member"
    "$binary" --name "$name" --data-dir "$root/$name" \
        --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
        --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "$cluster" --initial-cluster-token "$token" --initial-cluster-state new \
        >"$root/$name.log" 2>&1 &
    pids+=("$!")
done

endpoints=127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379
# Wait until every member answers /health.
for _ in $(seq 1 100); do
    healthy=0
    for port in 2379 22379 32379; do
        if curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1; then healthy=$((healthy + 1)); fi
    done
    [ "$healthy" -eq 3 ] && break
    sleep 0.2
done

cat <<INFO
Statehouse: three members running (logs in $root/*.log).
  endpoints: $endpoints
  try:       etcdctl --endpoints=$endpoints put greeting hello
             etcdctl --endpoints=$endpoints get greeting
             etcdctl --endpoints=$endpoints endpoint status -w table
Press Ctrl-C to stop all three.
INFO
wait "${pids[@]}"
