#!/usr/bin/env bash
# The rolling-restart drill: a three-member cluster on loopback under a steady write load from
# etcd's own Go client (kvbench, 64 clients, from ../shared/bench), while each member in turn is
# stopped with SIGTERM, restarted on its data and waited for. Prints kvbench's line and the
# number of failed puts; exits 1 if any put failed.
#
#   scripts/rolling-restart.sh [STATEHOUSE_BINARY] [KVBENCH] [TOTAL_PUTS]
set -euo pipefail
binary=${1:-.build/release/statehouse}
kvbench=${2:-/tmp/kvbench}
# Enough puts (about 15 s at 10,000 puts/s) that the load spans all three restarts; check that
# kvbench's elapsed time is longer than the restarts took on a faster machine.
total=${3:-150000}
[ -x "$kvbench" ] || bash ../shared/bench/build-kvbench.sh "$kvbench"
root=$(mktemp -d /tmp/statehouse-rolling.XXXXXX)
token=rolling-$(basename "$root")
cluster="n1=http://127.0.0.1:2380,n2=http://127.0.0.1:22380,n3=http://127.0.0.1:32380"
declare -A pids client
client[n1]=2379; client[n2]=22379; client[n3]=32379
declare -A peer
peer[n1]=2380; peer[n2]=22380; peer[n3]=32380

start() {
    local name=$1
    "$binary" --name "$name" --data-dir "$root/$name" \
        --listen-client-urls "http://127.0.0.1:${client[$name]}" --advertise-client-urls "http://127.0.0.1:${client[$name]}" \
        --listen-peer-urls "http://127.0.0.1:${peer[$name]}" --initial-advertise-peer-urls "http://127.0.0.1:${peer[$name]}" \
        --initial-cluster "$cluster" --initial-cluster-token "$token" >>"$root/$name.log" 2>&1 &
    pids[$name]=$!
}
healthy() {
    for _ in $(seq 1 200); do
        curl -sf "http://127.0.0.1:${client[$1]}/health" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "$1 did not become healthy" >&2
    return 1
}
cleanup() { for name in n1 n2 n3; do kill -9 "${pids[$name]}" 2>/dev/null || true; done; }
trap cleanup EXIT

for name in n1 n2 n3; do start "$name"; done
for name in n1 n2 n3; do healthy "$name"; done

"$kvbench" -endpoints 127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379 -clients 64 -total "$total" -op put \
    >"$root/kvbench.out" 2>&1 &
load=$!
sleep 2
for name in n1 n2 n3; do
    kill -TERM "${pids[$name]}"
    status=0
    wait "${pids[$name]}" || status=$?
    echo "$name stopped with status $status"
    start "$name"
    healthy "$name"
    sleep 2
done
if ! kill -0 "$load" 2>/dev/null; then echo "warning: the load ended before the last restart; pass a larger TOTAL_PUTS" >&2; fi
wait "$load" || true
cat "$root/kvbench.out"
errors=$(grep -o 'errs=[0-9]*' "$root/kvbench.out" | cut -d= -f2)
echo "failed puts during the rolling restart: ${errors:-unknown} (logs in $root)"
[ "${errors:-1}" = 0 ]
