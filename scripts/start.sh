#!/usr/bin/env bash
# Serves the app with gunicorn and uvicorn workers (settings in gunicorn.conf.py).
# Run scripts/prestart.sh first: the app expects a migrated database.
set -euo pipefail
cd "$(dirname "$0")/.."

# Prometheus metrics across the workers: each worker writes its values to files in this
# directory and /metrics adds them up (app/core/metrics.py). Emptied here, before any worker
# starts, so that no process of an earlier run is counted. In memory (/dev/shm) where the system
# has it: a container's root filesystem may be read-only. Two servers on one host need one each.
if [ -z "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then
        PROMETHEUS_MULTIPROC_DIR=/dev/shm/recipe-api-metrics
    else
        PROMETHEUS_MULTIPROC_DIR="${TMPDIR:-/tmp}/recipe-api-metrics"
    fi
fi
export PROMETHEUS_MULTIPROC_DIR
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
rm -f "$PROMETHEUS_MULTIPROC_DIR"/*.db

exec gunicorn --config gunicorn.conf.py
