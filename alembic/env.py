"""Runs the migrations against the database the app's settings name for prestart
(MIGRATION_DATABASE_URL when set, else the app's database).

Tests pass a URL of their own through `config.attributes["database_url"]`.
"""

import logging
import time
from contextlib import ExitStack

from alembic import context
from alembic.runtime.migration import MigrationInfo
from alembic.util import CommandError
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

import app.models  # noqa: F401  (registers every table on Base.metadata)
from app.core.config import get_settings, mask_password
from app.core.logging import configure_logging, step_fields
from app.db.base import Base, autogenerate_filter, compare_server_default, is_mysql
from app.db.locks import prestart_lock
from app.db.migrations import (
    ChangeCounter,
    HalfAppliedMigration,
    clear_started,
    mark_started,
    pending_revisions,
    refuse_half_applied,
)
from app.db.session import create_db_engine

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    # The app's logging (LOG_FORMAT, LOG_LEVEL), so that the prestart job's lines are alike; on
    # stderr when stdout is the SQL itself (`alembic upgrade head --sql`).
    stream = "stderr" if context.is_offline_mode() else "stdout"
    configure_logging(get_settings().LOG_LEVEL, get_settings().LOG_FORMAT, stream)
logger = logging.getLogger("alembic.env")

target_metadata = Base.metadata


def database_url() -> str:
    url = config.attributes.get("database_url")
    return str(url) if url else get_settings().migration_database_url


def configure(**options: object) -> None:
    connection = options.get("connection")
    if isinstance(connection, Connection):
        dialect = connection.dialect.name
    else:
        dialect = make_url(database_url()).get_backend_name()
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=compare_server_default,
        # Leaves out what a model marks as another database's only (the PostgreSQL trigram index).
        include_object=autogenerate_filter(dialect),
        # SQLite cannot ALTER most things; batch mode recreates the table instead.
        render_as_batch=database_url().startswith("sqlite"),
        **options,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: print the DDL for review, no database needed."""
    configure(url=database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def destination() -> object:
    """Where `alembic upgrade/downgrade` goes; None for commands that migrate nothing."""
    try:
        return context.get_revision_argument()
    except KeyError:
        return None


def migrate(connection: Connection) -> None:
    # MariaDB/MySQL: which revision runs is recorded outside the migration, on a connection of
    # its own in autocommit, so that a failure half way is found (app/db/migrations.py).
    guarded = is_mysql(connection.dialect.name)
    with ExitStack() as cleanup:
        marker = None
        if guarded:
            marker = cleanup.enter_context(
                connection.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            )
        pending: list[str] = []
        changes = ChangeCounter(connection)
        cleanup.callback(changes.close)

        def mark_next(*, step: MigrationInfo, **_: object) -> None:
            """After a revision: the next one is the one in progress."""
            done = step.up_revision_id
            if marker is not None and done in pending[:-1]:
                mark_started(marker, pending[pending.index(done) + 1])
            changes.reset()

        url = mask_password(connection.engine.url)
        started = time.perf_counter()
        before: str | None = None
        lock_wait_ms: float | None = None
        try:
            # Two prestart jobs may start at once: the second waits here, then finds nothing
            # to do.
            with prestart_lock(connection):
                lock_wait_ms = round((time.perf_counter() - started) * 1000, 1)
                # Configured outside any transaction, so that Alembic commits its own.
                configure(connection=connection, on_version_apply=mark_next)
                with context.begin_transaction():
                    before = context.get_context().get_current_revision()
                    if marker is not None:
                        refuse_half_applied(marker)
                        pending[:] = pending_revisions(context.script, destination(), before)
                        if pending:
                            mark_started(marker, pending[0])
                    changes.reset()
                    try:
                        context.run_migrations()
                    except Exception:
                        # Failed before changing anything (waiting for a lock, say): nothing of
                        # it is in place, and running the job again is the whole recovery.
                        if marker is not None and changes.count == 0:
                            clear_started(marker)
                        raise
                if marker is not None and pending:
                    clear_started(marker)
                after = context.get_context().get_current_revision()
        except Exception as exc:
            failed = step_fields(
                "migrate", "failed", started, revision_before=before, lock_wait_ms=lock_wait_ms
            )
            message = "migrating database %s from revision %s failed"
            if isinstance(exc, CommandError | HalfAppliedMigration):
                # Refused before migrating (a revision this code does not know, a revision half
                # applied): the reason is the message.
                logger.error(f"{message}: %s", url, before, exc, extra=failed)
            else:
                logger.exception(message, url, before, extra=failed)
            raise
    done = step_fields(
        "migrate",
        "ok",
        started,
        revision_before=before,
        revision_after=after,
        lock_wait_ms=lock_wait_ms,
    )
    # Said the same way by every command that runs this file (upgrade, current, check, ...):
    # only a change of revision is reported as a migration.
    if after != before:
        logger.info("migrated database %s from revision %s to %s", url, before, after, extra=done)
    else:
        logger.info("database %s at revision %s", url, after, extra=done)


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        migrate(connection)
        return
    # No statement timeout: a migration may rewrite a large table.
    settings = get_settings().model_copy(
        update={"DATABASE_URL": database_url(), "DB_STATEMENT_TIMEOUT_MS": 0}
    )
    engine = create_db_engine(settings, pooled=False)
    try:
        with engine.connect() as connection:
            migrate(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    try:
        run_migrations_online()
    except HalfAppliedMigration:
        raise SystemExit(1) from None  # logged above
