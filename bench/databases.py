"""Throwaway databases, and reading back what a run wrote, without the app.

Shared by the benchmark, the soak and the test suite.
"""

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pymysql
from sqlalchemy import bindparam, create_engine, text
from sqlalchemy.engine import URL, make_url

from app.core.config import normalise_database_url

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_MYSQL_ADMIN_URL = "mysql://root@127.0.0.1:3306/test"


def libpq_url(url: str) -> str:
    """A URL psycopg2 accepts: SQLAlchemy's `postgresql+psycopg2://` scheme spelt plainly."""
    return "postgresql://" + url.split("://", 1)[1]


def pymysql_connect(url: str, **options: Any) -> "pymysql.Connection[Any]":
    """A PyMySQL connection to the database of a `mysql://` or `mariadb://` URL, in utf8mb4."""
    parsed = make_url(url)
    return pymysql.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 3306,
        user=parsed.username or "root",
        password=parsed.password or "",
        database=parsed.database,
        charset="utf8mb4",
        **options,
    )


def with_database(admin_url: str, name: str) -> str:
    """`admin_url` pointed at the database `name`, password kept."""
    url = make_url(normalise_database_url(admin_url)).set(database=name)
    return url.render_as_string(hide_password=False)


@contextmanager
def throwaway_database(admin_url: str, prefix: str = "recipes_test") -> Iterator[str]:
    """A new, empty database next to the one `admin_url` names (a user that may create
    databases), on PostgreSQL or MariaDB/MySQL, dropped on the way out. PostgreSQL drops it
    together with any connection still open to it."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_database_url(admin_url), isolation_level="AUTOCOMMIT")
    quoted = admin.dialect.identifier_preparer.quote(name)
    postgresql = admin.dialect.name == "postgresql"
    try:
        with admin.connect() as connection:
            # The server's default character set may be anything: the app's is utf8mb4.
            options = "" if postgresql else " CHARACTER SET utf8mb4"
            connection.execute(text(f"CREATE DATABASE {quoted}{options}"))
        yield with_database(admin_url, name)
    finally:
        with admin.connect() as connection:
            force = " WITH (FORCE)" if postgresql else ""
            connection.execute(text(f"DROP DATABASE IF EXISTS {quoted}{force}"))
        admin.dispose()


def sqlite_url(path: Path) -> str:
    return URL.create("sqlite", database=str(path)).render_as_string()


def stored_labels(database_url: str, ids: Iterable[int]) -> dict[int, str]:
    """Labels of the recipes with these ids, read from the database directly."""
    wanted = sorted(ids)
    query = text("SELECT id, label FROM recipe WHERE id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )
    found: dict[int, str] = {}
    engine = create_engine(normalise_database_url(database_url))
    try:
        with engine.connect() as connection:
            for start in range(0, len(wanted), 5000):
                rows = connection.execute(query, {"ids": wanted[start : start + 5000]})
                found.update({row.id: row.label for row in rows})
    finally:
        engine.dispose()
    return found


def lost_writes(database_url: str, acknowledged: dict[int, str]) -> list[str]:
    """Each acknowledged recipe that is missing or changed, described; empty when none."""
    stored = stored_labels(database_url, acknowledged)
    return [
        f"id {recipe_id}: acknowledged {label!r}, stored {stored.get(recipe_id)!r}"
        for recipe_id, label in sorted(acknowledged.items())
        if stored.get(recipe_id) != label
    ]
