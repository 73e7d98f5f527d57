#!/usr/bin/env bash
# The benchmark: the stack against a bare ASGI ceiling doing the least work each request needs,
# on PostgreSQL (BENCH_DATABASE_URL, default the local server; a throwaway database is created in
# it) and on SQLite, or on MariaDB (--database mariadb, BENCH_MYSQL_URL). Prints the tables and
# writes them as JSON under bench/results/ (docs/performance.md explains them).
# Usage: scripts/bench.sh [--quick | --large] [--database postgresql|mariadb] [--rows N]
#        [--seconds S] [--rounds R] [--skip-sqlite]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install.sh requirements-dev.txt
export PATH="$PWD/.venv/bin:$PATH"

if ! command -v wrk >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing wrk (Debian package)" >&2
    { apt-get update -qq && apt-get install -y -qq wrk; } >&2 || echo "could not install wrk" >&2
fi

exec python -m bench.run "$@"
