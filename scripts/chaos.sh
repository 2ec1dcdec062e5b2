#!/usr/bin/env bash
# The real-process nemesis (`make chaos`): three Statehouse members on loopback, each behind a
# fault-injecting TCP proxy on its peer port, under a workload of etcd's Go client (puts,
# linearizable gets, compare-and-swaps on the value and on the version) for the whole run, while
# a fault a few seconds apart hits a random member: kill -9 and a restart after a random
# downtime, SIGSTOP and SIGCONT, or a partition from both peers (connections cut, blackholed or
# delayed). Then everything heals, every key is read again and every acknowledged write is read
# back at its revision, and the history goes through check-history (the project's
# linearizability checker). As a proof that the check can fail, a copy of the history with one
# final read doctored must be refused.
#
#   scripts/chaos.sh STATEHOUSE CHECK_HISTORY [DURATION] [NEMESIS FLAGS...]
#   (DURATION: a Go duration such as 90s or 10m, or seconds; default 60s)
# Prints the nemesis's counts and the verdict; exits 1 unless the run is linearizable with nothing
# acknowledged lost. Data, logs and the history stay in the printed directory after a failure
# (always with CHAOS_KEEP=1).
set -euo pipefail
binary=${1:?usage: scripts/chaos.sh STATEHOUSE CHECK_HISTORY [DURATION] [NEMESIS FLAGS...]}
check=${2:?usage: scripts/chaos.sh STATEHOUSE CHECK_HISTORY [DURATION] [NEMESIS FLAGS...]}
duration=${3:-60s}
shift $(($# < 3 ? $# : 3))
[[ $duration =~ ^[0-9]+$ ]] && duration=${duration}s
nemesis=$(bash "$(dirname "$0")/build-nemesis.sh")
dir=$(mktemp -d /tmp/statehouse-chaos.XXXXXX)
echo "chaos: $duration of kill -9, SIGSTOP and partitions against $binary (in $dir)"

status=0
"$nemesis" -server statehouse -binary "$binary" -dir "$dir" -duration "$duration" \
    -faults kill,pause,partition -interval 3s -workers 8 -keys 8 -base-port "${CHAOS_BASE_PORT:-24000}" "$@" \
    2>"$dir/nemesis.log" | tee "$dir/summary.txt" || status=$?
[ "$status" -eq 0 ] || { echo "chaos: the nemesis failed (status $status; $dir/nemesis.log)"; tail -5 "$dir/nemesis.log"; }

verdict=0
"$check" "$dir/history.txt" | tee "$dir/check.txt" || verdict=$?

# The check must refuse a history in which one final read returns a value nobody wrote.
awk '{ if ($4 == "get" && $NF != "failed" && $NF != "unknown") last = NR } { lines[NR] = $0 }
     END { for (i = 1; i <= NR; i++) { if (i == last) { n = split(lines[i], f, " "); f[n-1] = "never-written"; s = f[1];
           for (j = 2; j <= n; j++) s = s " " f[j]; print s } else print lines[i] } }' \
    "$dir/history.txt" >"$dir/doctored.txt"
if "$check" "$dir/doctored.txt" >"$dir/doctored-check.txt"; then
    echo "chaos: check-history accepted a doctored history ($dir/doctored.txt): the check is broken"
    exit 1
fi
echo "check-history refuses a doctored copy (a final read of a value never written): the check can fail"

if [ "$status" -ne 0 ] || [ "$verdict" -ne 0 ]; then
    echo "chaos verdict: FAILED (logs and history in $dir)"
    exit 1
fi
echo "chaos verdict: linearizable, nothing acknowledged lost"
[ -n "${CHAOS_KEEP:-}" ] || rm -rf "$dir"
