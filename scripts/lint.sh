#!/usr/bin/env bash
# The checks CI runs before the tests: formatting, lint and types.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

ruff format --check .
ruff check .
mypy
