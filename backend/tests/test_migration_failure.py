"""Prestart when the database accepts connections but a migration fails half way.

The repository's migrations are copied to a temporary directory with one more revision after
the head that changes the schema and then fails; `scripts/prestart.sh` runs with
ALEMBIC_CONFIG pointing at the copy, as alembic's CLI honours that variable.
"""

import re
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, inspect, select, text

from app.core.config import normalise_database_url
from app.db.migrations import MIGRATION_MARKER, PROJECT_ROOT, head_revision
from app.models import User
from bench.databases import sqlite_url, throwaway_database
from bench.servers import clean_env, run_script
from tests.utils.logs import json_lines

pytestmark = pytest.mark.slow

BROKEN_REVISION = "9f_half_done"
USERS = User.metadata.tables["user"]
SCHEMA_TABLES = {"user", "recipe", "login_failure", "seed", "alembic_version"}
# Changes the schema in two ways, then fails on a statement every database rejects.
FAILING_STEP = 'op.execute("SELECT no_such_column FROM no_such_table")'


def revision_source(revision: str, down_revision: str, upgrade: str, downgrade: str) -> str:
    """A revision file (test only); `upgrade` and `downgrade` are their functions' bodies."""
    return textwrap.dedent(
        f'''\
        """{revision} (test only)"""

        import sqlalchemy as sa
        from alembic import op

        from app.db.migrations import give_up_waiting_for_locks

        revision = "{revision}"
        down_revision = "{down_revision}"
        branch_labels = None
        depends_on = None


        def upgrade() -> None:
        {{upgrade}}


        def downgrade() -> None:
        {{downgrade}}
        '''
    ).format(
        upgrade=textwrap.indent(textwrap.dedent(upgrade).strip(), "    "),
        downgrade=textwrap.indent(textwrap.dedent(downgrade).strip(), "    "),
    )


def broken_revision_source(down_revision: str, *, fail: bool) -> str:
    last_step = FAILING_STEP if fail else "pass"
    upgrade = f"""
        op.create_table("half_done", sa.Column("id", sa.Integer(), primary_key=True))
        with op.batch_alter_table("recipe") as batch:
            batch.add_column(sa.Column("rating", sa.Integer(), nullable=True))
        {last_step}
    """
    downgrade = """
        with op.batch_alter_table("recipe") as batch:
            batch.drop_column("rating")
        op.drop_table("half_done")
    """
    return revision_source(BROKEN_REVISION, down_revision, upgrade, downgrade)


@pytest.fixture
def migrations_copy(tmp_path: Path) -> Path:
    """alembic.ini and alembic/ copied; returns the copied alembic.ini."""
    shutil.copy(PROJECT_ROOT / "alembic.ini", tmp_path / "alembic.ini")
    shutil.copytree(
        PROJECT_ROOT / "alembic",
        tmp_path / "alembic",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return tmp_path / "alembic.ini"


def write_broken_revision(config: Path, *, fail: bool) -> Path:
    head = head_revision()
    assert head is not None
    path = config.parent / "alembic" / "versions" / f"{BROKEN_REVISION}.py"
    path.write_text(broken_revision_source(head, fail=fail))
    return path


def prestart(database_url: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    overrides = {"DATABASE_URL": database_url, "PRESTART_MAX_WAIT": "10"}
    if config is not None:
        overrides["ALEMBIC_CONFIG"] = str(config)
    return run_script("prestart.sh", clean_env(**overrides), timeout=120)


def describe(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"exit {result.returncode}\n--- stdout ---\n{result.stdout}"
        f"\n--- stderr ---\n{result.stderr}"
    )


def schema_state(database_url: str) -> dict[str, object]:
    engine = create_engine(normalise_database_url(database_url))
    try:
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            columns = {column["name"] for column in inspect(connection).get_columns("recipe")}
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).all()
            users = connection.execute(select(func.count()).select_from(USERS)).scalar_one()
            recipes = connection.execute(text("SELECT count(*) FROM recipe")).scalar_one()
    finally:
        engine.dispose()
    return {
        "tables": tables,
        "recipe_columns": columns,
        "revision": [row[0] for row in revision],
        "users": users,
        "recipes": recipes,
    }


@pytest.fixture
def empty_postgres_url(postgres_admin_url: str) -> Iterator[str]:
    with throwaway_database(postgres_admin_url, prefix="recipes_migfail") as url:
        yield url


def test_failed_migration_exits_nonzero_leaves_postgres_at_the_previous_revision_and_fix_completes(
    empty_postgres_url: str, migrations_copy: Path
) -> None:
    url = empty_postgres_url
    first = prestart(url)
    assert first.returncode == 0, describe(first)
    before = schema_state(url)
    assert before["revision"] == [head_revision()], before

    write_broken_revision(migrations_copy, fail=True)
    failed = prestart(url, migrations_copy)
    assert failed.returncode != 0, describe(failed)
    assert "no_such_table" in failed.stderr, describe(failed)
    steps = {line.get("step"): line for line in json_lines(failed.stdout)}
    assert "seed" not in steps, f"prestart went on after the failure\n{describe(failed)}"
    assert steps["migrate"]["outcome"] == "failed", describe(failed)
    assert steps["migrate"]["revision_before"] == head_revision(), describe(failed)
    assert "no_such_table" in steps["migrate"]["exception"], describe(failed)
    # Transactional DDL: the table and column the failed revision added are rolled back too.
    after = schema_state(url)
    assert after == before, f"schema changed by a failed migration:\n{before}\n{after}"
    assert "half_done" not in after["tables"]  # type: ignore[operator]

    write_broken_revision(migrations_copy, fail=False)
    fixed = prestart(url, migrations_copy)
    assert fixed.returncode == 0, describe(fixed)
    done = schema_state(url)
    assert done["revision"] == [BROKEN_REVISION], done
    assert "half_done" in done["tables"], done  # type: ignore[operator]
    assert "rating" in done["recipe_columns"], done  # type: ignore[operator]
    assert (done["users"], done["recipes"]) == (before["users"], before["recipes"]), done


def test_failed_migration_on_sqlite_exits_nonzero_keeps_the_revision_and_next_prestart_completes(
    tmp_path: Path, migrations_copy: Path
) -> None:
    """SQLite has no transactional DDL through alembic: only the revision is guaranteed to stay."""
    url = sqlite_url(tmp_path / "prestart.db")
    first = prestart(url)
    assert first.returncode == 0, describe(first)

    broken = write_broken_revision(migrations_copy, fail=True)
    failed = prestart(url, migrations_copy)
    assert failed.returncode != 0, describe(failed)
    assert schema_state(url)["revision"] == [head_revision()]

    broken.unlink()  # the broken revision withdrawn
    again = prestart(url, migrations_copy)
    assert again.returncode == 0, describe(again)
    state = schema_state(url)
    assert state["revision"] == [head_revision()], state
    assert (state["users"], state["recipes"]) == (1, 3), state


@pytest.fixture
def empty_mysql_url(mysql_admin_url: str) -> Iterator[str]:
    with throwaway_database(mysql_admin_url, prefix="recipes_migfail") as url:
        yield url


def test_failed_migration_on_mariadb_stops_the_next_prestart_until_the_documented_recovery(
    empty_mysql_url: str, migrations_copy: Path
) -> None:
    """MariaDB commits DDL as it runs: the failed revision's table and column stay, while the
    revision recorded is still the one before. The next prestart must not run on as if
    nothing happened: it stops, naming the revision and the recovery in docs/operations.md,
    which, followed, lets the job complete."""
    url = empty_mysql_url
    first = prestart(url)
    assert first.returncode == 0, describe(first)
    before = schema_state(url)

    write_broken_revision(migrations_copy, fail=True)
    failed = prestart(url, migrations_copy)
    assert failed.returncode != 0, describe(failed)
    assert "no_such_table" in failed.stderr, describe(failed)
    half = schema_state(url)
    assert half["revision"] == before["revision"], half
    assert "half_done" in half["tables"], half  # type: ignore[operator]

    write_broken_revision(migrations_copy, fail=False)  # the revision is fixed...
    refused = prestart(url, migrations_copy)  # ... but the schema is half way
    assert refused.returncode == 1, describe(refused)
    steps = {line.get("step"): line for line in json_lines(refused.stdout)}
    assert "seed" not in steps, (
        f"prestart went on past the half-applied revision\n{describe(refused)}"
    )
    migrate = steps["migrate"]
    assert migrate["outcome"] == "failed", describe(refused)
    assert f"migration {BROKEN_REVISION} started at" in migrate["message"], describe(refused)
    assert "docs/operations.md" in migrate["message"], describe(refused)
    assert "Traceback" not in refused.stdout + refused.stderr, describe(refused)
    assert schema_state(url) == half

    # The recovery docs/operations.md gives: undo what the revision did, then drop the marker.
    engine = create_engine(normalise_database_url(url))
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE half_done"))
        if "rating" in half["recipe_columns"]:  # type: ignore[operator]
            connection.execute(text("ALTER TABLE recipe DROP COLUMN rating"))
        connection.execute(text(f"DROP TABLE {MIGRATION_MARKER}"))
    engine.dispose()
    fixed = prestart(url, migrations_copy)
    assert fixed.returncode == 0, describe(fixed)
    done = schema_state(url)
    assert done["revision"] == [BROKEN_REVISION], done
    assert {"half_done", *SCHEMA_TABLES} == done["tables"], done
    assert "rating" in done["recipe_columns"], done  # type: ignore[operator]
    assert (done["users"], done["recipes"]) == (before["users"], before["recipes"]), done


LOCKED_REVISION = "9f_waits_for_recipe"


def locked_revision_source(down_revision: str) -> str:
    """A revision that alters a table in use, giving up on its lock after a second."""
    upgrade = """
        give_up_waiting_for_locks(seconds=1)
        op.add_column("recipe", sa.Column("rating", sa.Integer(), nullable=True))
    """
    downgrade = 'op.drop_column("recipe", "rating")'
    return revision_source(LOCKED_REVISION, down_revision, upgrade, downgrade)


@pytest.mark.parametrize("server", ["postgresql", "mysql"])
def test_a_revision_that_cannot_get_its_table_gives_up_and_the_next_prestart_completes(
    server: str, request: pytest.FixtureRequest, migrations_copy: Path
) -> None:
    """An open transaction that read `recipe` (a client's, a report's) holds the ALTER back; the
    revision gives up after its lock timeout instead of queueing every query behind it, and,
    having changed nothing, needs no recovery on either server: the next prestart completes."""
    admin = "postgres_admin_url" if server == "postgresql" else "mysql_admin_url"
    with throwaway_database(request.getfixturevalue(admin), prefix="recipes_locked") as url:
        first = prestart(url)
        assert first.returncode == 0, describe(first)
        before = schema_state(url)
        head = head_revision()
        assert head is not None
        revision = migrations_copy.parent / "alembic" / "versions" / f"{LOCKED_REVISION}.py"
        revision.write_text(locked_revision_source(head))

        engine = create_engine(normalise_database_url(url))
        try:
            with engine.connect() as reader:
                reader.execute(text("SELECT id FROM recipe WHERE id = 1")).all()  # still open
                gave_up = prestart(url, migrations_copy)
        finally:
            engine.dispose()
        assert gave_up.returncode != 0, describe(gave_up)
        assert re.search(r"lock timeout|Lock wait timeout", gave_up.stderr), describe(gave_up)
        assert schema_state(url) == before

        again = prestart(url, migrations_copy)
        assert again.returncode == 0, describe(again)
        done = schema_state(url)
        assert done["revision"] == [LOCKED_REVISION], done
        assert "rating" in done["recipe_columns"], done  # type: ignore[operator]
