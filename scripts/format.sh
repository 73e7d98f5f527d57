#!/usr/bin/env bash
# Rewrites the code into the project's format and applies ruff's safe fixes, then reports what
# is left for a person (a line the formatter cannot shorten, say) with a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

# Fixes first (they may reorder imports), then the format: a long line the formatter can wrap
# must not stop the run before it gets to it.
ruff check --fix --exit-zero --silent .
ruff format .
ruff check .
