"""Gunicorn settings for `scripts/start.sh`; values come from the app's settings (environment/.env).

Nothing here touches the database: each worker builds its own engine in the app's lifespan,
after the fork.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "backend"))

from app.core.config import get_settings


def default_worker_count(cores: int | None = None) -> int:
    """One async worker per core plus one, capped: each worker also runs a thread pool."""
    return max(2, min((cores or os.cpu_count() or 1) + 1, 8))


_settings = get_settings()

wsgi_app = "app.main:app"
worker_class = "uvicorn_worker.UvicornWorker"
bind = f"{_settings.HOST}:{_settings.PORT}"
workers = _settings.WEB_CONCURRENCY or default_worker_count()
# Workers read this to size their warning about the database's connection limit.
os.environ["WEB_CONCURRENCY"] = str(workers)

timeout = _settings.GUNICORN_TIMEOUT
graceful_timeout = _settings.GUNICORN_GRACEFUL_TIMEOUT
keepalive = _settings.GUNICORN_KEEPALIVE
forwarded_allow_ips = _settings.FORWARDED_ALLOW_IPS

accesslog = "-"
errorlog = "-"
loglevel = _settings.LOG_LEVEL
# Worker heartbeat files in memory, not on a container's overlay filesystem.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None
