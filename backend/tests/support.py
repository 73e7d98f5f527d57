"""Helpers shared by the tests: databases, ports, processes."""

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from app.core.config import normalise_database_url
from app.db.migrations import PROJECT_ROOT, alembic_config

SCRIPTS = PROJECT_ROOT / "scripts"
VENV_BIN = PROJECT_ROOT / ".venv" / "bin"


def migrate(url: str, revision: str = "head") -> None:
    config = alembic_config()
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    command.upgrade(config, revision)


def downgrade(url: str, revision: str = "base") -> None:
    config = alembic_config()
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    command.downgrade(config, revision)


def with_database(admin_url: str, name: str) -> str:
    return make_url(normalise_database_url(admin_url)).set(database=name).render_as_string(False)


@contextmanager
def postgres_database(admin_url: str, prefix: str = "recipes_test") -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards (with any connections to it)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_database_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield with_database(admin_url, name)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def sqlite_url(path: Path) -> str:
    return URL.create("sqlite", database=str(path)).render_as_string()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def script_env(**overrides: str) -> dict[str, str]:
    """The environment a script sees in a container: the venv on PATH, no stray settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "POSTGRES_", "PRESTART_", "TEST_", "PYTEST_"))
    }
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(overrides)
    return env


def run_script(
    name: str, env: Mapping[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPTS / name)],
        env=dict(env),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for_http(url: str, timeout: float = 30, status: int = 200) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == status:
                return response
            last = response.status_code
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer {status} within {timeout}s (last: {last!r})")


def find_pg_bin() -> Path | None:
    """The newest PostgreSQL server binaries on this machine, for throwaway clusters."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    if candidates:
        return candidates[0].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None
