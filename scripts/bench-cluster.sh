#!/usr/bin/env bash
# Measures a three-member Statehouse cluster against a three-member etcd 3.4 in one run, with the
# same load generators: etcd's Go client (kvbench, from ../shared/bench) for put and get at 1, 64
# and 256 clients, and h2load for a serializable Range.
#
#   scripts/bench-cluster.sh [BENCH_DIR]     (default BENCH_DIR: ../shared/bench)
#
# Needs a release build (`swift build -c release --product statehouse`), h2load (Debian's
# nghttp2-client, installed when missing) and etcd (Debian's etcd-server; the bench directory's
# script installs it).
set -euo pipefail
if ! command -v h2load >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client >/dev/null
fi
bench=${1:-../shared/bench}
binary=.build/release/statehouse
work=$(mktemp -d /tmp/statehouse-bench.XXXXXX)
kvbench=$work/kvbench
bash "$bench/build-kvbench.sh" "$kvbench" >/dev/null

# Statehouse on 51379/52379/53379 (peers 51380…), etcd on 41379/42379/43379.
cluster="n1=http://127.0.0.1:51380,n2=http://127.0.0.1:52380,n3=http://127.0.0.1:53380"
pids=()
for i in 1 2 3; do
    "$binary" --name "n$i" --data-dir "$work/n$i" --log-level warn \
        --listen-client-urls "http://127.0.0.1:5${i}379" --advertise-client-urls "http://127.0.0.1:5${i}379" \
        --listen-peer-urls "http://127.0.0.1:5${i}380" --initial-advertise-peer-urls "http://127.0.0.1:5${i}380" \
        --initial-cluster "$cluster" --initial-cluster-token bench >"$work/n$i.log" 2>&1 &
    pids+=("$!")
done
bash "$bench/etcd-cluster.sh" start "$work/etcd" >/dev/null
trap 'kill "${pids[@]}" 2>/dev/null; bash "$bench/etcd-cluster.sh" stop "$work/etcd" >/dev/null 2>&1 || true' EXIT
statehouse=127.0.0.1:51379,127.0.0.1:52379,127.0.0.1:53379
etcd=$(bash "$bench/etcd-cluster.sh" endpoints)
for _ in $(seq 100); do
    ETCDCTL_API=3 etcdctl --endpoints=$statehouse endpoint health >/dev/null 2>&1 && break
    sleep 0.2
done

for op in put get; do
    for clients in 1 64 256; do
        total=$((clients == 1 ? 2000 : clients == 64 ? 40000 : 60000))
        for target in statehouse etcd; do
            endpoints=${!target}
            printf '%-10s ' "$target"
            "$kvbench" -endpoints "$endpoints" -clients "$clients" -total "$total" -op "$op" -val 256
        done
    done
done

# h2load: a serializable Range of one key on the first member of each (4 connections × 16 streams).
ETCDCTL_API=3 etcdctl --endpoints=$statehouse put foo bar >/dev/null
ETCDCTL_API=3 etcdctl --endpoints=$etcd put foo bar >/dev/null
printf '\x00\x00\x00\x00\x07\x0a\x03foo\x38\x01' >"$work/range.bin"
for target in "statehouse 127.0.0.1:51379" "etcd 127.0.0.1:41379"; do
    read -r name address <<<"$target"
    echo "h2load serializable Range: $name"
    h2load -n 200000 -c 4 -m 16 --header 'content-type: application/grpc' --header 'te: trailers' \
        -d "$work/range.bin" "http://$address/etcdserverpb.KV/Range" | grep -E "finished in|requests:|status codes"
done
