#!/usr/bin/env bash
# Regenerate the console's screenshots in docs/screenshots/ (the README shows two of them): the
# browser tests photograph every page, here into docs/screenshots instead of var/screenshots.
# Made-up patients only (the tests' seeded world). Needs what the browser tests need.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f docs/screenshots/*.png
CONSOLE_SCREENSHOTS=docs/screenshots bash scripts/test.sh tests/test_console_browser.py -q "$@"
