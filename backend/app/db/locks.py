"""Serialises the steps of concurrent prestart jobs (two replicas rolling out at once)."""

from sqlalchemy import Connection, text

# Any constant shared by every job that migrates or seeds this database.
PRESTART_LOCK_KEY = 7_305_211_042


def lock_for_prestart(connection: Connection) -> None:
    """Block until no other prestart step holds the lock; released when the transaction ends.

    PostgreSQL only: SQLite serialises writers by itself, with a file lock.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PRESTART_LOCK_KEY})
