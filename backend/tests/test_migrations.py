"""The Alembic migrations on SQLite, PostgreSQL and MariaDB: round trip, agreement with the
models, DDL."""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.dialects.mysql import TINYINT
from sqlalchemy.engine.interfaces import ReflectedColumn
from sqlalchemy.exc import IntegrityError

from app.core.config import Settings
from app.db.base import Base, autogenerate_filter, compare_server_default
from app.db.migrations import alembic_config, head_revision
from app.db.session import create_db_engine
from app.models import User
from bench.databases import sqlite_url, throwaway_database
from bench.servers import VENV_BIN, clean_env, free_port, run_command
from tests.utils.migrations import downgrade, migrate

SCHEMA_TABLES = {"user", "recipe", "login_failure", "seed", "alembic_version"}
USERS = User.metadata.tables["user"]


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all, of each kind."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "fresh.db")
        return
    admin_url = request.getfixturevalue(
        f"{'postgres' if request.param == 'postgresql' else 'mysql'}_admin_url"
    )
    with throwaway_database(admin_url) as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """The app's own engine (SQLite foreign keys on) on a migrated, empty database."""
    engine = create_db_engine(Settings(DATABASE_URL=database_url, _env_file=None))
    yield engine
    engine.dispose()


def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def stored_revisions(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.scalars(text("SELECT version_num FROM alembic_version")))
    finally:
        engine.dispose()


def test_migrations_have_a_single_head() -> None:
    script = ScriptDirectory.from_config(alembic_config())

    heads = script.get_heads()

    assert len(heads) == 1, f"several heads, merge them: {heads}"
    assert heads[0] == head_revision()
    assert len(script.get_bases()) == 1, script.get_bases()


def test_upgrade_downgrade_upgrade_round_trip(empty_database_url: str) -> None:
    url = empty_database_url

    migrate(url)
    after_upgrade = table_names(url)
    downgrade(url, "base")
    after_downgrade = table_names(url)
    revisions_at_base = stored_revisions(url)
    migrate(url)

    assert after_upgrade == SCHEMA_TABLES
    assert after_downgrade == {"alembic_version"}
    assert revisions_at_base == []
    assert table_names(url) == SCHEMA_TABLES
    assert stored_revisions(url) == [head_revision()]


def test_upgrade_head_twice_changes_nothing(empty_database_url: str) -> None:
    migrate(empty_database_url)
    migrate(empty_database_url)

    assert table_names(empty_database_url) == SCHEMA_TABLES
    assert stored_revisions(empty_database_url) == [head_revision()]


def test_models_and_migrations_agree(database_url: str) -> None:
    """What `alembic revision --autogenerate` would find: nothing."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            # As alembic/env.py configures it: PostgreSQL-only indexes are not expected on SQLite.
            opts = {
                "compare_type": True,
                "compare_server_default": compare_server_default,
                "include_object": autogenerate_filter(connection.dialect.name),
            }
            context = MigrationContext.configure(connection, opts=opts)
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()

    assert differences == [], differences


@pytest.mark.parametrize(
    "configured",
    [None, "sqlite", "postgresql", "mysql", "mariadb"],
    ids=[
        "no-database-url",
        "sqlite-file",
        "postgres-closed-port",
        "mysql-closed-port",
        "mariadb-closed-port",
    ],
)
def test_upgrade_head_sql_prints_ddl_without_a_database(
    configured: str | None, tmp_path: Path
) -> None:
    env = clean_env(PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    sqlite_file = tmp_path / "never-created.db"
    if configured == "sqlite":
        env["DATABASE_URL"] = sqlite_url(sqlite_file)
    elif configured is not None:
        env["DATABASE_URL"] = f"{configured}://app@127.0.0.1:{free_port()}/recipes"

    result = run_command(["alembic", "upgrade", "head", "--sql"], env, timeout=60)

    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE" in result.stdout, result.stdout
    assert "CREATE INDEX ix_recipe_url" in result.stdout, result.stdout
    assert f"'{head_revision()}'" in result.stdout, result.stdout
    assert not sqlite_file.exists()
    if configured == "postgresql":
        assert 'CREATE TABLE "user"' in result.stdout, result.stdout
        assert "BOOLEAN DEFAULT false NOT NULL" in result.stdout, result.stdout
    # Without a server to ask, the URL's scheme says which: each has its binary collation.
    if configured == "mysql":
        assert "CHARSET=utf8mb4 COLLATE utf8mb4_0900_bin" in result.stdout, result.stdout
    if configured == "mariadb":
        assert "CHARSET=utf8mb4 COLLATE utf8mb4_nopad_bin" in result.stdout, result.stdout


def columns_of(engine: sa.Engine, table: str) -> dict[str, ReflectedColumn]:
    return {column["name"]: column for column in inspect(engine).get_columns(table)}


def assert_column(
    columns: dict[str, ReflectedColumn], name: str, kind: type[Any], nullable: bool
) -> None:
    column = columns[name]
    if kind is sa.Boolean and isinstance(column["type"], TINYINT):
        kind = TINYINT  # MariaDB's and MySQL's BOOLEAN is TINYINT(1)
    assert isinstance(column["type"], kind), (name, column["type"])
    assert column["nullable"] is nullable, (name, column)
    if kind is sa.String:
        assert column["type"].length == 256, (name, column["type"])


def test_user_table_matches_the_spec(engine: sa.Engine) -> None:
    columns = columns_of(engine, "user")
    inspector = inspect(engine)

    # The tutorial's columns, in its order; later migrations may add more after them.
    assert list(columns)[:5] == ["id", "first_name", "surname", "email", "is_superuser"]
    assert_column(columns, "id", sa.Integer, nullable=False)
    assert_column(columns, "first_name", sa.String, nullable=True)
    assert_column(columns, "surname", sa.String, nullable=True)
    assert_column(columns, "email", sa.String, nullable=False)
    assert_column(columns, "is_superuser", sa.Boolean, nullable=False)
    primary_key = inspector.get_pk_constraint("user")
    assert primary_key["constrained_columns"] == ["id"], primary_key
    assert primary_key["name"] in ("pk_user", None), primary_key  # MariaDB names them all PRIMARY
    unique = inspector.get_unique_constraints("user")
    assert [(u["name"], u["column_names"]) for u in unique] == [("uq_user_email", ["email"])]


def test_recipe_table_matches_the_spec(engine: sa.Engine) -> None:
    columns = columns_of(engine, "recipe")
    inspector = inspect(engine)

    # The tutorial's columns, in its order; later migrations may add more after them.
    assert list(columns)[:5] == ["id", "label", "url", "source", "submitter_id"]
    assert_column(columns, "id", sa.Integer, nullable=False)
    assert_column(columns, "label", sa.String, nullable=False)
    assert_column(columns, "url", sa.String, nullable=True)
    assert_column(columns, "source", sa.String, nullable=True)
    assert_column(columns, "submitter_id", sa.Integer, nullable=True)
    primary_key = inspector.get_pk_constraint("recipe")
    assert primary_key["constrained_columns"] == ["id"], primary_key
    assert primary_key["name"] in ("pk_recipe", None), primary_key  # MariaDB: PRIMARY
    indexes = {index["name"]: index for index in inspector.get_indexes("recipe")}
    expected_indexes = {"ix_recipe_url": ["url"], "ix_recipe_submitter_id": ["submitter_id"]}
    if engine.dialect.name == "postgresql":
        # Trigram GIN index for the search's ILIKE '%keyword%' (migration 0002).
        expected_indexes["ix_recipe_label_trgm"] = ["label"]
    assert {name: index["column_names"] for name, index in indexes.items()} == expected_indexes
    assert not any(index["unique"] for index in indexes.values()), indexes
    [foreign_key] = inspector.get_foreign_keys("recipe")
    assert foreign_key["name"] == "fk_recipe_submitter_id_user", foreign_key
    assert foreign_key["constrained_columns"] == ["submitter_id"], foreign_key
    assert (foreign_key["referred_table"], foreign_key["referred_columns"]) == ("user", ["id"])
    assert foreign_key["options"].get("ondelete") == "SET NULL", foreign_key


def test_is_superuser_defaults_to_false_in_the_database(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(USERS.insert().values(email="plain@example.com"))
        is_superuser = connection.scalar(select(USERS.c.is_superuser))

    assert is_superuser is False, is_superuser


def test_database_refuses_a_second_user_with_the_same_email(engine: sa.Engine) -> None:
    insert = USERS.insert().values(email="same@example.com")
    with engine.begin() as connection:
        connection.execute(insert)

    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert)


def test_database_refuses_recipe_of_unknown_submitter(engine: sa.Engine) -> None:
    """On SQLite this needs `PRAGMA foreign_keys=ON`, which the app's engine sets."""
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("INSERT INTO recipe (label, submitter_id) VALUES ('Stew', 42)"))


def test_deleting_a_user_keeps_their_recipes_without_submitter(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        user_id = connection.scalar(
            USERS.insert().values(email="gone@example.com").returning(USERS.c.id)
        )
        connection.execute(
            text("INSERT INTO recipe (label, submitter_id) VALUES ('Stew', :id)"), {"id": user_id}
        )
    with engine.begin() as connection:
        connection.execute(USERS.delete().where(USERS.c.id == user_id))
        remaining = connection.execute(text("SELECT label, submitter_id FROM recipe")).all()

    assert [tuple(row) for row in remaining] == [("Stew", None)]
