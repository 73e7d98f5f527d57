#!/usr/bin/env bash
# Installs a hashed lock file into .venv (created if missing), only when the lock changed.
# Usage: scripts/install.sh [requirements.txt|requirements-dev.txt]
set -euo pipefail
cd "$(dirname "$0")/.."

lock=${1:-requirements.txt}
venv=.venv
python=${PYTHON:-python3}
stamp="$venv/.installed-$(basename "$lock" .txt)"
digest=$(sha256sum "$lock" | cut -d' ' -f1)

if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv"
    "$python" -m venv "$venv"
fi
# The project's own code on the venv's path: `app` (and its tests) from backend/, the tools
# (`bench`) from the root. Python, alembic, pytest and gunicorn then need no PYTHONPATH.
site_packages=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
paths=$(printf '%s\n' "$PWD/backend" "$PWD")
# Written only when it changes: in the images the venv belongs to root, not to the user running.
if [ "$(cat "$site_packages/recipe_api.pth" 2>/dev/null)" != "$paths" ]; then
    printf '%s\n' "$paths" >"$site_packages/recipe_api.pth"
fi
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
    exit 0
fi
echo "installing $lock into $venv"
if command -v uv >/dev/null 2>&1; then
    # Bytecode compiled now: start-up (prestart, each worker) then reads no source twice.
    uv pip install --quiet --compile-bytecode --python "$venv/bin/python" --require-hashes -r "$lock"
else
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes -r "$lock"
fi
# Installing the dev lock also satisfies the runtime one.
echo "$digest" >"$stamp"
if [ "$lock" = requirements-dev.txt ]; then
    sha256sum requirements.txt | cut -d' ' -f1 >"$venv/.installed-requirements"
fi
