#!/usr/bin/env bash
# Issue 10's scale benchmark: a three-member Statehouse cluster and then a three-member etcd 3.4,
# each alone on the machine, under the same etcd Go client (Tools/go/src/scaleload). For each:
#
#   1. load SCALE_KEYS distinct keys (scale/0000000000 …) with 1 KiB values from
#      SCALE_LOAD_CLIENTS clients; the failed puts and the key count read back
#      (the count of `etcdctl get --prefix --limit=1 -w json`); every member's RssAnon (/proc/PID/status);
#   2. kill -9 a follower and restart it: seconds from the restart until it answers a
#      linearizable read (`etcdctl get --consistency=l` against that member alone);
#   3. SCALE_PUTS puts (new keys, 1 KiB) from SCALE_PUT_CLIENTS clients: errors, p50/p99, and the
#      leader changes (`etcd_server_leader_changes_seen_total`, summed over the members);
#   4. while SCALE_BG_CLIENTS clients put SCALE_BG_PUTS keys: `etcdctl snapshot save`,
#      `etcdctl endpoint hashkv` (as load: the members' hashes differ while puts go on) and an
#      `etcdctl watch --rev 1` on the loaded prefix that is SIGSTOPped a second after it starts,
#      so it never reads again; leader changes, RssAnon of each member before and after, and
#      (Statehouse only) ticks more than 128 ms late.
#
# Then prints the table, side by side.
#
#   scripts/bench-scale.sh [STATEHOUSE_BINARY]       (default .build/release/statehouse)
#
# Environment: SCALE_KEYS (1000000), SCALE_LOAD_CLIENTS (32), SCALE_PUTS (200000),
# SCALE_PUT_CLIENTS (256), SCALE_BG_PUTS (100000), SCALE_BG_CLIENTS (64),
# SCALE_SERVERS ("statehouse etcd"), SCALE_DIR (a new /tmp/statehouse-scale.XXXXXX).
# Ports 61379/62379/63379 (peers 61380…), used by one cluster at a time. Data directories are
# removed after each cluster (1 GB per member at the default size); the logs are kept.
# Needs Go and etcd's Go client, etcd and etcdctl (Debian's golang-go, golang-etcd-server-dev,
# etcd-server, etcd-client; installed when missing). Run it on a quiet machine.
set -euo pipefail
binary=${1:-.build/release/statehouse}
keys=${SCALE_KEYS:-1000000}
load_clients=${SCALE_LOAD_CLIENTS:-32}
puts=${SCALE_PUTS:-200000}
put_clients=${SCALE_PUT_CLIENTS:-256}
bg_puts=${SCALE_BG_PUTS:-100000}
bg_clients=${SCALE_BG_CLIENTS:-64}
servers=${SCALE_SERVERS:-statehouse etcd}
here=$(cd "$(dirname "$0")/.." && pwd)
root=${SCALE_DIR:-$(mktemp -d /tmp/statehouse-scale.XXXXXX)}
mkdir -p "$root"
endpoints=127.0.0.1:61379,127.0.0.1:62379,127.0.0.1:63379
export ETCDCTL_API=3

[ -x "$binary" ] || [[ " $servers " != *" statehouse "* ]] || { echo "no Statehouse binary at $binary" >&2; exit 1; }
if ! command -v go >/dev/null || [[ ! -d /usr/share/gocode/src/go.etcd.io/etcd/clientv3 ]] ||
    ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go golang-etcd-server-dev etcd-server etcd-client >/dev/null
fi
scaleload=$root/scaleload
(cd "$here/Tools/go/src/scaleload" &&
    GOPATH="$here/Tools/go:/usr/share/gocode" GO111MODULE=off GOFLAGS= go build -o "$scaleload" .)

declare -A pids results
background=()
cleanup() {
    for pid in "${background[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    for name in "${!pids[@]}"; do kill -9 "${pids[$name]}" 2>/dev/null || true; done
    rm -rf "$root"/*/n[123] "$scaleload" "$root/snapshot.db"
    echo "logs in $root"
}
trap cleanup EXIT

port_digit=6
token=scale
member_flags=(--quota-backend-bytes 8589934592)
# shellcheck source=scripts/cluster-lib.sh
source "$here/scripts/cluster-lib.sh"

# rss: "n1/n2/n3" RssAnon in MiB.
rss() {
    local out=() name
    for name in n1 n2 n3; do
        out+=("$(awk '/^RssAnon:/ { printf "%d", $2 / 1024 }' "/proc/${pids[$name]}/status" 2>/dev/null || echo gone)")
    done
    (IFS=/; echo "${out[*]}")
}
max_rss() { tr / '\n' <<<"$1" | sort -n | tail -1; }
# leader_changes: etcd_server_leader_changes_seen_total summed over the members' /metrics.
leader_changes() {
    local total=0 i value
    for i in 1 2 3; do
        value=$(curl -sf "http://127.0.0.1:6${i}379/metrics" | awk '$1 == "etcd_server_leader_changes_seen_total" { print int($2) }')
        total=$((total + ${value:-0}))
    done
    echo "$total"
}
# late_ticks: Statehouse's ticks more than 128 ms late (histogram count above the 0.128 bucket).
late_ticks() {
    local total=0 i value
    for i in 1 2 3; do
        value=$(curl -sf "http://127.0.0.1:6${i}379/metrics" | awk '
            /^statehouse_member_tick_lateness_seconds_bucket/ && /le="0.128"/ { within = $2 }
            /^statehouse_member_tick_lateness_seconds_count/ { count = $2 }
            END { print int(count - within) }')
        total=$((total + ${value:-0}))
    done
    echo "$total"
}
field() { sed -n "s|.*$1=\([^ ]*\).*|\1|p" <<<"$2"; }
stop_cluster() {
    local name
    for name in "${!pids[@]}"; do kill -TERM "${pids[$name]}" 2>/dev/null || true; done
    for _ in $(seq 50); do
        local alive=0
        for name in "${!pids[@]}"; do kill -0 "${pids[$name]}" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.2
    done
    for name in "${!pids[@]}"; do kill -9 "${pids[$name]}" 2>/dev/null || true; done
    pids=()
}

for server in $servers; do
    echo "== $server: starting three members"
    mkdir -p "$root/$server"
    for name in n1 n2 n3; do start "$server" "$name"; done
    for name in n1 n2 n3; do healthy "$name"; done

    echo "== $server: loading $keys keys × 1 KiB from $load_clients clients"
    line=$("$scaleload" -endpoints "$endpoints" -keys "$keys" -clients "$load_clients" -val 1024 -prefix scale/ 2>>"$root/$server-load.err")
    echo "   $line"
    results[$server, load]="$(field errs "$line") errors, $(field ops/s "$line") puts/s"
    count=$(etcdctl --endpoints="$endpoints" --command-timeout=60s get scale/ --prefix --limit=1 -w json |
        sed -n 's/.*"count":\([0-9]*\).*/\1/p')
    results[$server, count]=${count:-?}
    sleep 2
    results[$server, rss_load]=$(rss)
    echo "   keys read back: ${count:-?}; RssAnon MiB: ${results[$server, rss_load]}"

    victim=n3
    [ "$(leader)" = n3 ] && victim=n2
    echo "== $server: kill -9 $victim and restart it"
    kill -9 "${pids[$victim]}"
    wait "${pids[$victim]}" 2>/dev/null || true
    restarted=$(date +%s%N)
    start "$server" "$victim"
    served=""
    for _ in $(seq 1 1200); do
        if etcdctl --endpoints="127.0.0.1:6${victim#n}379" --dial-timeout=1s --command-timeout=1s \
            get scale/0000000000 --consistency=l >/dev/null 2>&1; then
            served=$(date +%s%N)
            break
        fi
        sleep 0.05
    done
    if [ -n "$served" ]; then
        results[$server, restart]=$(awk -v ns=$((served - restarted)) 'BEGIN { printf "%.2f s", ns / 1e9 }')
    else
        results[$server, restart]="none in 60 s"
    fi
    echo "   linearizable read after ${results[$server, restart]}"
    healthy "$victim"

    echo "== $server: $puts puts from $put_clients clients"
    before=$(leader_changes)
    line=$("$scaleload" -endpoints "$endpoints" -keys "$puts" -clients "$put_clients" -val 1024 -prefix puts/ 2>>"$root/$server-puts.err")
    after=$(leader_changes)
    echo "   $line"
    results[$server, puts]="$(field errs "$line") errors, $(field ops/s "$line")/s, p99 $(field p99 "$line")"
    results[$server, puts_leader]=$((after - before))

    echo "== $server: snapshot save, hashkv and an unread watch from revision 1 under $bg_clients clients"
    before=$(leader_changes)
    late_before=0
    [ "$server" = statehouse ] && late_before=$(late_ticks)
    results[$server, rss_bg_before]=$(rss)
    "$scaleload" -endpoints "$endpoints" -keys "$bg_puts" -clients "$bg_clients" -val 1024 -prefix bg/ \
        >"$root/$server-bg.out" 2>&1 &
    load=$!
    background+=("$load")
    etcdctl --endpoints="$endpoints" watch --rev 1 --prefix scale/ >/dev/null 2>"$root/$server-watch.err" &
    watcher=$!
    background+=("$watcher")
    sleep 1
    kill -STOP "$watcher"
    snapshot=$( (time -p etcdctl --endpoints=127.0.0.1:61379 --command-timeout=600s snapshot save "$root/snapshot.db" \
        >"$root/$server-snapshot.out" 2>&1) 2>&1 | awk '/^real/ { print $2 }') || snapshot="failed"
    rm -f "$root/snapshot.db"
    hashkv=ok
    etcdctl --endpoints="$endpoints" --command-timeout=600s endpoint hashkv >"$root/$server-hashkv.out" 2>&1 || hashkv=failed
    wait "$load" || true
    line=$(tail -1 "$root/$server-bg.out")
    echo "   $line"
    results[$server, rss_bg_after]=$(rss)
    after=$(leader_changes)
    kill -9 "$watcher" 2>/dev/null || true
    wait "$watcher" 2>/dev/null || true
    results[$server, bg]="$(field errs "$line") errors; snapshot ${snapshot} s; hashkv $hashkv"
    results[$server, bg_leader]=$((after - before))
    results[$server, late]=n/a
    [ "$server" = statehouse ] && results[$server, late]=$(($(late_ticks) - late_before))
    echo "   RssAnon MiB before ${results[$server, rss_bg_before]}, after ${results[$server, rss_bg_after]}"

    stop_cluster
    rm -rf "$root/$server"/n[123]
done

# The table: one column per server measured, and the RssAnon ratio when both were.
row() {
    local label=$1 key=$2 server line
    line=$(printf '| %-52s' "$label")
    for server in $servers; do line+=$(printf ' | %-34s' "${results[$server, $key]:-}"); done
    echo "$line |"
}
echo
header=$(printf '| %-52s' "SCALE_KEYS=$keys")
for server in $servers; do header+=$(printf ' | %-34s' "$server"); done
echo "$header |"
row "load: errors, puts/s" load
row "keys read back (count of get --prefix)" count
row "RssAnon after load, MiB (n1/n2/n3)" rss_load
row "follower kill -9, restart -> linearizable read" restart
row "$puts puts x $put_clients clients: errors, rate, p99" puts
row "  leader changes" puts_leader
row "$bg_clients clients put; snapshot save, hashkv, unread watch" bg
row "  leader changes" bg_leader
row "  ticks > 128 ms late" late
row "  RssAnon before, MiB (n1/n2/n3)" rss_bg_before
row "  RssAnon after, MiB (n1/n2/n3)" rss_bg_after
if [[ " $servers " == *" statehouse "* && " $servers " == *" etcd "* ]]; then
    awk -v s="$(max_rss "${results[statehouse, rss_load]}")" -v e="$(max_rss "${results[etcd, rss_load]}")" \
        'BEGIN { if (e > 0) printf "largest RssAnon after load: Statehouse %d MiB / etcd %d MiB = %.2f×\n", s, e, s / e }'
fi
