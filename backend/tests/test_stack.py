"""The compose stack, run on this host the way the containers run it (no Docker engine here).

An empty database, PostgreSQL or MariaDB; `scripts/prestart.sh` and `scripts/start.sh` configured
as the compose files configure them: the POSTGRES_* variables of docker-compose.yml (no
DATABASE_URL), or the DATABASE_URL docker-compose.mariadb.yml hands over; gunicorn with two
uvicorn workers on a loopback port; a home directory that does not exist, as for the image's
user; SIGTERM as `docker stop` sends it.
"""

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from app.core.config import normalise_database_url
from app.db.capacity import connection_limit
from bench.databases import throwaway_database
from bench.servers import (
    VENV_BIN,
    Server,
    clean_env,
    free_port,
    run_script,
    serving_stack,
    wait_until,
)
from tests.test_container_files import (
    COMPOSE,
    compose,
    compose_healthcheck_code,
    dockerfile_healthcheck,
)
from tests.utils.cluster import app_connections, recipe_table_locked
from tests.utils.recipe import recipe_payload

pytestmark = pytest.mark.slow

IN_FLIGHT = 16
ADMIN_PASSWORD = "the first superuser's password"
WRITES_IN_FLIGHT = range(0, IN_FLIGHT, 4)


def compose_settings(url: str) -> dict[str, str]:
    """A database as the compose files hand it to prestart and app: POSTGRES_* and no URL for
    PostgreSQL (docker-compose.yml), DATABASE_URL for MariaDB (docker-compose.mariadb.yml)."""
    parsed = make_url(normalise_database_url(url))
    if parsed.get_backend_name() != "postgresql":
        return {"DATABASE_URL": url}
    return {
        "POSTGRES_SERVER": parsed.host or "127.0.0.1",
        "POSTGRES_PORT": str(parsed.port or 5432),
        "POSTGRES_USER": parsed.username or "postgres",
        "POSTGRES_PASSWORD": parsed.password or "",
        "POSTGRES_DB": parsed.database or "",
    }


def url_of(settings: dict[str, str]) -> URL:
    if "DATABASE_URL" in settings:
        return make_url(normalise_database_url(settings["DATABASE_URL"]))
    return URL.create(
        "postgresql+psycopg2",
        username=settings["POSTGRES_USER"],
        password=settings["POSTGRES_PASSWORD"] or None,
        host=settings["POSTGRES_SERVER"],
        port=int(settings["POSTGRES_PORT"]),
        database=settings["POSTGRES_DB"],
    )


def query(settings: dict[str, str], sql: str) -> list[object]:
    engine = create_engine(url_of(settings))
    try:
        with engine.connect() as connection:
            return list(connection.scalars(text(sql)))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def process_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What every process here gets beside the database settings.

    HOME names a directory that does not exist, as for the image's user. The environment sets
    PYTHONDONTWRITEBYTECODE and the venv holds few .pyc files, so each process would recompile
    its imports (seconds per worker on a busy machine); a bytecode cache in a temporary
    directory avoids that and changes nothing else.
    """
    root = tmp_path_factory.mktemp("stack")
    return {
        "HOME": str(root / "no-home"),
        "XDG_RUNTIME_DIR": "",
        "PYTHONDONTWRITEBYTECODE": "",
        "PYTHONPYCACHEPREFIX": str(root / "pycache"),
    }


@pytest.fixture(scope="module", params=["postgresql", "mysql"])
def prestarted(
    request: pytest.FixtureRequest, process_env: dict[str, str]
) -> Iterator[dict[str, str]]:
    """An empty database made ready by scripts/prestart.sh; yields its compose-style settings."""
    admin = "postgres_admin_url" if request.param == "postgresql" else "mysql_admin_url"
    admin_url: str = request.getfixturevalue(admin)
    with throwaway_database(admin_url, prefix="recipes_stack") as url:
        settings = {**compose_settings(url), "FIRST_SUPERUSER_PASSWORD": ADMIN_PASSWORD}
        result = run_script("prestart.sh", clean_env(**process_env, **settings))
        assert result.returncode == 0, f"prestart failed:\n{result.stdout}\n{result.stderr}"
        yield settings


def test_prestart_with_compose_settings_migrates_and_seeds(prestarted: dict[str, str]) -> None:
    labels = query(prestarted, "SELECT label FROM recipe ORDER BY id")
    assert labels[:1] == ["Chicken Vesuvio"], labels
    assert query(prestarted, "SELECT count(*) FROM alembic_version") == [1]


def run_healthcheck(code: str, server: Server) -> None:
    """A container health check's `python -c` code, run against this server's port."""
    port = server.base_url.rsplit(":", 1)[1]
    result = subprocess.run(
        [str(VENV_BIN / "python"), "-c", code.replace(":8001/", f":{port}/")],
        env=clean_env(PORT=port),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, f"health check failed:\n{code}\n{result.stderr}"


def admin_headers(base_url: str) -> dict[str, str]:
    """Logged in as the superuser the seed made, as an operator would."""
    response = httpx.post(
        f"{base_url}/login/access-token",
        data={"username": "admin@recipeapi.com", "password": ADMIN_PASSWORD},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def request_in_flight(
    base_url: str, index: int, statuses: dict[int, int | str], headers: dict[str, str]
) -> None:
    """A read, or a write for the indexes in WRITES_IN_FLIGHT; records the status or error."""
    try:
        with httpx.Client(base_url=base_url, timeout=30, headers=headers) as client:
            if index in WRITES_IN_FLIGHT:
                payload = recipe_payload(label=f"In flight {index}")
                response = client.post("/recipe/", json=payload)
            else:
                response = client.get("/recipe/1")
        statuses[index] = response.status_code
    except httpx.HTTPError as exc:
        statuses[index] = f"{type(exc).__name__}: {exc}"


def test_stack_serves_then_finishes_requests_in_flight_on_sigterm(
    prestarted: dict[str, str], process_env: dict[str, str]
) -> None:
    # Room in either worker's pool for every held request, whichever worker accepts them.
    pool = {"DB_POOL_SIZE": str(IN_FLIGHT), "DB_MAX_OVERFLOW": "0"}
    with serving_stack(None, {**process_env, **prestarted, **pool}) as server:
        assert len(server.worker_pids()) == 2, server.log()
        admin = admin_headers(server.base_url)
        with httpx.Client(base_url=server.base_url, timeout=10, headers=admin) as client:
            home = client.get("/")
            assert home.status_code == 200, home.text
            assert "Chicken Vesuvio" in home.text
            recipe = client.get("/recipe/1")
            assert recipe.status_code == 200, recipe.text
            assert recipe.json()["label"] == "Chicken Vesuvio"
            created = client.post("/recipe/", json=recipe_payload(label="Stack stew"))
            assert created.status_code == 201, created.text
            assert client.get(f"/recipe/{created.json()['id']}").json()["label"] == "Stack stew"

        # The image's and the compose file's health checks, as the engine would run them.
        run_healthcheck(dockerfile_healthcheck(), server)
        run_healthcheck(compose_healthcheck_code(compose(COMPOSE)["services"]["app"]), server)

        statuses: dict[int, int | str] = {}
        threads = [
            threading.Thread(target=request_in_flight, args=(server.base_url, i, statuses, admin))
            for i in range(IN_FLIGHT)
        ]
        # Every request that reads or writes `recipe` waits behind the lock: surely in flight.
        engine = create_engine(url_of(prestarted), isolation_level="AUTOCOMMIT")
        try:
            with (
                engine.connect() as locker,
                engine.connect() as observer,
                recipe_table_locked(locker),
            ):
                for thread in threads:
                    thread.start()

                def waiting() -> int:
                    return len(app_connections(observer, waiting_for_lock=True))

                in_flight = wait_until(lambda: waiting() == IN_FLIGHT, timeout=20)
                assert in_flight, f"{waiting()} of {IN_FLIGHT} requests reached the database"
                server.process.send_signal(signal.SIGTERM)  # what `docker stop` sends
                time.sleep(1)
                assert server.process.poll() is None, "gunicorn exited with requests in flight"
        finally:
            engine.dispose()
        for thread in threads:
            thread.join(timeout=30)
        exit_code = server.process.wait(timeout=30)
        log = server.log()

    expected = {i: 201 if i in WRITES_IN_FLIGHT else 200 for i in range(IN_FLIGHT)}
    assert statuses == expected, log
    assert exit_code == 0, log
    assert f"Workers listen at: {server.base_url}" in log, log
    # Gunicorn 25.1+ would open a control socket under $HOME unless told not to.
    assert "control socket" not in log.lower(), log
    assert not Path(process_env["HOME"]).exists(), "gunicorn wrote into the missing home"


def test_start_warns_when_worker_pools_exceed_max_connections(
    prestarted: dict[str, str], process_env: dict[str, str]
) -> None:
    engine = create_engine(url_of(prestarted))
    try:
        with engine.connect() as connection:
            max_connections, _ = connection_limit(connection)
    finally:
        engine.dispose()
    # 2 x (max_connections + 1) connections wanted; pools open lazily, so none are opened here.
    pool = {"DB_POOL_SIZE": str(max_connections), "DB_MAX_OVERFLOW": "1"}
    with serving_stack(None, {**process_env, **prestarted, **pool}) as server:
        wanted = 2 * (max_connections + 1)
        warned = wait_until(lambda: f"= {wanted} connections" in server.log(), timeout=10)
        log = server.log()
    assert warned, log
    assert f"max_connections is {max_connections}" in log, log


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_workers_start_while_the_database_is_down(scheme: str, process_env: dict[str, str]) -> None:
    # Nothing listens on the port.
    down = compose_settings(f"{scheme}://app@127.0.0.1:{free_port()}/absent")
    skipped = "connection limit not checked: database unreachable"
    with serving_stack(None, {**process_env, **down}, ready_path="/health") as server:
        both_started = wait_until(lambda: server.log().count(skipped) == 2, timeout=20)
        assert both_started, server.log()
        ready = httpx.get(server.base_url + "/health/ready", timeout=10)
        assert ready.status_code == 503, ready.text
        assert server.process.poll() is None, server.log()
        assert len(server.worker_pids()) == 2, server.log()
