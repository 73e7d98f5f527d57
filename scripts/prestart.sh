#!/usr/bin/env bash
# Makes the configured database ready: wait for it, migrate it to head, seed it.
# The one-off job before a rollout; safe to run any number of times, also concurrently.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m app.backend_pre_start
alembic upgrade head
python -m app.initial_data
