"""GET /health (liveness, never touches the database) and GET /health/ready (migrated and up)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text

from app.core.config import Settings
from app.db.migrations import head_revision
from app.main import create_app
from bench.databases import sqlite_url, throwaway_database
from bench.servers import free_port
from tests.utils.migrations import downgrade, migrate

HEAD = head_revision()


def client_for(database_url: str) -> TestClient:
    return TestClient(create_app(Settings(DATABASE_URL=database_url, _env_file=None)))


@pytest.fixture
def unreachable_url() -> str:
    """PostgreSQL on a loopback port nothing listens on: connections are refused at once."""
    return f"postgresql://postgres:s3cret@127.0.0.1:{free_port()}/recipes"


@pytest.fixture(params=["postgresql", "mysql"])
def server_database_at_base(request: pytest.FixtureRequest) -> Iterator[str]:
    """A PostgreSQL or MariaDB database migrated to head, then downgraded to base."""
    admin = "postgres_admin_url" if request.param == "postgresql" else "mysql_admin_url"
    with throwaway_database(request.getfixturevalue(admin)) as url:
        migrate(url)
        downgrade(url, "base")
        yield url


def test_liveness_is_ok(client: TestClient) -> None:
    response = client.get("/health")

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok"}


def test_liveness_is_ok_even_when_database_is_unreachable(unreachable_url: str) -> None:
    with client_for(unreachable_url) as client:
        response = client.get("/health")

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok"}


def test_readiness_reports_head_revision_on_migrated_database(client: TestClient) -> None:
    response = client.get("/health/ready")

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "revision": HEAD, "head": HEAD, "detail": None}


def test_readiness_is_503_on_empty_sqlite_file_and_app_creates_no_tables(tmp_path: Path) -> None:
    """The app never runs create_all: an unmigrated database stays empty and is not ready."""
    path = tmp_path / "empty.db"

    with client_for(sqlite_url(path)) as client:
        response = client.get("/health/ready")

    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "unavailable", body
    assert body["revision"] is None, body
    assert body["head"] == HEAD, body
    assert "run the migrations" in body["detail"], body
    engine = create_engine(sqlite_url(path))
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_readiness_is_503_on_a_server_database_downgraded_to_base(
    server_database_at_base: str,
) -> None:
    with client_for(server_database_at_base) as client:
        response = client.get("/health/ready")

    assert response.status_code == 503, response.text
    body = response.json()
    assert (body["status"], body["revision"], body["head"]) == ("unavailable", None, HEAD), body
    assert "run the migrations" in body["detail"], body


def test_readiness_is_503_when_database_is_unreachable(unreachable_url: str) -> None:
    with client_for(unreachable_url) as client:
        response = client.get("/health/ready")

    assert response.status_code == 503, response.text
    body = response.json()
    assert (body["status"], body["detail"]) == ("unavailable", "database unreachable"), body
    assert "s3cret" not in response.text


def test_readiness_becomes_ok_once_the_database_is_migrated(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "later.db")

    with client_for(url) as client:
        before = client.get("/health/ready")
        migrate(url)
        after = client.get("/health/ready")

    assert before.status_code == 503, before.text
    assert after.status_code == 200, after.text
    assert after.json()["revision"] == HEAD, after.text


def test_readiness_stays_ok_on_a_schema_a_newer_release_migrated(tmp_path: Path) -> None:
    """During a rolling update the new release's migration runs while the old pods serve: they
    stay ready on the newer schema, and only a schema behind theirs takes them out."""
    url = sqlite_url(tmp_path / "newer.db")
    migrate(url)
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9f_newer'"))
    finally:
        engine.dispose()

    with client_for(url) as client:
        response = client.get("/health/ready")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ok",
        "revision": "9f_newer",
        "head": HEAD,
        "detail": f"database at revision 9f_newer, newer than this release's {HEAD}",
    }
