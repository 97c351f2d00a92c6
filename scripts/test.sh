#!/usr/bin/env bash
# The tests, from a fresh clone: sets up .venv with the test tools, starts the local PostgreSQL
# where it is installed, and installs Debian's Chromium and Playwright for the browser tests
# where this user can (root). Tests whose server or browser is missing are skipped with a message
# saying how to run them, except under CI=true, where a skip of those tests fails the run.
# Arguments go to pytest: bash scripts/test.sh tests/test_cli.py -q -x
set -euo pipefail
cd "$(dirname "$0")/.."

browser=()
if command -v chromium >/dev/null 2>&1; then
    browser=(--browser)
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing Debian's Chromium for the browser tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt_lock=(-o DPkg::Lock::Timeout=300)
    if apt-get "${apt_lock[@]}" update -qq &&
        apt-get "${apt_lock[@]}" install -y -qq --no-install-recommends chromium </dev/null >/dev/null; then
        browser=(--browser)
    else
        echo "test.sh: could not install chromium; the browser tests will be skipped" >&2
    fi
fi

bash scripts/setup.sh --dev "${browser[@]}"

# axe-core for the browser tests' accessibility check, at the version tests/package-lock.json pins.
axe_wanted=$(sed -n 's/.*"axe-core": "\(.*\)".*/\1/p' tests/package.json)
axe_have=$(sed -n 's/^  "version": "\(.*\)".*/\1/p' tests/node_modules/axe-core/package.json 2>/dev/null || true)
if [ ${#browser[@]} -gt 0 ] && command -v npm >/dev/null 2>&1 && [ "$axe_wanted" != "$axe_have" ]; then
    npm ci --prefix tests --no-audit --no-fund --loglevel=error ||
        echo "test.sh: could not install axe-core; the browser tests will be skipped" >&2
fi

# PostgreSQL-backed tests use the machine's server; start it if it is installed and not running.
if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
fi

exec .venv/bin/python -m pytest "$@"
