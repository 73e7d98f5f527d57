#!/usr/bin/env bash
# One command for a development server: installs the locked dependencies into .venv,
# prepares the database (SQLite ./example.db unless DATABASE_URL says otherwise) and serves
# on http://127.0.0.1:${PORT:-8001}, reloading on code changes. Logs as text, for a terminal,
# unless LOG_FORMAT is set in the environment.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install.sh requirements.txt
export PATH="$PWD/.venv/bin:$PATH"
export LOG_FORMAT="${LOG_FORMAT:-text}"

scripts/prestart.sh
exec uvicorn app.main:app --host 127.0.0.1 --port "${PORT:-8001}" --reload --reload-dir backend/app
