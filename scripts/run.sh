#!/usr/bin/env bash
# Set up (first run) and run the main job on the embedded default: SQLite + console channel.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/reminders plans check
exec .venv/bin/reminders serve "$@"
