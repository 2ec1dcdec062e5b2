#!/usr/bin/env bash
# Installs the Debian packages Statehouse needs to build and test, if any are missing.
# As root it runs apt-get; otherwise it prints the exact command to run and fails.
# Then it installs the Python etcd3 client the cluster tests use (scripts/install-python-client.sh).
set -euo pipefail

packages=(librocksdb-dev pkg-config etcd-client etcd-server curl systemd iproute2 prometheus python3 python3-venv nodejs
    golang-go golang-etcd-server-dev)
python_client="$(dirname "$0")/install-python-client.sh"

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
[ ${#missing[@]} -eq 0 ] && exec bash "$python_client"

command="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "Statehouse needs these Debian packages: ${missing[*]}" >&2
    echo "Install them as root with:" >&2
    echo "    sudo sh -c '$command'" >&2
    exit 1
fi
echo "Installing ${missing[*]} ..."
# etcd-server is only for the tests (they start their own members on free ports): keep the
# package from starting a system etcd on 2379, where `make run` puts its first member.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created_policy=1
fi
status=0
sh -c "$command" >/dev/null || status=$?
[ "$created_policy" -eq 1 ] && rm -f "$policy"
[ "$status" -eq 0 ] || exit "$status"
exec bash "$python_client"
