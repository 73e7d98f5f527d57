#!/usr/bin/env bash
# Lint, type-check and run the whole test suite; arguments go to pytest.
# PostgreSQL comes from TEST_DATABASE_URL, else testcontainers (a running Docker engine),
# else those tests are skipped -- or fail, with REQUIRE_POSTGRES=1.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install.sh requirements-dev.txt
export PATH="$PWD/.venv/bin:$PATH"

scripts/lint.sh
python -m pytest "$@"
