"""Where the schema stands compared with the migrations in `alembic/`, and what the revisions and
`alembic/env.py` share."""

from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from sqlalchemy import Connection, event, inspect, text

from app.db.base import is_mysql

# backend/app/db/migrations.py -> repository root, where alembic.ini and alembic/ live.
PROJECT_ROOT = Path(__file__).resolve().parents[3]
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"


def alembic_config() -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    return config


@lru_cache
def repository_revisions() -> ScriptDirectory:
    """The revisions in `alembic/versions/`, parsed once: the files do not change at run time."""
    return ScriptDirectory.from_config(alembic_config())


@lru_cache
def head_revision() -> str | None:
    """The newest revision in the repository."""
    return repository_revisions().get_current_head()


@lru_cache
def known_revisions() -> frozenset[str]:
    """Every revision in the repository: one the database has that is not among them was made
    by a newer release."""
    return frozenset(revision.revision for revision in repository_revisions().walk_revisions())


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


# MariaDB and MySQL commit each DDL statement as it runs, so a revision that fails half way
# leaves part of its changes in place, and Alembic still records the revision before it. While
# an upgrade runs there, this table names the revision in progress; it is dropped once the
# upgrade completes. Found at the start of the next one, it stops the job (docs/operations.md).
MIGRATION_MARKER = "alembic_migration_started"
RECOVERY = "docs/operations.md, 'A migration that failed half way on MariaDB'"


class HalfAppliedMigration(Exception):
    def __init__(self, revision: str, started_at: object) -> None:
        super().__init__(
            f"migration {revision} started at {started_at} and did not complete: MariaDB/MySQL "
            f"commit DDL as it runs, so part of {revision} may be in place. Bring the schema "
            f"back to the revision before it (or complete {revision} by hand), then drop the "
            f"table {MIGRATION_MARKER}; see {RECOVERY}"
        )
        self.revision = revision


def refuse_half_applied(connection: Connection) -> None:
    """Raise if an earlier upgrade of this database stopped in the middle of a revision."""
    if not inspect(connection).has_table(MIGRATION_MARKER):
        return
    row = connection.execute(text(f"SELECT revision, started_at FROM {MIGRATION_MARKER}")).first()
    if row is not None:
        raise HalfAppliedMigration(row.revision, row.started_at)


def mark_started(connection: Connection, revision: str) -> None:
    """Record that `revision` is about to run (on a connection in autocommit)."""
    connection.execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {MIGRATION_MARKER} "
            "(revision VARCHAR(32) NOT NULL PRIMARY KEY, started_at DATETIME NOT NULL)"
        )
    )
    connection.execute(text(f"DELETE FROM {MIGRATION_MARKER}"))
    connection.execute(
        text(f"INSERT INTO {MIGRATION_MARKER} VALUES (:revision, UTC_TIMESTAMP())"),
        {"revision": revision},
    )


def clear_started(connection: Connection) -> None:
    connection.execute(text(f"DROP TABLE IF EXISTS {MIGRATION_MARKER}"))


# Statements that change nothing: a revision that failed after only these left nothing behind.
_CHANGES_NOTHING = ("SELECT", "SET", "SHOW", "DESCRIBE", "PRAGMA")


class ChangeCounter:
    """Counts the statements run on `connection` that may change the schema or the data, since
    the last `reset()`: a revision that fails before any of them (a lock it could not get, say)
    left nothing half way."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.count = 0
        event.listen(connection, "after_cursor_execute", self._seen)

    def _seen(self, _connection: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().upper().startswith(_CHANGES_NOTHING):
            self.count += 1

    def reset(self) -> None:
        self.count = 0

    def close(self) -> None:
        event.remove(self.connection, "after_cursor_execute", self._seen)


def give_up_waiting_for_locks(seconds: int = 5) -> None:
    """The first step of a revision that alters a table in use.

    ALTER TABLE waits for its table's lock behind every open transaction on it, and every query
    of the app then waits behind the ALTER: give up after `seconds` instead. The job fails, the
    app goes on, and the job can be run again when the table is quieter. PostgreSQL: lock_timeout
    for the revision's transaction; MariaDB/MySQL: lock_wait_timeout (metadata locks) for the
    job's session; SQLite: nothing to wait behind but a writer."""
    dialect = op.get_context().dialect.name
    if dialect == "postgresql":
        op.execute(f"SET LOCAL lock_timeout = '{int(seconds)}s'")
    elif is_mysql(dialect):
        op.execute(f"SET SESSION lock_wait_timeout = {int(seconds)}")


def pending_revisions(
    script: ScriptDirectory, destination: object, current: str | None
) -> list[str]:
    """The revisions of `script` an upgrade from `current` to `destination` runs, in order;
    empty for a downgrade or a command that migrates nothing (`current`, `check`)."""
    if not isinstance(destination, str):
        return []
    try:
        steps = script.iterate_revisions(destination, current)
        return [revision.revision for revision in reversed(list(steps))]
    except RevisionError:  # a downgrade's destination is no descendant of `current`
        return []
