#!/usr/bin/env bash
# Serves the app with gunicorn and uvicorn workers (settings in gunicorn.conf.py).
# Run scripts/prestart.sh first: the app expects a migrated database.
set -euo pipefail
cd "$(dirname "$0")/.."

exec gunicorn --config gunicorn.conf.py
