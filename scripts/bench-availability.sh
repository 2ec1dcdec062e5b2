#!/usr/bin/env bash
# The availability drill of issue 12 (`make bench-availability`): 8 workers of etcd's Go client
# doing puts, linearizable gets and compare-and-swaps on 3 keys while a random member is killed
# with SIGKILL and restarted at once, every 4 s, 40 times; first against etcd 3.4, then against
# Statehouse, each three members on loopback and alone on the machine. Prints the operations and
# the unknown outcomes side by side, and both check-history verdicts.
#
#   scripts/bench-availability.sh STATEHOUSE CHECK_HISTORY [KILLS]
# Needs a quiet machine: the counts are throughput.
set -euo pipefail
binary=${1:?usage: scripts/bench-availability.sh STATEHOUSE CHECK_HISTORY [KILLS]}
check=${2:?usage: scripts/bench-availability.sh STATEHOUSE CHECK_HISTORY [KILLS]}
kills=${3:-40}
etcd=$(command -v etcd) || { echo "bench-availability needs etcd (Debian's etcd-server)" >&2; exit 1; }
nemesis=$(bash "$(dirname "$0")/build-nemesis.sh")
root=$(mktemp -d /tmp/statehouse-availability.XXXXXX)

declare -A line verdict
for server in etcd statehouse; do
    server_binary=$binary
    [ "$server" = etcd ] && server_binary=$etcd
    echo "== $server: $kills kills, one every 4 s"
    "$nemesis" -server "$server" -binary "$server_binary" -dir "$root/$server" -faults kill -interval 4s \
        -fault-count "$kills" -kill-downtime 0 -workers 8 -keys 3 -base-port 25000 2>"$root/$server.log" \
        | tee "$root/$server.txt" || true
    line[$server]=$(grep '^server=' "$root/$server.txt" || echo "server=$server (the nemesis failed; see $root/$server.log)")
    verdict[$server]=$("$check" "$root/$server/history.txt" | grep '^verdict' || true)
    echo "${verdict[$server]}"
done

field() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<"${line[$1]}"; }
echo
printf '%-11s %12s %9s %16s %6s  %s\n' server operations unknown unknown-writes lost verdict
for server in etcd statehouse; do
    printf '%-11s %12s %9s %16s %6s  %s\n' "$server" "$(field "$server" ops)" "$(field "$server" unknown)" \
        "$(field "$server" unknown-writes)" "$(field "$server" lost-writes)" "${verdict[$server]#verdict: }"
done
echo "(histories and logs in $root)"
