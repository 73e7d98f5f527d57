"""Logs and metrics of the real stack: scripts/start.sh, gunicorn, two uvicorn workers, the
metrics files of prometheus-client's multiprocess mode, PostgreSQL."""

import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import create_engine, text

from app.core.config import normalise_database_url
from bench.servers import Server, free_port, serving_stack, wait_until
from tests.test_observability import RECIPE_ROUTE, sample
from tests.utils.logs import json_lines, lines_of
from tests.utils.recipe import recipe_payload
from tests.utils.user import served_account

pytestmark = pytest.mark.slow

RECIPE = {"route": RECIPE_ROUTE, "method": "GET", "status": "200"}


def scrape(server: Server) -> str:
    response = httpx.get(f"{server.base_url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def created_recipe(server: Server, database_url: str) -> int:
    writer = served_account(server.base_url, database_url)
    response = httpx.post(
        f"{server.base_url}/recipe/", json=recipe_payload(), headers=writer.headers, timeout=10
    )
    assert response.status_code == 201, response.text
    recipe_id: int = response.json()["id"]
    return recipe_id


def get_on_a_new_connection(server: Server, recipe_id: int) -> httpx.Response:
    """Each request on a connection of its own, so that the kernel spreads them over both
    workers' sockets (reuse_port)."""
    return httpx.get(f"{server.base_url}/recipe/{recipe_id}", timeout=30)


def test_metrics_add_up_across_two_workers_and_each_request_logs_one_json_line(
    fresh_postgres_url: str,
) -> None:
    requests = 60
    with serving_stack(fresh_postgres_url, workers=2) as server:
        recipe_id = created_recipe(server, fresh_postgres_url)
        responses = [get_on_a_new_connection(server, recipe_id) for _ in range(requests)]
        assert {response.status_code for response in responses} == {200}
        # From a trusted proxy (FORWARDED_ALLOW_IPS is 127.0.0.1 by default): its client counts.
        proxied = httpx.get(
            f"{server.base_url}/health", headers={"X-Forwarded-For": "203.0.113.7"}, timeout=10
        )
        # A worker counts a request once it has sent the answer: wait for the last ones.
        counted = wait_until(
            lambda: sample(scrape(server), "http_requests_total", **RECIPE) == requests
        )
        exposition = scrape(server)
        workers = server.worker_pids()
        log = server.log()

    assert counted, exposition
    route = {"route": RECIPE_ROUTE, "method": "GET"}
    assert sample(exposition, "http_request_duration_seconds_count", **route) == requests
    assert sample(exposition, "recipe_api_info") == 1, exposition

    # stdout and stderr of gunicorn, its master and both workers: JSON objects only.
    lines = json_lines(log)
    request_lines = lines_of(lines, logger="app.request", route=RECIPE_ROUTE, method="GET")
    assert len(request_lines) == requests, "exactly one line per request"
    assert {line["request_id"] for line in request_lines} == {
        response.headers["X-Request-ID"] for response in responses
    }
    served_by = {line["pid"] for line in request_lines}
    assert served_by == set(workers), f"the requests went to {served_by}, workers {workers}"
    assert all(line["client"] == "127.0.0.1" for line in request_lines), request_lines[:3]
    [forwarded] = lines_of(lines, request_id=proxied.headers["X-Request-ID"])
    assert forwarded["client"] == "203.0.113.7", forwarded
    master = lines_of(lines, logger="gunicorn.error", pid=server.process.pid)
    assert any("Workers listen at" in line["message"] for line in master), master
    assert not [line for line in lines if line["logger"] in ("uvicorn.access", "gunicorn.access")]


def worker_gauge(metrics_dir: Path, pid: int, name: str) -> float:
    """A gauge's value as one worker last wrote it, read from that worker's file alone."""
    with tempfile.TemporaryDirectory() as alone:
        shutil.copy(metrics_dir / f"gauge_livesum_{pid}.db", alone)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=alone)  # type: ignore[no-untyped-call]
        value = registry.get_sample_value(name)
    return value or 0.0


@contextmanager
def recipe_table_locked(database_url: str) -> Iterator[Any]:
    """Every request that reads the recipe table waits until the block ends."""
    engine = create_engine(normalise_database_url(database_url))
    connection = engine.connect()
    try:
        connection.begin()
        connection.execute(text("LOCK TABLE recipe IN ACCESS EXCLUSIVE MODE"))
        yield connection
    finally:
        connection.rollback()
        connection.close()
        engine.dispose()


def test_a_killed_worker_keeps_its_counts_and_leaves_no_stale_gauges(
    fresh_postgres_url: str,
) -> None:
    held = 8
    pool = {"DB_POOL_SIZE": str(held), "DB_MAX_OVERFLOW": "0"}
    with serving_stack(fresh_postgres_url, pool, workers=2) as server:
        assert server.metrics_dir is not None
        metrics_dir = server.metrics_dir
        recipe_id = created_recipe(server, fresh_postgres_url)
        answered_before = 20
        for _ in range(answered_before):
            assert get_on_a_new_connection(server, recipe_id).status_code == 200
        assert wait_until(
            lambda: sample(scrape(server), "http_requests_total", **RECIPE) == answered_before
        )

        statuses: list[int | str] = []

        def held_request() -> None:
            try:
                statuses.append(get_on_a_new_connection(server, recipe_id).status_code)
            except httpx.HTTPError as exc:
                statuses.append(type(exc).__name__)

        threads = [threading.Thread(target=held_request) for _ in range(held)]
        with recipe_table_locked(fresh_postgres_url):
            for thread in threads:
                thread.start()
            # Every held request is in flight and holds a connection (the scrape is one more).
            in_flight = wait_until(
                lambda: (
                    sample(scrape(server), "http_requests_in_progress") == held + 1
                    and sample(scrape(server), "database_pool_checked_out_connections") == held
                ),
                timeout=20,
            )
            assert in_flight, scrape(server)
            workers = server.worker_pids()
            holding = {
                pid: worker_gauge(metrics_dir, pid, "http_requests_in_progress") for pid in workers
            }
            victim = max(holding, key=lambda pid: holding[pid])
            assert holding[victim] >= 1, holding
            os.kill(victim, signal.SIGKILL)
            replaced = wait_until(
                lambda: victim not in server.worker_pids() and len(server.worker_pids()) == 2,
                timeout=30,
            )
            assert replaced, server.log()[-3000:]
            # gunicorn's child_exit dropped the dead worker's gauges; its counts stay.
            assert not (metrics_dir / f"gauge_livesum_{victim}.db").exists()
            assert (metrics_dir / f"counter_{victim}.db").exists()
        for thread in threads:
            thread.join(timeout=30)

        completed = statuses.count(200)
        failed = [status for status in statuses if status != 200]
        # The victim's requests died with it (its gauge may also have counted the last scrape).
        assert 1 <= len(failed) <= holding[victim], f"{statuses}, held per worker {holding}"
        settled = wait_until(
            lambda: (
                sample(scrape(server), "http_requests_in_progress") == 1
                and sample(scrape(server), "database_pool_checked_out_connections") == 0
            ),
            timeout=10,
        )
        exposition = scrape(server)
        log = server.log()

    assert settled, f"gauges of the dead worker left behind:\n{exposition}"
    # The dead worker's answers before the kill are still counted, and every later answer.
    total = sample(exposition, "http_requests_total", **RECIPE)
    assert total == answered_before + completed, exposition
    assert "Traceback" not in log.split("Booting worker", 1)[0], "a clean start"


def test_a_503_under_gunicorn_logs_its_reason_and_its_line_on_the_id_it_answers_with() -> None:
    password = "not-for-the-log"
    unreachable = f"postgresql://postgres:{password}@127.0.0.1:{free_port()}/recipes"
    sent_id = "0f8fad5b-d9cb-469f-a165-70867728950e"
    settings = {"DB_CONNECT_TIMEOUT": "2", "FORWARDED_ALLOW_IPS": "10.9.9.9"}
    with serving_stack(unreachable, settings, ready_path="/health") as server:
        # Not from a trusted proxy: its X-Forwarded-For is ignored.
        headers = {"X-Request-ID": sent_id, "X-Forwarded-For": "203.0.113.7"}
        response = httpx.get(f"{server.base_url}/recipe/1", headers=headers, timeout=30)
        assert wait_until(lambda: sent_id in server.log() and '"status":503' in server.log())
        log = server.log()

    assert response.status_code == 503, response.text
    assert response.headers["X-Request-ID"] == sent_id
    lines = lines_of(json_lines(log), request_id=sent_id)
    reason, answered = lines
    assert reason["logger"] == "app.api.errors", lines
    assert "Connection refused" in reason["message"], reason
    assert (answered["logger"], answered["status"], answered["level"]) == (
        "app.request",
        503,
        "warning",
    ), answered
    assert reason["pid"] == answered["pid"], lines
    assert answered["client"] == "127.0.0.1", answered
    assert password not in log
