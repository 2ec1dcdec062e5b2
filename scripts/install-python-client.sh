#!/usr/bin/env bash
# Installs the Python etcd3 client the cluster tests use (Tests/Clients/python) into a virtualenv,
# .build/python-etcd3, with exactly the versions pinned in Tests/Clients/python/requirements.txt.
# Does nothing if that virtualenv already has them. Needs Debian's python3 and python3-venv
# (scripts/install-deps.sh installs them first) and PyPI; fails, printing pip's output, if the
# installation fails.
set -euo pipefail
cd "$(dirname "$0")/.."

requirements=Tests/Clients/python/requirements.txt
venv=.build/python-etcd3
# A copy of the requirements the virtualenv was made from, written once it is complete.
stamp=$venv/requirements.txt

if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$stamp" && "$venv/bin/python" -c 'import etcd3' 2>/dev/null; then
    exit 0
fi

echo "Installing the Python etcd3 client ($requirements) into $venv ..."
rm -rf "$venv"
mkdir -p .build
log=$(mktemp)
status=0
{
    /usr/bin/python3 -m venv "$venv" &&
        "$venv/bin/pip" install --disable-pip-version-check --no-input --only-binary=:all: --no-binary=etcd3 \
            -r "$requirements" &&
        "$venv/bin/python" -c 'import etcd3'
} >"$log" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
    cat "$log" >&2
    rm -f "$log"
    rm -rf "$venv"
    echo >&2
    echo "error: could not install the Python etcd3 client into $venv (pins in $requirements)." >&2
    echo "It needs /usr/bin/python3 with python3-venv (apt-get install python3-venv) and PyPI." >&2
    echo "make test runs the etcd3 client against Statehouse and fails without it." >&2
    exit 1
fi
rm -f "$log"
cp "$requirements" "$stamp"
