# The app image (default target `runtime`) and the test image (`--target test`).
#   docker build -t recipe-api .
#   docker build --target test -t recipe-api-test .
# The virtualenv lives at /app/.venv in every stage: a venv is not relocatable, and at that path
# scripts/install.sh (run by scripts/test.sh) finds it installed and installs nothing.

FROM python:3.11-slim-bookworm AS python-base
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /app


# Builder: the hashed lock into a virtualenv, with the project's own install script.
FROM python-base AS builder
COPY scripts/install.sh scripts/install.sh
COPY requirements.txt ./
RUN scripts/install.sh requirements.txt


# The runtime lock plus the dev one, for the test image.
FROM builder AS builder-dev
COPY requirements-dev.txt ./
RUN scripts/install.sh requirements-dev.txt


# Shared by the runtime and test images: a fixed non-root user, the venv first on PATH.
FROM python-base AS app-base
# A numeric USER below, so that runAsNonRoot-style checks can verify it without /etc/passwd.
RUN groupadd --system --gid 10001 app \
    && useradd --system --no-log-init --uid 10001 --gid app --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin app
ENV PATH=/app/.venv/bin:$PATH
EXPOSE 8001
# /health answers without the database, so an outage never restarts the container; urllib
# because the slim image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8001') + '/health', timeout=4)"]
CMD ["scripts/start.sh"]


# The test image: the whole repository, the dev dependencies and the PostgreSQL and MariaDB
# server binaries (the prestart and outage tests start throwaway servers), run by
# docker-compose.test.yml.
FROM app-base AS test
# Debian replaces package versions with each point release, so exact pins would break the build;
# the main cluster the package would create is not wanted (the tests make their own).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-common \
    && sed -ri 's/#(create_main_cluster) .*$/\1 = false/' /etc/postgresql-common/createcluster.conf \
    && apt-get install -y --no-install-recommends postgresql mariadb-server \
    && rm -rf /var/lib/apt/lists/* \
    && chown app:app /app
COPY --from=builder-dev /app/.venv /app/.venv
COPY --chown=app:app . .
USER 10001:10001


# The app image (the default target): only what serving and the prestart job need, owned by
# root so the app user cannot change it.
FROM app-base AS runtime
COPY --from=builder /app/.venv /app/.venv
COPY alembic.ini gunicorn.conf.py ./
COPY alembic/ alembic/
COPY scripts/ scripts/
COPY backend/app/ backend/app/
# Bytecode compiled now, since the app user may not write it at run time.
RUN python -m compileall -q backend/app alembic
USER 10001:10001
