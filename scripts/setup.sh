#!/usr/bin/env bash
# Create .venv and install the project (--dev: the test and lint tools; --browser: Playwright for
# the browser tests). pip runs only when pyproject.toml or the extras asked for changed since the
# last install: .venv/.installed holds the digest of pyproject.toml and the extras installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
STAMP=.venv/.installed

wanted=()
for arg in "$@"; do
    case "$arg" in
        --dev) wanted+=(dev) ;;
        --browser) wanted+=(browser) ;;
        *) echo "usage: scripts/setup.sh [--dev] [--browser]" >&2; exit 2 ;;
    esac
done

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
fi

digest=$(sha256sum pyproject.toml | cut -d' ' -f1)
installed=()
if [ -f "$STAMP" ]; then
    read -r stamped_digest stamped_extras <"$STAMP" || true
    read -r -a installed <<<"${stamped_extras:-}"
    missing=0
    for extra in "${wanted[@]}"; do
        [[ " ${installed[*]} " == *" $extra "* ]] || missing=1
    done
    if [ "${stamped_digest:-}" = "$digest" ] && [ "$missing" = 0 ]; then
        exit 0
    fi
fi

# Keep what an earlier run installed (a later plain run must not drop the test tools).
extras=$(printf '%s\n' "${installed[@]}" "${wanted[@]}" | sed '/^$/d' | sort -u | paste -sd, -)
rm -f "$STAMP"
if [ -n "$extras" ]; then
    .venv/bin/python -m pip install --quiet -e ".[$extras]"
else
    .venv/bin/python -m pip install --quiet -e .
fi
echo "$digest ${extras//,/ }" >"$STAMP"
