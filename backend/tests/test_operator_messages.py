"""What an operator reads when something is misconfigured: one line naming the setting, what is
wrong with it and where it was read from; and Alembic's log saying what it did."""

import subprocess
from pathlib import Path
from typing import Any

import pytest

from app.db.migrations import head_revision
from bench.databases import sqlite_url
from bench.servers import METRICS_DIRECTORY, VENV_BIN, clean_env, run_command, run_script
from tests.utils.logs import json_lines, lines_of
from tests.utils.migrations import migrate

LOAD_SETTINGS = "from app.core.config import get_settings; get_settings()"


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("script", ["start.sh", "prestart.sh"])
def test_a_bad_setting_ends_a_script_with_one_line_and_no_traceback(
    script: str, tmp_path: Path
) -> None:
    # start.sh's metrics directory in the test's own, not the host's /dev/shm.
    env = clean_env(DB_POOL_SIZE="abc", **{METRICS_DIRECTORY: str(tmp_path / "metrics")})
    result = run_script(script, env, timeout=60)

    assert result.returncode == 2, result.stderr
    assert error_lines(result.stderr) == [
        "configuration error: DB_POOL_SIZE='abc' (read from the environment): "
        "Input should be a valid integer, unable to parse string as an integer"
    ], result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_a_bad_setting_in_the_env_file_names_the_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PRESTART_MAX_WAIT=-5\n")

    result = subprocess.run(
        [str(VENV_BIN / "python"), "-c", LOAD_SETTINGS],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2, result.stderr
    assert error_lines(result.stderr) == [
        f"configuration error: PRESTART_MAX_WAIT='-5' (read from {env_file}): "
        "Input should be greater than or equal to 0"
    ], result.stderr


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"SECRET_KEY": "short"}, "SECRET_KEY must be at least 32 bytes long"),
        (
            {"SECRET_KEY": "change-me-to-a-random-string-of-at-least-32-bytes"},
            "SECRET_KEY is the placeholder from .env.example; set a random one",
        ),
        ({}, "SECRET_KEY is required in production"),
    ],
    ids=["short", "placeholder", "missing"],
)
def test_an_unsafe_secret_in_production_is_one_line_that_never_prints_it(
    settings: dict[str, str], message: str
) -> None:
    env = clean_env(ENVIRONMENT="production", FIRST_SUPERUSER_PASSWORD="real one", **settings)

    result = run_command([str(VENV_BIN / "python"), "-c", LOAD_SETTINGS], env, timeout=60)

    assert result.returncode == 2, result.stderr
    [line] = error_lines(result.stderr)
    assert line.startswith(f"configuration error: {message} (read from "), line
    secret = settings.get("SECRET_KEY")
    assert secret is None or secret not in line.split("(read from")[0].replace(message, "")


@pytest.mark.parametrize(
    ("name", "settings"),
    [
        ("POSTGRES_PASSWORD", {"POSTGRES_SERVER": "db", "POSTGRES_PASSWORD": "change-me"}),
        ("DATABASE_URL", {"DATABASE_URL": "mysql+pymysql://app:change-me@db:3306/app"}),
        (
            "MIGRATION_DATABASE_URL",
            {
                "DATABASE_URL": "postgresql://app:pooler-password@pooler:6432/app",
                "MIGRATION_DATABASE_URL": "postgresql://app:change-me@db:5432/app",
            },
        ),
    ],
)
def test_the_placeholder_database_password_is_refused_in_production(
    name: str, settings: dict[str, str]
) -> None:
    env = clean_env(ENVIRONMENT="production", SECRET_KEY="k" * 32, **settings)

    result = run_command([str(VENV_BIN / "python"), "-c", LOAD_SETTINGS], env, timeout=60)

    assert result.returncode == 2, result.stderr
    [line] = error_lines(result.stderr)
    assert line.startswith(
        f"configuration error: {name} holds the placeholder password from .env.example; "
        "set a real one (read from the environment)"
    ), line
    assert "change-me" not in line, line


def test_an_unused_placeholder_postgres_password_is_not_refused() -> None:
    # docker-compose.mariadb.yml with a .env copied from .env.example: POSTGRES_PASSWORD keeps
    # its placeholder, but the URL in use is DATABASE_URL's.
    env = clean_env(
        ENVIRONMENT="production",
        SECRET_KEY="k" * 32,
        POSTGRES_SERVER="db",
        POSTGRES_PASSWORD="change-me",
        DATABASE_URL="mysql+pymysql://app:real-password@db:3306/app",
    )

    result = run_command([str(VENV_BIN / "python"), "-c", LOAD_SETTINGS], env, timeout=60)

    assert result.returncode == 0, result.stderr


def alembic_lines(output: str) -> list[dict[str, Any]]:
    """What alembic/env.py logged, from the JSON lines on stdout (Alembic's own `current`
    prints its answer as a plain line among them)."""
    return lines_of(
        json_lines("\n".join(line for line in output.splitlines() if line.startswith("{"))),
        logger="alembic.env",
    )


def test_alembic_current_reports_the_revision_without_claiming_a_migration(
    tmp_path: Path,
) -> None:
    url = sqlite_url(tmp_path / "current.db")
    migrate(url)

    result = run_command(["alembic", "current"], clean_env(DATABASE_URL=url), timeout=60)

    assert result.returncode == 0, result.stderr
    [line] = alembic_lines(result.stdout)
    assert line["message"] == f"database {url} at revision {head_revision()}", line
    assert line["revision_before"] == line["revision_after"] == head_revision(), line


def test_alembic_upgrade_reports_the_revisions_before_and_after(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "upgrade.db")

    first = run_command(["alembic", "upgrade", "head"], clean_env(DATABASE_URL=url), 60)
    again = run_command(["alembic", "upgrade", "head"], clean_env(DATABASE_URL=url), 60)

    [migrated] = alembic_lines(first.stdout)
    assert (
        f"migrated database {url} from revision None to {head_revision()}" == (migrated["message"])
    ), migrated
    assert (migrated["revision_before"], migrated["revision_after"]) == (None, head_revision())
    assert (migrated["step"], migrated["outcome"]) == ("migrate", "ok"), migrated
    [unchanged] = alembic_lines(again.stdout)
    assert "migrated" not in unchanged["message"], unchanged
    assert unchanged["revision_before"] == unchanged["revision_after"] == head_revision()


def test_alembic_logs_text_when_asked(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "text.db")

    result = run_command(
        ["alembic", "upgrade", "head"], clean_env(DATABASE_URL=url, LOG_FORMAT="text"), 60
    )

    assert result.returncode == 0, result.stderr
    assert f"INFO [alembic.env] migrated database {url} from revision None to" in result.stdout
    assert not [line for line in result.stdout.splitlines() if line.startswith("{")], result.stdout
