"""Runs the migrations against the database the app's settings name for prestart
(MIGRATION_DATABASE_URL when set, else the app's database).

Tests pass a URL of their own through `config.attributes["database_url"]`.
"""

import logging
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

import app.models  # noqa: F401  (registers every table on Base.metadata)
from app.core.config import get_settings, mask_password
from app.db.base import Base, autogenerate_filter
from app.db.locks import lock_for_prestart
from app.db.session import create_db_engine

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
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
        compare_server_default=True,
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


def migrate(connection: Connection) -> None:
    configure(connection=connection)
    with context.begin_transaction():
        # Two prestart jobs may start at once: the second waits here, then finds nothing to do.
        lock_for_prestart(connection)
        migration_context = context.get_context()
        before = migration_context.get_current_revision()
        context.run_migrations()
    after = migration_context.get_current_revision()
    url = mask_password(connection.engine.url)
    # Said the same way by every command that runs this file (upgrade, current, check, ...):
    # only a change of revision is reported as a migration.
    if after != before:
        logger.info("migrated database %s from revision %s to %s", url, before, after)
    else:
        logger.info("database %s at revision %s", url, after)


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
    run_migrations_online()
