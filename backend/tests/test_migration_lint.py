"""squawk on each revision's own PostgreSQL SQL, as `alembic upgrade A:B --sql` prints it.

A migration that takes a lock the app waits behind (an index built without CONCURRENTLY, DDL
without a lock_timeout) is what turns a rolling release into an outage; squawk flags it before
it ships. The rules off for every revision are in .squawk.toml with their reasons; a waiver for
a single revision is below, with its own.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory

from app.db.migrations import PROJECT_ROOT, alembic_config

BIN = Path(sys.executable).parent
SQUAWK_CONFIG = PROJECT_ROOT / ".squawk.toml"

WAIVERS: dict[str, dict[str, str]] = {
    "0001": {
        "require-lock-timeout": (
            "creates `recipe` with a foreign key to `user`, which the same transaction created:"
            " no other session can hold a lock on either"
        ),
    },
    "0002": {
        "require-lock-timeout": (
            "released before this lint: rewriting it would not reach the databases that applied"
            " it, and a new database runs it on the empty table 0001 just created"
        ),
        "require-concurrent-index-creation": (
            "the same: a new database builds the index on an empty table. A later index is built"
            " CONCURRENTLY (docs/kubernetes.md)"
        ),
    },
}


def revisions() -> list[tuple[str | None, str]]:
    """(previous, revision) pairs, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    pairs = []
    for revision in script.walk_revisions():
        down = revision.down_revision
        assert down is None or isinstance(down, str), "the lint expects a linear history"
        pairs.append((down, revision.revision))
    return list(reversed(pairs))


REVISIONS = revisions()


def revision_sql(previous: str | None, revision: str) -> str:
    """The revision's own DDL on PostgreSQL; no database is contacted."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "POSTGRES_", "MIGRATION_"))
    }
    # A PostgreSQL URL only picks the dialect: offline mode never connects (nothing listens).
    env["DATABASE_URL"] = "postgresql://postgres@127.0.0.1:9/recipes"
    target = f"{previous}:{revision}" if previous else revision
    result = subprocess.run(
        [str(BIN / "alembic"), "upgrade", target, "--sql"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def squawk(sql: str, name: str) -> list[dict[str, Any]]:
    squawk_bin = BIN / "squawk"
    assert squawk_bin.exists(), "squawk not found: install the dev lock (scripts/install.sh)"
    options = ["--config", str(SQUAWK_CONFIG), "--reporter", "json", "--stdin-filepath", name]
    result = subprocess.run(
        [str(squawk_bin), *options],
        input=sql,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip(), (
        f"squawk printed nothing (exit {result.returncode}): {result.stderr}"
    )
    violations: list[dict[str, Any]] = json.loads(result.stdout)
    return violations


def describe(violations: list[dict[str, Any]], sql: str) -> str:
    lines = sql.splitlines()
    return "\n".join(
        f"{v['rule_name']} at line {v['line'] + 1}: {v['message']}\n    {lines[v['line']].strip()}"
        for v in violations
    )


def transaction(*statements: str) -> str:
    """Statements as alembic wraps a revision on PostgreSQL."""
    return "BEGIN;\n\n" + "\n\n".join(statements) + "\n\nCOMMIT;\n"


@pytest.mark.parametrize(("previous", "revision"), REVISIONS, ids=[r for _, r in REVISIONS])
def test_revision_sql_passes_squawk(previous: str | None, revision: str) -> None:
    sql = revision_sql(previous, revision)
    if previous:
        own = f"SET version_num='{revision}' WHERE alembic_version.version_num = '{previous}'"
    else:
        own = f"INSERT INTO alembic_version (version_num) VALUES ('{revision}')"
    assert own in sql, f"not the SQL of {revision} alone:\n{sql}"

    violations = squawk(sql, f"{revision}.sql")

    waived = WAIVERS.get(revision, {})
    unwaived = [v for v in violations if v["rule_name"] not in waived]
    assert unwaived == [], f"revision {revision}:\n{describe(unwaived, sql)}"
    unused = set(waived) - {v["rule_name"] for v in violations}
    assert unused == set(), f"waivers of {revision} that nothing needs any more: {unused}"


def test_every_waiver_names_a_revision() -> None:
    assert set(WAIVERS) <= {revision for _, revision in REVISIONS}


def test_lint_flags_an_index_that_blocks_writes() -> None:
    sql = transaction("CREATE INDEX ix_recipe_source ON recipe (source);")
    rules = {v["rule_name"] for v in squawk(sql, "blocking.sql")}
    assert {"require-concurrent-index-creation", "require-lock-timeout"} <= rules, rules


@pytest.mark.parametrize(
    "sql",
    [
        # Expand: a nullable column, added once no query waits on the table for long.
        transaction(
            "SET LOCAL lock_timeout = '5s';",
            "ALTER TABLE recipe ADD COLUMN IF NOT EXISTS servings INTEGER;",
        ),
        # An index on a table in use: outside the transaction, concurrently, repeatable.
        "SET lock_timeout = '5s';\n\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_recipe_source ON recipe (source);\n",
    ],
    ids=["add-nullable-column", "index-concurrently"],
)
def test_the_patterns_the_guide_recommends_pass(sql: str) -> None:
    violations = squawk(sql, "pattern.sql")
    assert violations == [], describe(violations, sql)
