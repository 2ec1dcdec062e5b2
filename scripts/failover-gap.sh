#!/usr/bin/env bash
# The crash drill: a three-member cluster on loopback under a steady put load from etcd's own Go
# client (Tools/go/src/writegap), while the leader is killed with SIGKILL KILLS times (restarted
# each time, and the cluster left to settle in between). Prints the longest write gap after each
# kill and over all kills: the time from the last put acknowledged before the kill to the first
# after it, as the clients saw it. Runs Statehouse and then etcd 3.4, each cluster alone.
#
#   scripts/failover-gap.sh [STATEHOUSE_BINARY] [KILLS] [CLIENTS] [SERVERS]
#
# SERVERS is "statehouse etcd" (the default), "statehouse" or "etcd". Both clusters run with
# default timeouts (100 ms heartbeat, 1 s election timeout).
set -euo pipefail
binary=${1:-.build/release/statehouse}
kills=${2:-10}
clients=${3:-16}
servers=${4:-statehouse etcd}
here=$(cd "$(dirname "$0")/.." && pwd)
writegap=/tmp/statehouse-writegap
if ! command -v go >/dev/null || [[ ! -d /usr/share/gocode/src/go.etcd.io/etcd/clientv3 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go golang-etcd-server-dev >/dev/null
fi
GOPATH="$here/Tools/go:/usr/share/gocode" GO111MODULE=off GOFLAGS= go build -o "$writegap" writegap

declare -A pids
root=$(mktemp -d /tmp/statehouse-failover.XXXXXX)
cleanup() { for name in "${!pids[@]}"; do kill -9 "${pids[$name]}" 2>/dev/null || true; done; }
trap cleanup EXIT

port_digit=4
token=failover
# shellcheck source=scripts/cluster-lib.sh
source "$here/scripts/cluster-lib.sh"

for server in $servers; do
    [ "$server" = etcd ] && ! command -v etcd >/dev/null &&
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client >/dev/null
    mkdir -p "$root/$server"
    for name in n1 n2 n3; do start "$server" "$name"; done
    for name in n1 n2 n3; do healthy "$name"; done
    : >"$root/$server-kills"
    "$writegap" -endpoints 127.0.0.1:41379,127.0.0.1:42379,127.0.0.1:43379 -clients "$clients" -kills "$root/$server-kills" -window 3s \
        >"$root/$server-writegap.out" 2>"$root/$server-writegap.err" &
    load=$!
    sleep 3
    for kill in $(seq 1 "$kills"); do
        victim=$(leader)
        date +%s%N >>"$root/$server-kills"
        kill -9 "${pids[$victim]}"
        wait "${pids[$victim]}" 2>/dev/null || true
        sleep 3
        start "$server" "$victim"
        healthy "$victim"
        sleep 2
        echo "$server: kill $kill of $kills done ($victim was leader)"
    done
    sleep 8
    kill -TERM "$load"
    wait "$load" || true
    echo "==== $server (writegap, $clients clients, $kills leader kills)"
    cat "$root/$server-writegap.out"
    for name in n1 n2 n3; do kill -TERM "${pids[$name]}" 2>/dev/null || true; done
    for name in n1 n2 n3; do wait "${pids[$name]}" 2>/dev/null || true; done
    pids=()
done
echo "logs in $root"
