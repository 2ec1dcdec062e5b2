# Helpers for the drills that run a three-member Statehouse or etcd cluster on loopback, one
# cluster at a time (sourced by failover-gap.sh and bench-scale.sh). The caller sets:
#   binary      the Statehouse binary
#   root        the directory for data directories (ROOT/SERVER/NAME) and logs (ROOT/SERVER-NAME.log)
#   port_digit  the first digit of the ports: member i listens on D<i>379 (client), D<i>380 (peer)
#   token       the cluster token's prefix (the server's name is appended)
#   member_flags (optional array) flags both servers take, added to every member's command line
# and declares the associative array pids (member name → process id).

# start SERVER NAME: starts member NAME (n1, n2, n3) of SERVER's cluster (statehouse or etcd)
# on its data directory, in the background, appending to its log.
start() {
    local server=$1 name=$2 i=${2#n} d=$port_digit
    local client="http://127.0.0.1:${d}${i}379" peer="http://127.0.0.1:${d}${i}380"
    local cluster="n1=http://127.0.0.1:${d}1380,n2=http://127.0.0.1:${d}2380,n3=http://127.0.0.1:${d}3380"
    local command=("$binary")
    [ "$server" = etcd ] && command=(etcd --log-level error)
    "${command[@]}" --name "$name" --data-dir "$root/$server/$name" ${member_flags[@]+"${member_flags[@]}"} \
        --listen-client-urls "$client" --advertise-client-urls "$client" \
        --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
        --initial-cluster "$cluster" --initial-cluster-token "$token-$server" >>"$root/$server-$name.log" 2>&1 &
    pids[$name]=$!
}

# healthy NAME: waits up to 60 s for member NAME's /health to report true.
healthy() {
    for _ in $(seq 1 600); do
        curl -sf "http://127.0.0.1:${port_digit}${1#n}379/health" | grep -q '"health":"true"' && return 0
        sleep 0.1
    done
    echo "$1 did not become healthy (logs in $root)" >&2
    return 1
}

# leader: prints the name of the member that names itself leader (Maintenance/Status through
# the JSON gateway, which both servers serve).
leader() {
    for _ in $(seq 1 100); do
        for i in 1 2 3; do
            local status id leader
            status=$(curl -sf -X POST -d '{}' "http://127.0.0.1:${port_digit}${i}379/v3/maintenance/status" 2>/dev/null) || continue
            id=$(sed -n 's/.*"member_id":"\([0-9]*\)".*/\1/p' <<<"$status")
            leader=$(sed -n 's/.*"leader":"\([0-9]*\)".*/\1/p' <<<"$status")
            [ -n "$id" ] && [ "$id" = "$leader" ] && { echo "n$i"; return 0; }
        done
        sleep 0.1
    done
    echo "no leader" >&2
    return 1
}
