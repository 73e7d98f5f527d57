"""Databases for the tests: SQLite files; PostgreSQL from TEST_DATABASE_URL and MariaDB from
TEST_MYSQL_URL, or else from testcontainers.

Each test that asks for `database_url` runs once per database, on a schema built by the
migrations, and starts from empty tables.
"""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from app.core.config import Settings, normalise_database_url
from app.db.base import Base
from app.main import create_app
from bench.databases import sqlite_url, throwaway_database
from tests.utils.migrations import migrate
from tests.utils.settings import settings_for
from tests.utils.user import Account, account

# Every table the migrations make, emptied between tests on PostgreSQL and MariaDB.
TABLES = sorted(Base.metadata.tables)


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A URL of a role that may create databases; the tests make and drop their own."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    if _docker_answers():
        from testcontainers.community.postgres import PostgresContainer

        # The image docker-compose.yml runs. Leaving the block removes the container (also when
        # it fails to start), so no reaper container is needed.
        with PostgresContainer("postgres:17", driver="psycopg2") as container:
            yield container.get_connection_url()
        return
    reason = "PostgreSQL unavailable: set TEST_DATABASE_URL or start a Docker engine"
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason} (REQUIRE_POSTGRES=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mysql_admin_url() -> Iterator[str]:
    """A URL of a MariaDB/MySQL user that may create databases; the tests make their own."""
    url = os.environ.get("TEST_MYSQL_URL")
    if url:
        yield normalise_database_url(url)
        return
    if _docker_answers():
        from testcontainers.community.mysql import MySqlContainer

        # The image docker-compose.mariadb.yml runs; removed on the way out, as above.
        with MySqlContainer(
            "mariadb:11", dialect="pymysql", username="root", password="tests-only"
        ) as container:
            yield container.get_connection_url()
        return
    reason = "MariaDB unavailable: set TEST_MYSQL_URL or start a Docker engine"
    if os.environ.get("REQUIRE_MYSQL") == "1":
        pytest.fail(f"{reason} (REQUIRE_MYSQL=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def migrated_mysql_url(mysql_admin_url: str) -> Iterator[str]:
    """One MariaDB database per test session, at the head revision."""
    with throwaway_database(mysql_admin_url) as url:
        migrate(url)
        yield url


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """One PostgreSQL database per test session, at the head revision."""
    with throwaway_database(postgres_admin_url) as url:
        migrate(url)
        yield url


@pytest.fixture
def fresh_postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A PostgreSQL database of this test's own, at the head revision (for servers it restarts
    or loads, which must not share the session's database)."""
    with throwaway_database(postgres_admin_url, prefix="recipes_fresh") as url:
        migrate(url)
        yield url


@pytest.fixture(params=["postgresql", "mysql"])
def fresh_server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of this test's own at the head revision, on PostgreSQL and on MariaDB: for
    servers a test restarts or loads."""
    admin = "postgres_admin_url" if request.param == "postgresql" else "mysql_admin_url"
    with throwaway_database(request.getfixturevalue(admin), prefix="recipes_fresh") as url:
        migrate(url)
        yield url


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    migrate(sqlite_url(path))
    return path


def _empty_tables(url: str) -> None:
    """Every table emptied and its ids restarted, as in a new database."""
    engine = create_engine(url)
    names = [engine.dialect.identifier_preparer.quote(name) for name in TABLES]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            connection.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
            for name in names:
                connection.execute(text(f"TRUNCATE TABLE {name}"))
            connection.execute(text("SET FOREIGN_KEY_CHECKS = 1"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copy(request.getfixturevalue("migrated_sqlite_template"), path)
        yield sqlite_url(path)
        return
    server = {"postgresql": "postgres", "mysql": "mysql"}[request.param]
    url: str = request.getfixturevalue(f"migrated_{server}_url")
    _empty_tables(url)
    yield url
    _empty_tables(url)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for(database_url)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def cook(app: FastAPI, database_url: str) -> Account:
    """A regular user, with a token for it (no password: it never logs in)."""
    return account(app, database_url, email="cook@example.com")


@pytest.fixture
def superuser(app: FastAPI, database_url: str) -> Account:
    return account(app, database_url, email="boss@example.com", superuser=True)


@pytest.fixture
def client(app: FastAPI, cook: Account) -> Iterator[TestClient]:
    """The app, started, with the cook's token on every request (`cook` is that user);
    `anonymous` sends none."""
    with TestClient(app, headers=cook.headers) as test_client:
        yield test_client


@pytest.fixture
def anonymous(app: FastAPI, client: TestClient) -> TestClient:
    """The app `client` started, without a token."""
    return TestClient(app)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help="the loop while editing: no slow tests, and SQLite only",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--fast"):
        return
    kept, left_out = [], []
    # A server's tests: a parameter naming it, or its admin URL among the fixtures.
    servers = ("[postgresql", "[mysql", "-postgresql", "-mysql")
    server_fixtures = {"postgres_admin_url", "mysql_admin_url"}
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if (
            item.get_closest_marker("slow")
            or any(server in item.name for server in servers)
            or fixtures & server_fixtures
        ):
            left_out.append(item)
        else:
            kept.append(item)
    config.hook.pytest_deselected(items=left_out)
    items[:] = kept
