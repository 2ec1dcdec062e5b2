#!/usr/bin/env bash
# Cross-build, cross-process replay (`make test`): runs the same seeds in separate processes of a
# debug and a release build of `simulate` (and the release build twice) and requires every seed's
# summary line, trace hash included, to be identical. Swift seeds its hashing per process, so a
# run that depended on dictionary order, uninitialized memory or an optimizer-sensitive float
# would show here.
#
#   scripts/replay.sh DEBUG_SIMULATE RELEASE_SIMULATE [SEEDS]   (SEEDS: A..B, default 1..20)
set -euo pipefail
debug=${1:?usage: scripts/replay.sh DEBUG_SIMULATE RELEASE_SIMULATE [SEEDS]}
release=${2:?usage: scripts/replay.sh DEBUG_SIMULATE RELEASE_SIMULATE [SEEDS]}
seeds=${3:-1..20}
dir=$(mktemp -d /tmp/statehouse-replay.XXXXXX)
trap 'rm -rf "$dir"' EXIT

# One line per seed: "seed N nodes M: ok | trace H | …" (everything but the wall-clock totals).
summaries() { "$1" --seeds "$seeds" --verbose | grep '^seed ' || true; }

summaries "$debug" >"$dir/debug" &
summaries "$release" >"$dir/release-1"
summaries "$release" >"$dir/release-2"
wait

expected=$(($(echo "$seeds" | cut -d. -f3) - $(echo "$seeds" | cut -d. -f1) + 1))
status=0
for run in debug release-1 release-2; do
    count=$(wc -l <"$dir/$run")
    if [[ $count -ne $expected ]]; then
        echo "replay: the $run run printed $count seed lines, expected $expected" >&2
        status=1
    fi
done
for run in release-1 release-2; do
    if ! diff -u "$dir/debug" "$dir/$run" >&2; then
        echo "replay: seeds $seeds differ between the debug run and the $run run (lines above; replay one with simulate --seed N --trace)" >&2
        status=1
    fi
done
if grep -v ': ok |' "$dir/debug" >&2; then
    echo "replay: a seed failed (lines above)" >&2
    status=1
fi
[[ $status -eq 0 ]] && echo "replay: seeds $seeds gave identical trace hashes in a debug process and two release processes"
exit $status
