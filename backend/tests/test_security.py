"""Security: escaping, SQL-looking input, secrets, CORS, docs switch and error bodies.

In process on SQLite and PostgreSQL, and under gunicorn against a password-protected throwaway
PostgreSQL server for what the logs and responses of the real stack may contain.
"""

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import httpx2
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy import table as sa_table

from app.core.config import Settings, normalise_database_url
from app.core.security import TokenSigner
from app.main import create_app
from bench.servers import clean_env, run_script, serving_stack
from tests.utils.cluster import PASSWORD, ThrowawayServer, running_server
from tests.utils.migrations import migrate
from tests.utils.recipe import recipe_payload
from tests.utils.settings import settings_for
from tests.utils.user import served_account, user_payload

SCRIPT = "<script>alert(1)</script>"
SQL_INJECTION = "'; DROP TABLE recipe; --"
WRONG_PASSWORD = "not-the-Secret-4711"
SERVER_KEY = "a signing key the test server shares with the test"
TRACEBACK_MARKERS = ("Traceback", 'File "', ".py", "line ", "RuntimeError")


# --- HTML escaping -------------------------------------------------------------------------


def test_markup_in_recipe_fields_is_escaped_on_the_home_page(client: TestClient) -> None:
    created = client.post(
        "/recipe/",
        json=recipe_payload(
            label=SCRIPT, source='<img src=x onerror="alert(2)">', url='http://x.example/"><b>'
        ),
    )
    assert created.status_code == 201, created.text
    page = client.get("/")
    assert page.status_code == 200, page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text, page.text
    assert "<script>" not in page.text, page.text
    assert "<img" not in page.text, page.text
    assert '"><b>' not in page.text, page.text
    assert "<b>" not in page.text, page.text


# --- SQL-looking input ---------------------------------------------------------------------


def table_counts(database_url: str) -> dict[str, int]:
    engine = create_engine(normalise_database_url(database_url))
    try:
        with engine.connect() as connection:
            tables = sorted(inspect(connection).get_table_names())
            return {
                table: int(
                    connection.execute(
                        select(func.count()).select_from(sa_table(table))
                    ).scalar_one()
                )
                for table in tables
            }
    finally:
        engine.dispose()


def test_sql_looking_input_is_stored_and_searched_literally_and_changes_nothing(
    client: TestClient, database_url: str
) -> None:
    plain = client.post("/recipe/", json=recipe_payload(label="Plain soup")).json()
    hostile = client.post(
        "/recipe/", json=recipe_payload(label=SQL_INJECTION, source="x' OR '1'='1", url=None)
    ).json()
    user = client.post(
        "/user/",
        json=user_payload(email="bobby@example.com", first_name="Robert'); DROP TABLE user;--"),
    )
    assert user.status_code == 201, user.text
    before = table_counts(database_url)

    fetched = client.get(f"/recipe/{hostile['id']}").json()
    assert (fetched["label"], fetched["source"]) == (SQL_INJECTION, "x' OR '1'='1"), fetched

    found = client.get("/search/", params={"keyword": SQL_INJECTION}).json()["results"]
    assert [r["id"] for r in found] == [hostile["id"]], found
    for keyword in ["' OR '1'='1", "' OR 1=1 --", "%' OR '%'='", "soup'; DELETE FROM recipe; --"]:
        found = client.get("/search/", params={"keyword": keyword}).json()["results"]
        assert found == [], f"{keyword!r} matched {found}"
    assert client.get("/recipe/1 OR 1=1").status_code == 422
    assert client.get("/recipe/1;DROP TABLE recipe").status_code == 422
    assert client.get(f"/recipe/{plain['id']}").status_code == 200

    after = table_counts(database_url)
    assert after == before, f"tables or row counts changed: {before} -> {after}"
    assert {"recipe", "user", "alembic_version"} <= after.keys(), after


# --- CORS ----------------------------------------------------------------------------------


def app_with(database_url: str, **settings: Any) -> FastAPI:
    return create_app(settings_for(database_url, **settings))


def test_no_cross_origin_access_by_default(client: TestClient) -> None:
    response = client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers, response.headers
    preflight = client.options(
        "/recipe/",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers, preflight.headers


def test_cors_allows_exactly_the_configured_origins(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://cook.example, https://admin.cook.example")
    settings = settings_for(database_url)
    assert settings.CORS_ORIGINS == ["https://cook.example", "https://admin.cook.example"]
    with TestClient(create_app(settings)) as client:
        allowed = client.get("/health", headers={"Origin": "https://cook.example"})
        assert allowed.headers.get("access-control-allow-origin") == "https://cook.example"
        preflight = client.options(
            "/recipe/",
            headers={
                "Origin": "https://admin.cook.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Content-Type",
            },
        )
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == "https://admin.cook.example"

        other = client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers, other.headers
        preflight = client.options(
            "/recipe/",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 400, preflight.text
        assert "access-control-allow-origin" not in preflight.headers, preflight.headers


# --- docs switch ---------------------------------------------------------------------------


def test_docs_are_served_by_default_and_gone_when_disabled(database_url: str) -> None:
    with TestClient(app_with(database_url)) as client:
        for path in ["/docs", "/redoc", "/openapi.json"]:
            assert client.get(path).status_code == 200, path
    with TestClient(app_with(database_url, DOCS_ENABLED=False)) as client:
        for path in ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"]:
            response = client.get(path)
            assert response.status_code == 404, f"{path}: {response.status_code}"
        page = client.get("/")
        assert page.status_code == 200, page.text
        assert "/docs" not in page.text, page.text


def test_docs_enabled_false_in_the_environment_turns_docs_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCS_ENABLED", "false")
    assert Settings(_env_file=None).DOCS_ENABLED is False


# --- internal errors -----------------------------------------------------------------------


def assert_no_traceback(response: httpx.Response | httpx2.Response) -> None:
    for marker in TRACEBACK_MARKERS:
        assert marker not in response.text, f"{marker!r} in the error body: {response.text}"


def test_unexpected_exception_in_a_route_gives_a_bare_500(database_url: str) -> None:
    app = app_with(database_url)

    @app.get("/test-only/explode")
    def explode() -> None:
        raise RuntimeError("secret internals in /srv/app/handler.py")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/test-only/explode")
    assert response.status_code == 500, response.text
    assert response.text == "Internal Server Error", response.text
    assert "secret internals" not in response.text
    assert_no_traceback(response)


def test_unexpected_exception_in_a_dependency_gives_a_bare_500(database_url: str) -> None:
    app = app_with(database_url)

    def broken_dependency() -> None:
        raise RuntimeError("secret internals in /srv/app/deps.py")

    def failing_cleanup() -> Iterator[None]:
        yield
        raise RuntimeError("secret internals in /srv/app/cleanup.py")

    @app.get("/test-only/broken-dependency")
    def needs_broken(_: Annotated[None, Depends(broken_dependency)]) -> dict[str, str]:
        return {"status": "unreachable"}

    @app.get("/test-only/failing-cleanup")
    def needs_cleanup(
        _: Annotated[None, Depends(failing_cleanup, scope="function")],
    ) -> dict[str, str]:
        return {"status": "cleanup fails after this"}

    with TestClient(app, raise_server_exceptions=False) as client:
        for path in ["/test-only/broken-dependency", "/test-only/failing-cleanup"]:
            response = client.get(path)
            assert response.status_code == 500, f"{path}: {response.text}"
            assert "secret internals" not in response.text, response.text
            assert_no_traceback(response)


# --- the real stack: secrets in logs and responses, and a real internal error ---------------


@pytest.fixture(scope="module", params=["postgresql", "mysql"])
def cluster(request: pytest.FixtureRequest) -> Iterator[ThrowawayServer]:
    with running_server(request.param) as started:
        migrate(started.url())
        yield started


def password_forms(password: str) -> list[str]:
    return [password, quote(password, safe=""), quote(password)]


def assert_secret_absent(where: str, content: str, password: str) -> None:
    for form in password_forms(password):
        assert form not in content, f"the database password appears in {where}:\n{content}"


@pytest.mark.slow
def test_database_password_never_appears_in_responses_or_the_server_log(
    cluster: ThrowawayServer,
) -> None:
    """Correct password: every kind of answer, then an outage, then a real internal error."""
    with serving_stack(cluster.url(), {"DB_CONNECT_TIMEOUT": "2"}) as server:
        base = server.base_url
        writer = served_account(base, cluster.url())
        with httpx.Client(base_url=base, timeout=30, headers=writer.headers) as client:
            responses = [
                client.get("/health"),
                client.get("/health/ready"),
                client.get("/openapi.json"),
                client.get("/docs"),
                client.get("/"),
                client.get("/recipe/424242"),
                client.get("/recipe/abc"),
                client.post("/recipe/", json={"label": ""}),
                client.post("/recipe/", json=recipe_payload(label="Secret stew")),
                client.get("/search/", params={"keyword": "stew"}),
            ]
            assert responses[1].status_code == 200, responses[1].text
            assert responses[8].status_code == 201, responses[8].text

            internal = forced_internal_error(cluster, client)
            responses.append(internal)

            cluster.stop("fast")
            try:
                outage = [client.get("/recipe/1"), client.get("/health/ready")]
            finally:
                cluster.start()
            assert [r.status_code for r in outage] == [503, 503], [r.text for r in outage]
            responses += outage
        log = server.log()

    for response in responses:
        where = f"{response.request.method} {response.request.url.path} ({response.status_code})"
        assert_secret_absent(where, response.text, PASSWORD)
        assert_secret_absent(f"headers of {where}", str(response.headers), PASSWORD)
    assert_secret_absent("the gunicorn log", log, PASSWORD)
    assert re.search(r"(postgres|root):\*\*\*@", log), "expected the masked URL in the log"
    # The internal error is logged for the operator, with its traceback, but not sent.
    assert "Traceback" in log, log[-3000:]
    # PostgreSQL: column "label" does not exist; MariaDB: Unknown column 'recipe.label'.
    assert "does not exist" in log or "Unknown column" in log, log[-3000:]


def forced_internal_error(cluster: ThrowawayServer, client: httpx.Client) -> httpx.Response:
    """A real 500: the schema changed under the running app (a column renamed)."""
    created = client.post("/recipe/", json=recipe_payload(label="Renamed column soup"))
    assert created.status_code == 201, created.text
    engine = create_engine(normalise_database_url(cluster.url()), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("ALTER TABLE recipe RENAME COLUMN label TO label_gone"))
            try:
                response = client.get(f"/recipe/{created.json()['id']}")
            finally:
                connection.execute(text("ALTER TABLE recipe RENAME COLUMN label_gone TO label"))
    finally:
        engine.dispose()
    assert response.status_code == 500, response.text
    assert response.json() == {"detail": "Internal server error"}, response.text
    assert_no_traceback(response)
    assert "label_gone" not in response.text, response.text
    return response


@pytest.mark.slow
def test_wrong_database_password_never_appears_in_responses_or_logs(
    cluster: ThrowawayServer,
) -> None:
    url = cluster.url(password=WRONG_PASSWORD)
    settings = {"DB_CONNECT_TIMEOUT": "2", "SECRET_KEY": SERVER_KEY}
    # No login without the database: a token signed with the server's key instead.
    token = TokenSigner(SERVER_KEY, timedelta(minutes=5)).issue(1)
    with serving_stack(url, settings, ready_path="/health") as server:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.base_url, timeout=30, headers=headers) as client:
            responses = [
                client.get("/health/ready"),
                client.get("/recipe/1"),
                client.post("/recipe/", json=recipe_payload(label="Stew")),
                client.get("/openapi.json"),
            ]
        log = server.log()
    assert [r.status_code for r in responses] == [503, 503, 503, 200], [r.text for r in responses]
    assert responses[0].json()["status"] == "unavailable", responses[0].text
    for response in responses:
        assert_secret_absent(f"{response.request.url.path}", response.text, WRONG_PASSWORD)
    assert_secret_absent("the gunicorn log", log, WRONG_PASSWORD)
    assert re.search(r"(postgres|root):\*\*\*@127\.0\.0\.1", log), log[-2000:]

    prestart = run_script(
        "prestart.sh", clean_env(DATABASE_URL=url, PRESTART_MAX_WAIT="5"), timeout=60
    )
    output = prestart.stdout + prestart.stderr
    assert prestart.returncode != 0, output
    assert_secret_absent("the prestart output", output, WRONG_PASSWORD)
    refused = ("password authentication failed", "Access denied")  # PostgreSQL, MariaDB
    assert any(message in prestart.stdout for message in refused), output
