#!/usr/bin/env bash
# Recompiles the hashed lock files from pyproject.toml (run after changing a dependency).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v uv >/dev/null 2>&1; then
    echo "uv is needed to compile the locks: python3 -m pip install uv" >&2
    exit 1
fi
common=(--universal --python-version 3.11 --generate-hashes --quiet)
uv pip compile pyproject.toml "${common[@]}" -o requirements.txt
uv pip compile pyproject.toml --extra dev "${common[@]}" -o requirements-dev.txt
