"""Settings for more than one app instance: the prestart steps' own database URL
(MIGRATION_DATABASE_URL), and the pool warning counting every replica and the prestart job."""

import logging
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from app.core.config import Settings, normalise_database_url
from app.db.capacity import (
    PRESTART_CONNECTIONS,
    connection_limit,
    warn_if_pools_exceed_database_limit,
)

POOLER_URL = "postgresql://recipes:secret@pgbouncer:6432/recipes"
DIRECT_URL = "postgres://recipes:secret@db.internal:5432/recipes"


def settings_of(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_prestart_uses_the_app_database_when_no_migration_url_is_set() -> None:
    settings = settings_of(DATABASE_URL=POOLER_URL)
    assert settings.migration_database_url == settings.database_url
    assert settings.for_prestart().database_url == settings.database_url


def test_prestart_uses_the_migration_url_and_the_app_keeps_its_own() -> None:
    settings = settings_of(DATABASE_URL=POOLER_URL, MIGRATION_DATABASE_URL=DIRECT_URL)
    direct = "postgresql+psycopg2://recipes:secret@db.internal:5432/recipes"
    assert settings.migration_database_url == direct, "normalised like DATABASE_URL"
    assert settings.for_prestart().database_url == direct
    assert settings.database_url == normalise_database_url(POOLER_URL)


def test_migration_url_wins_over_postgres_variables_too() -> None:
    settings = settings_of(POSTGRES_SERVER="pgbouncer", MIGRATION_DATABASE_URL=DIRECT_URL)
    assert "@pgbouncer:" in settings.database_url
    assert "@db.internal:5432/" in settings.for_prestart().database_url


def test_app_replicas_defaults_to_one_and_refuses_zero() -> None:
    assert settings_of().APP_REPLICAS == 1
    with pytest.raises(ValueError, match="APP_REPLICAS"):
        settings_of(APP_REPLICAS=0)


@pytest.mark.parametrize("server", ["postgresql", "mysql"])
@pytest.mark.parametrize("over", [False, True], ids=["fits-exactly", "one-too-many"])
def test_pool_warning_counts_every_replica_and_the_prestart_job(
    server: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture, over: bool
) -> None:
    admin = "postgres_admin_url" if server == "postgresql" else "mysql_admin_url"
    admin_url: str = request.getfixturevalue(admin)
    engine = create_engine(normalise_database_url(admin_url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            max_connections, reserved = connection_limit(connection)
        # One worker with one connection per replica: the replicas and the prestart job's
        # connection fill what the server allows exactly, or by one more.
        replicas = max_connections - reserved - PRESTART_CONNECTIONS + over
        settings = settings_of(
            DATABASE_URL=admin_url,
            APP_REPLICAS=replicas,
            WEB_CONCURRENCY=1,
            DB_POOL_SIZE=1,
            DB_MAX_OVERFLOW=0,
        )
        with caplog.at_level(logging.WARNING, logger="app.db.capacity"):
            warn_if_pools_exceed_database_limit(engine, settings)
    finally:
        engine.dispose()
    warned = "connection pools may exceed the database" in caplog.text
    assert warned is over, caplog.text
    if over:
        assert f"{replicas} replicas (APP_REPLICAS) x 1 workers" in caplog.text
        assert f"= {replicas} connections, plus {PRESTART_CONNECTIONS} for the prestart job" in (
            caplog.text
        )
        assert f"max_connections is {max_connections}" in caplog.text
