#!/usr/bin/env bash
# Soak test (not part of the test suite): mixed traffic (70% GET /recipe/{id}, 20% search,
# 10% POST) against the gunicorn stack on a fresh PostgreSQL database, then a check that every
# acknowledged write is stored. Prints one line; exits non-zero on any 5xx or lost write.
#
#   scripts/soak.sh [DURATION_SECONDS]      (default 300)
#
# SOAK_DATABASE_URL: a role that may create databases (default
# postgresql://postgres@127.0.0.1:5432/postgres); SOAK_CONCURRENCY: requests in flight (16).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d .venv/bin ]; then
    export PATH="$PWD/.venv/bin:$PATH"
fi
export PYTHONPATH="$PWD/backend${PYTHONPATH:+:$PYTHONPATH}"

exec python scripts/soak.py "${1:-300}"
