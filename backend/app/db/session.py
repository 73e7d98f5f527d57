"""Engines, built from settings by whoever needs them (app, prestart, tests).

Nothing here connects at import time: each gunicorn worker builds its own engine in the app's
lifespan, after the fork, so no pooled connection is ever shared between processes.
"""

import math
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from app.core.config import Settings
from app.db.base import is_mysql


def create_db_engine(settings: Settings, *, pooled: bool = True) -> Engine:
    """An engine tuned for the URL's dialect.

    `pooled=True`, the app's: a pool per worker, its connections in autocommit, so a unit of
    work of one statement is one round trip (no BEGIN or COMMIT around it), and no liveness
    check on checkout (`app/db/database.py` handles a connection found dead instead).
    `pooled=False`, for one-off jobs like prestart: a connection each time, in transactions.
    """
    url = make_url(settings.database_url)
    options: dict[str, Any] = {}
    if pooled:
        options |= {
            "isolation_level": "AUTOCOMMIT",
            # Nothing to roll back when a connection goes back to the pool: no round trip.
            "skip_autocommit_rollback": True,
        }
    if url.get_backend_name() == "sqlite":
        return _create_sqlite_engine(settings, url.render_as_string(hide_password=False), options)
    psycopg2 = url.get_backend_name() == "postgresql" and url.get_driver_name() == "psycopg2"
    if pooled:
        options |= {
            "pool_size": settings.DB_POOL_SIZE,
            "max_overflow": settings.DB_MAX_OVERFLOW,
            "pool_recycle": settings.DB_POOL_RECYCLE,
            "pool_timeout": settings.DB_POOL_TIMEOUT,
        }
    else:
        options["poolclass"] = NullPool
    connect_args: dict[str, Any] = {}
    if psycopg2:
        connect_args["connect_timeout"] = settings.DB_CONNECT_TIMEOUT
        connect_args["application_name"] = "recipe-api"
        if settings.DB_STATEMENT_TIMEOUT_MS:
            connect_args["options"] = f"-c statement_timeout={settings.DB_STATEMENT_TIMEOUT_MS}"
    if is_mysql(url.get_backend_name()):
        # utf8mb4 whatever the server's or the URL's default: all of Unicode, emoji included.
        connect_args |= {"charset": "utf8mb4", "connect_timeout": settings.DB_CONNECT_TIMEOUT}
        if settings.DB_STATEMENT_TIMEOUT_MS:
            # PyMySQL bounds only the TCP connect by connect_timeout, not the server's greeting,
            # and reads without a limit: an unresponsive server would hold a request for good.
            # A statement ends within DB_STATEMENT_TIMEOUT_MS on the server; this is the backstop.
            limit = math.ceil(settings.DB_STATEMENT_TIMEOUT_MS / 1000) + settings.DB_CONNECT_TIMEOUT
            connect_args |= {"read_timeout": limit, "write_timeout": limit}
        engine = create_engine(url, connect_args=connect_args, **options)
        _configure_mysql_sessions(engine, settings.DB_STATEMENT_TIMEOUT_MS)
        return engine
    return create_engine(url, connect_args=connect_args, **options)


def _configure_mysql_sessions(engine: Engine, statement_timeout_ms: int) -> None:
    """Each new connection's session: strict about what it stores, in UTC, and with the
    statement timeout (MariaDB's `max_statement_time`, MySQL's `max_execution_time`)."""

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        assignments = [
            # A value that does not fit is an error, never silently cut or changed.
            "sql_mode = CONCAT_WS(',', @@sql_mode, 'STRICT_ALL_TABLES', 'NO_ZERO_DATE')",
            "time_zone = '+00:00'",
        ]
        if statement_timeout_ms:
            if "mariadb" in dbapi_connection.get_server_info().lower():
                assignments.append(f"max_statement_time = {statement_timeout_ms / 1000:.3f}")
            else:
                assignments.append(f"max_execution_time = {int(statement_timeout_ms)}")
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET SESSION " + ", ".join(assignments))


def _create_sqlite_engine(settings: Settings, url: str, options: dict[str, Any]) -> Engine:
    engine = create_engine(
        url,
        **options,
        connect_args={
            # The app's database threads (app/db/database.py) take turns with pooled connections.
            "check_same_thread": False,
            "timeout": settings.SQLITE_BUSY_TIMEOUT_MS / 1000,
        },
    )

    @event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        # WAL lets readers proceed while one writer commits; NORMAL sync is durable across
        # application crashes (https://www.sqlite.org/wal.html#performance_considerations).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(settings.SQLITE_BUSY_TIMEOUT_MS)}")
        cursor.close()
        # SQLite's lower() folds ASCII only, so ILIKE (rendered as lower() LIKE lower()) missed
        # "CRÈME" for "crème"; Python's folds all of Unicode, as PostgreSQL does.
        dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)

    return engine


def _unicode_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value
