"""Gunicorn settings for `scripts/start.sh`; values come from the app's settings (environment/.env).

Nothing here touches the database: each worker builds its own engine in the app's lifespan,
after the fork (`preload_app` stays off).
"""

import os
from pathlib import Path
from typing import Any

from app.core.config import get_settings
from app.core.logging import logging_config
from app.core.metrics import MULTIPROCESS_DIRECTORY as _METRICS_DIRECTORY


def available_cores() -> int:
    """CPUs this process may run on (a cpuset or `taskset` limits this; a CPU quota does not)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_worker_count(cores: int | None = None) -> int:
    """One async worker per core plus one, capped: each worker also runs a thread pool."""
    return max(2, min((cores or available_cores()) + 1, 8))


_settings = get_settings()
if not _settings.SECRET_KEY and _settings.ENVIRONMENT == "development":
    # One signing key for every worker, so that a token issued by one is good at the others;
    # production requires SECRET_KEY (app/core/config.py).
    os.environ["SECRET_KEY"] = _settings.signing_key

wsgi_app = "app.main:app"
# The worker that shipped inside uvicorn is deprecated; it now lives in `uvicorn-worker`.
worker_class = "uvicorn_worker.UvicornWorker"
preload_app = False
bind = f"{_settings.HOST}:{_settings.PORT}"
# Each worker listens on a socket of its own (SO_REUSEPORT) and the kernel spreads new
# connections across them. With one shared socket, whichever worker woke first accepted a burst
# of keep-alive connections, often all of a load test's, while the other worker idled.
reuse_port = True
workers = _settings.WEB_CONCURRENCY or default_worker_count()
# Workers read this to size their warning about the database's connection limit.
os.environ["WEB_CONCURRENCY"] = str(workers)

timeout = _settings.GUNICORN_TIMEOUT
# On SIGTERM workers stop accepting, finish the requests in flight within this many seconds,
# then the master exits 0. Keep the orchestrator's grace period (compose stop_grace_period) longer.
graceful_timeout = _settings.GUNICORN_GRACEFUL_TIMEOUT
keepalive = _settings.GUNICORN_KEEPALIVE
forwarded_allow_ips = _settings.FORWARDED_ALLOW_IPS

# Gunicorn's own lines (the master's, and the workers' start and exit) in the app's format, on
# stdout. No access log: the app writes one line per request, with its id, route and duration.
accesslog = None
errorlog = "-"
loglevel = _settings.LOG_LEVEL
logconfig_dict = logging_config(_settings.LOG_LEVEL, _settings.LOG_FORMAT)
# Worker heartbeat files in memory, not on a container's overlay filesystem.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None
# Gunicorn 25.1+ opens a control socket for `gunicornc` in $XDG_RUNTIME_DIR or ~/.gunicorn by
# default. Nothing here uses it; a non-root container user has no writable home, and two servers
# on one host would fight over the same path.
control_socket_disable = True


def when_ready(server: Any) -> None:
    # With reuse_port the master opens no socket of its own, so gunicorn's "Listening at:" line
    # names nothing: say where the workers listen.
    server.log.info("Workers listen at: http://%s", bind)
    if _settings.METRICS_ENABLED and not os.environ.get(_METRICS_DIRECTORY):
        server.log.warning(
            "%s is not set: each worker answers /metrics with its own values only; "
            "start with scripts/start.sh, which sets it",
            _METRICS_DIRECTORY,
        )


def child_exit(server: Any, worker: Any) -> None:
    """A worker ended (exit, crash, SIGKILL): its gauges (requests in progress, connections in
    use) leave the metrics with it; its counters stay, so that totals never go back."""
    if os.environ.get(_METRICS_DIRECTORY):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
