#!/usr/bin/env bash
# Rewrites the code into the project's format and applies ruff's safe fixes.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

ruff check --fix .
ruff format .
