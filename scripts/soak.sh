#!/usr/bin/env bash
# Soak test (not part of the test suite): mixed traffic (70% GET /recipe/{id}, 20% search,
# 10% POST) against the gunicorn stack on a fresh PostgreSQL database, then a check that every
# acknowledged write is stored. Prints one line; exits non-zero on any 5xx or lost write.
#
#   scripts/soak.sh [DURATION_SECONDS]      (default 300)
#
# SOAK_DATABASE_URL: a role that may create databases (default
# postgresql://postgres@127.0.0.1:5432/postgres); SOAK_CONCURRENCY: clients (16).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install.sh requirements-dev.txt
export PATH="$PWD/.venv/bin:$PATH"

exec python -m bench.soak "${1:-300}"
