"""Start-up check: can the database hold every worker's connection pool at once?

Each gunicorn worker owns a pool of up to DB_POOL_SIZE + DB_MAX_OVERFLOW connections, and
APP_REPLICAS instances of the app (pods, hosts) each run WEB_CONCURRENCY workers; the prestart
job may connect at the same time. When all of them together exceed what PostgreSQL accepts,
requests fail under load with "too many clients" instead of waiting for a pooled connection, so
the app says so when it starts.
"""

import logging
import os

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from app.core.config import Settings
from app.db.base import is_mysql

logger = logging.getLogger(__name__)

# The prestart job (wait, migrate, seed) holds one connection at a time, and a rollout may run it
# while the app serves.
PRESTART_CONNECTIONS = 1


def serving_workers(settings: Settings) -> int:
    """Worker processes sharing the database: gunicorn.conf.py exports WEB_CONCURRENCY."""
    if settings.WEB_CONCURRENCY:
        return settings.WEB_CONCURRENCY
    exported = os.environ.get("WEB_CONCURRENCY", "")
    return int(exported) if exported.isdigit() and int(exported) > 0 else 1


def pool_connections(settings: Settings, workers: int) -> int:
    """Connections the pools of every replica's workers may hold at once."""
    return settings.APP_REPLICAS * workers * (settings.DB_POOL_SIZE + settings.DB_MAX_OVERFLOW)


def connection_limit(connection: Connection) -> tuple[int, int]:
    """`max_connections`, and how many of those only superusers may use (MariaDB and MySQL keep
    one more above `max_connections` for them: none to subtract)."""
    if is_mysql(connection.dialect.name):
        return int(connection.execute(text("SELECT @@max_connections")).scalar_one()), 0
    max_connections = int(connection.execute(text("SHOW max_connections")).scalar_one())
    # reserved_connections (PostgreSQL 16+) is missing on older servers: NULL with missing_ok.
    reserved = connection.execute(
        text(
            "SELECT current_setting('superuser_reserved_connections')::int"
            " + coalesce(current_setting('reserved_connections', true), '0')::int"
        )
    ).scalar_one()
    return max_connections, int(reserved)


def warn_if_pools_exceed_database_limit(engine: Engine, settings: Settings) -> None:
    """Log a warning when replicas x workers x (pool size + overflow) + the prestart job's
    connection exceeds the database's limit.

    PostgreSQL and MariaDB/MySQL. A database that cannot be reached is logged and skipped: the
    worker starts anyway and /health/ready reports the outage.
    """
    if engine.dialect.name == "sqlite":
        return
    workers = serving_workers(settings)
    pools = pool_connections(settings, workers)
    try:
        with engine.connect() as connection:
            max_connections, reserved = connection_limit(connection)
    except (SQLAlchemyError, ValueError) as exc:
        logger.warning(
            "connection limit not checked: database unreachable (%s)", exc.__class__.__name__
        )
        return
    available = max_connections - reserved
    if pools + PRESTART_CONNECTIONS > available:
        logger.warning(
            "connection pools may exceed the database: %d replicas (APP_REPLICAS) x %d workers x "
            "(DB_POOL_SIZE %d + DB_MAX_OVERFLOW %d) = %d connections, plus %d for the prestart "
            "job, but max_connections is %d with %d reserved for superusers; lower "
            "WEB_CONCURRENCY, DB_POOL_SIZE or DB_MAX_OVERFLOW, run fewer replicas, or raise "
            "max_connections",
            settings.APP_REPLICAS,
            workers,
            settings.DB_POOL_SIZE,
            settings.DB_MAX_OVERFLOW,
            pools,
            PRESTART_CONNECTIONS,
            max_connections,
            reserved,
        )
