"""No acknowledged write is lost: every recipe a client got a 201 for is in the database afterwards.

Under concurrent POST load against gunicorn on PostgreSQL and on MariaDB, with a worker
SIGKILLed or the database restarted mid-run. Failed requests are fine; acknowledged ones must
persist. That holds because a write commits before its response is sent, which the in-process
test pins by losing the connection right after the statement ran.
"""

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from bench.databases import lost_writes
from bench.servers import SCRIPTS, clean_env, serving_stack, wait_until
from bench.traffic import Traffic, running_traffic
from tests.utils.cluster import ThrowawayServer, running_server
from tests.utils.migrations import migrate
from tests.utils.recipe import recipe_payload
from tests.utils.user import served_account

LOAD_THREADS = 8
ACKS_BEFORE_FAULT = 40
ACKS_AFTER_FAULT = 40


@pytest.fixture(params=["postgresql", "mysql"])
def cluster(request: pytest.FixtureRequest) -> Iterator[ThrowawayServer]:
    with running_server(request.param) as started:
        yield started


def assert_nothing_acknowledged_was_lost(database_url: str, load: Traffic) -> None:
    assert not load.mismatches, f"201 bodies differ from what was sent: {load.mismatches[:5]}"
    lost = lost_writes(database_url, load.acknowledged)
    assert not lost, (
        f"{len(lost)} of {len(load.acknowledged)} acknowledged writes lost "
        f"({load.summary()}): {lost[:10]}"
    )


@pytest.mark.slow
def test_acknowledged_writes_survive_a_worker_killed_with_sigkill_mid_load(
    fresh_server_url: str,
) -> None:
    with serving_stack(fresh_server_url, workers=2) as server:
        workers = server.worker_pids()
        assert len(workers) == 2, f"expected 2 workers, found {workers}"
        victim = workers[0]
        writer = served_account(server.base_url, fresh_server_url)
        with running_traffic(
            server.base_url, threads=LOAD_THREADS, max_seconds=60, headers=writer.headers
        ) as load:
            assert load.wait_for_acknowledged(ACKS_BEFORE_FAULT, timeout=20), load.summary()
            os.kill(victim, signal.SIGKILL)
            replaced = wait_until(
                lambda: victim not in server.worker_pids() and len(server.worker_pids()) == 2,
                timeout=20,
            )
            acknowledged_at_kill = load.acknowledged_count()
            resumed = load.wait_for_acknowledged(
                acknowledged_at_kill + ACKS_AFTER_FAULT, timeout=20
            )
        assert replaced, f"the master did not replace worker {victim}: {server.worker_pids()}"
        assert resumed, f"writes did not resume after the kill: {load.summary()}"
        assert server.process.poll() is None, "the master died with its worker"
    assert_nothing_acknowledged_was_lost(fresh_server_url, load)


@pytest.mark.slow
def test_acknowledged_writes_survive_a_database_restart_mid_load(
    cluster: ThrowawayServer,
) -> None:
    url = cluster.url()
    migrate(url)
    with serving_stack(url, {"DB_CONNECT_TIMEOUT": "2"}) as server:
        writer = served_account(server.base_url, url)
        with running_traffic(
            server.base_url, threads=LOAD_THREADS, max_seconds=60, headers=writer.headers
        ) as load:
            assert load.wait_for_acknowledged(ACKS_BEFORE_FAULT, timeout=20), load.summary()
            cluster.stop("fast")  # aborts the transactions in flight
            time.sleep(0.5)
            cluster.start()
            acknowledged_at_restart = load.acknowledged_count()
            resumed = load.wait_for_acknowledged(
                acknowledged_at_restart + ACKS_AFTER_FAULT, timeout=20
            )
        assert resumed, f"writes did not resume after the restart: {load.summary()}"
    failed = sum(count for outcome, count in load.outcomes.items() if outcome != "201")
    assert failed > 0, f"the restart went unnoticed, so it tested nothing: {load.summary()}"
    server_errors = [o for o in load.outcomes if o.startswith("5") and o != "503"]
    assert not server_errors, f"a restart must answer 503, not {load.summary()}"
    assert_nothing_acknowledged_was_lost(url, load)


def test_a_write_the_app_cannot_confirm_is_answered_503_and_never_201(
    app: FastAPI, client: TestClient, database_url: str
) -> None:
    """The write's statement commits as it runs, before the response: when the connection is
    lost right after the database ran it, the app cannot know it was committed, and says 503.

    Were the commit done after the response (a `yield` dependency with `scope="request"`, or a
    background task), a failure there would follow a 201 already sent.
    """

    def lose_the_connection(*_args: object) -> None:
        raise OperationalError("INSERT", {}, Exception("server closed the connection"))

    app_engine = app.state.database.engine
    event.listen(app_engine, "after_cursor_execute", lose_the_connection)
    payload = recipe_payload(label="never acknowledged")
    try:
        response = client.post("/recipe/", json=payload)
    finally:
        event.remove(app_engine, "after_cursor_execute", lose_the_connection)
    assert response.status_code == 503, (
        f"an unconfirmed write answered {response.status_code}: {response.text}"
    )
    assert response.json() == {"detail": "Database unavailable, try again shortly"}

    response = client.post("/recipe/", json=payload)
    assert response.status_code == 201, response.text


SOAK_LINE = re.compile(
    r"^soak: (?P<seconds>\d+)s requests=(?P<requests>\d+) errors=\{.*\} 5xx=(?P<server_errors>\d+)"
    r" acknowledged_writes=(?P<acked>\d+) found=(?P<found>\d+) lost=(?P<lost>\d+)$"
)


@pytest.mark.slow
@pytest.mark.parametrize("server", ["postgresql", "mysql"])
def test_soak_script_runs_mixed_traffic_and_finds_every_acknowledged_write(
    server: str, request: pytest.FixtureRequest
) -> None:
    """`scripts/soak.sh` itself, for 5 seconds, so it keeps working between real soak runs."""
    admin = "postgres_admin_url" if server == "postgresql" else "mysql_admin_url"
    env = clean_env(SOAK_DATABASE_URL=request.getfixturevalue(admin))
    started = time.monotonic()
    result = subprocess.run(
        [str(SCRIPTS / "soak.sh"), "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started
    output = f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr[-3000:]}"
    assert result.returncode == 0, f"soak.sh exited {result.returncode}\n{output}"
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, f"soak.sh must print exactly one line\n{output}"
    match = SOAK_LINE.match(lines[0])
    assert match, f"unexpected soak line\n{output}"
    assert int(match["seconds"]) == 5
    assert int(match["requests"]) > 0
    assert int(match["server_errors"]) == 0, output
    assert int(match["lost"]) == 0, output
    assert int(match["acked"]) == int(match["found"]) > 0, output
    assert elapsed < 90, f"a 5 s soak took {elapsed:.0f}s"
