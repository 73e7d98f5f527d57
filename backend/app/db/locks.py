"""Serialises the steps of concurrent prestart jobs (two replicas rolling out at once)."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text

from app.db.base import is_mysql

# Any constant shared by every job that migrates or seeds this database.
PRESTART_LOCK_KEY = 7_305_211_042
PRESTART_LOCK_NAME = "recipe-api-prestart"
# Seconds a job waits for another one's lock on MariaDB/MySQL: longer than any migration.
MYSQL_LOCK_WAIT = 86_400


class LockNotAcquired(Exception):
    pass


@contextmanager
def prestart_lock(connection: Connection) -> Iterator[None]:
    """Hold the prestart lock for the block, on a connection outside any transaction: the
    block's own transactions commit before another job gets the lock, so that job sees them.

    A session-level lock, released here on every path, and by the database if the job dies:
    `pg_advisory_lock` on PostgreSQL, `GET_LOCK` on MariaDB/MySQL. SQLite serialises writers by
    itself, with a file lock. Needs a direct connection, never one through a transaction-mode
    pooler (MIGRATION_DATABASE_URL).
    """
    dialect = connection.dialect.name
    if dialect == "postgresql":
        acquire = text("SELECT pg_advisory_lock(:key)").bindparams(key=PRESTART_LOCK_KEY)
        release = text("SELECT pg_advisory_unlock(:key)").bindparams(key=PRESTART_LOCK_KEY)
    elif is_mysql(dialect):
        acquire = text("SELECT GET_LOCK(:name, :wait)").bindparams(
            name=PRESTART_LOCK_NAME, wait=MYSQL_LOCK_WAIT
        )
        release = text("SELECT RELEASE_LOCK(:name)").bindparams(name=PRESTART_LOCK_NAME)
    else:
        yield
        return
    if connection.execute(acquire).scalar() in (0, None, False):
        raise LockNotAcquired(f"the prestart lock was not granted within {MYSQL_LOCK_WAIT}s")
    connection.commit()
    try:
        yield
    finally:
        if connection.in_transaction():
            connection.rollback()
        connection.execute(release)
        connection.commit()
