#!/usr/bin/env bash
# Builds the nemesis (Tools/go/src/nemesis: a real-process fault injector and workload on etcd's
# own Go client, clientv3 3.4 from Debian's golang-etcd-server-dev) in GOPATH mode, offline.
#   scripts/build-nemesis.sh [OUT]   (default OUT: .build/nemesis); prints OUT
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/.build/nemesis}
if ! command -v go >/dev/null || [[ ! -d /usr/share/gocode/src/go.etcd.io/etcd/clientv3 ]]; then
    echo "the nemesis needs Debian's golang-go and golang-etcd-server-dev (make deps installs them)" >&2
    exit 1
fi
mkdir -p "$(dirname "$out")"
GOPATH="$root/Tools/go:/usr/share/gocode" GO111MODULE=off GOFLAGS= GOCACHE="${GOCACHE:-$root/.build/go-cache}" \
    go build -o "$out" nemesis >&2
echo "$out"
