"""Where the schema stands compared with the migrations in `alembic/`."""

from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from sqlalchemy import Connection, inspect, text

# backend/app/db/migrations.py -> repository root, where alembic.ini and alembic/ live.
PROJECT_ROOT = Path(__file__).resolve().parents[3]
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"


def alembic_config() -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    return config


@lru_cache
def head_revision() -> str | None:
    """The newest revision in the repository (read once: the files do not change at run time)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


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
