"""What operators see of each request, in-process (each test on SQLite and PostgreSQL where it
needs a database): the one line a request ends with, its id on every line written meanwhile, and
the metrics at /metrics. The same through gunicorn's workers: test_observability_stack.py."""

import io
import logging
import os
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.core.logging import (
    JsonFormatter,
    JsonLinesHandler,
    RequestIdFilter,
    RequestLog,
    TextFormatter,
    current_request_id,
)
from app.core.metrics import DURATION_BUCKETS, Metrics
from app.db.migrations import head_revision
from app.main import VERSION, create_app
from bench.servers import free_port
from tests.utils.logs import CapturedLog, captured_log, json_lines
from tests.utils.recipe import create_recipe, recipe_payload
from tests.utils.settings import settings_for

GENERATED_ID = re.compile(r"[0-9a-f]{32}")
RECIPE_ROUTE = "/recipe/{recipe_id}"


@pytest.fixture
def log() -> Iterator[CapturedLog]:
    with captured_log() as captured:
        yield captured


def only_line(log: CapturedLog, request_id: str) -> dict[str, Any]:
    lines = log.requests(request_id=request_id)
    assert len(lines) == 1, f"{len(lines)} request lines for {request_id}:\n{log.text}"
    return lines[0]


# --- The request line --------------------------------------------------------------------


def test_each_request_ends_with_one_line_naming_its_route_status_and_duration(
    client: TestClient, log: CapturedLog
) -> None:
    recipe = create_recipe(client)

    response = client.get(f"/recipe/{recipe['id']}")

    assert response.status_code == 200, response.text
    request_id = response.headers["X-Request-ID"]
    assert GENERATED_ID.fullmatch(request_id), request_id
    line = only_line(log, request_id)
    assert line["level"] == "info", line
    assert line["message"] == f"GET {RECIPE_ROUTE} 200", line
    assert line["method"] == "GET", line
    assert line["route"] == RECIPE_ROUTE, "the route template, not the path"
    assert str(recipe["id"]) not in line["route"], line
    assert line["status"] == 200, line
    assert isinstance(line["duration_ms"], float), line
    assert 0 < line["duration_ms"] < 10_000, line
    assert line["client"] == "testclient", line
    assert line["pid"] == os.getpid(), line
    logged_at = datetime.fromisoformat(line["time"].replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - logged_at) < timedelta(minutes=1), line
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"]), line


def test_every_request_gets_its_own_id_and_line(client: TestClient, log: CapturedLog) -> None:
    responses = [client.get("/health"), client.get("/recipes/"), client.get("/no/such/page")]

    ids = [response.headers["X-Request-ID"] for response in responses]
    assert len(set(ids)) == 3, ids
    routes = [only_line(log, request_id)["route"] for request_id in ids]
    # A path no route matches is logged as one label, whatever it was.
    assert routes == ["/health", "/recipes/", "unmatched"], routes
    assert "/no/such/page" not in str(log.requests())


def test_the_request_line_writes_no_body_and_no_token(client: TestClient, log: CapturedLog) -> None:
    response = client.post("/recipe/", json=recipe_payload(label="Secret ingredient soup"))

    assert response.status_code == 201, response.text
    line = only_line(log, response.headers["X-Request-ID"])
    assert (line["route"], line["status"]) == ("/recipe/", 201), line
    assert "Secret ingredient" not in log.text
    token = client.headers["Authorization"].removeprefix("Bearer ")
    assert token not in log.text


def test_a_422_is_logged_on_the_id_it_answers_with(client: TestClient, log: CapturedLog) -> None:
    response = client.get("/recipe/0")

    assert response.status_code == 422, response.text
    line = only_line(log, response.headers["X-Request-ID"])
    assert (line["route"], line["status"], line["level"]) == (RECIPE_ROUTE, 422, "info"), line


def test_an_oversized_body_is_logged_as_its_413(client: TestClient, log: CapturedLog) -> None:
    response = client.post("/recipe/", content=b"x" * (1024 * 1024))

    assert response.status_code == 413, response.text
    line = only_line(log, response.headers["X-Request-ID"])
    # Refused on its declared length, before any route is chosen.
    assert (line["method"], line["route"], line["status"]) == ("POST", "unmatched", 413), line


# --- Request ids ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sent",
    ["0f8fad5b-d9cb-469f-a165-70867728950e", "4bf92f3577b34da6a3ce929d0e0e4736", "ab.CD_9:x-1"],
)
def test_a_sane_incoming_request_id_is_kept(
    client: TestClient, log: CapturedLog, sent: str
) -> None:
    response = client.get("/health", headers={"X-Request-ID": sent})

    assert response.headers["X-Request-ID"] == sent
    assert only_line(log, sent)["route"] == "/health"


@pytest.mark.parametrize(
    "sent",
    [
        b"",
        b"has space",
        b"x" * 129,
        b'quote"and\\backslash',
        b"semi;colon=1",
        b'{"status":500}',
        "caf\u00e9".encode(),
        b"\xff\xfe",
    ],
    ids=["empty", "space", "129-chars", "quotes", "semicolon", "json", "utf-8", "not-utf-8"],
)
def test_a_malformed_or_oversized_request_id_is_replaced_not_echoed(
    client: TestClient, log: CapturedLog, sent: bytes
) -> None:
    response = client.get("/health", headers=[(b"X-Request-ID", sent)])

    replaced = response.headers["X-Request-ID"]
    assert GENERATED_ID.fullmatch(replaced), f"{sent!r} came back as {replaced!r}"
    assert only_line(log, replaced)["route"] == "/health"
    if sent:
        assert sent.decode("utf-8", "replace") not in log.text, log.text
        assert sent.decode("latin-1") not in str(response.headers), response.headers


def test_the_request_id_is_on_the_lines_of_the_database_thread(
    client: TestClient, log: CapturedLog
) -> None:
    """The unit of work runs in an executor thread, which inherits no context by itself."""
    recipe = create_recipe(client)
    seen: list[tuple[str, str | None]] = []

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((record.threadName or "", getattr(record, "request_id", None)))

    sql_logger = logging.getLogger("sqlalchemy.engine.Engine")
    spy = Seen()
    spy.addFilter(RequestIdFilter())
    sql_logger.addHandler(spy)
    sql_logger.setLevel(logging.INFO)
    try:
        response = client.get(f"/recipe/{recipe['id']}")
    finally:
        sql_logger.removeHandler(spy)
        sql_logger.setLevel(logging.NOTSET)

    request_id = response.headers["X-Request-ID"]
    statements = [
        entry
        for entry in log.entries(logger="sqlalchemy.engine.Engine")
        if "FROM recipe" in entry["message"]
    ]
    assert statements, f"no SQL logged:\n{log.text}"
    assert all(entry.get("request_id") == request_id for entry in statements), statements
    threads = {thread for thread, rid in seen if rid == request_id}
    assert threads, seen
    assert all(name.startswith("db") for name in threads), seen


def test_a_503_logs_its_reason_on_the_request_id_and_never_the_password(
    log: CapturedLog,
) -> None:
    password = "never-logged-pw"
    unreachable = f"postgresql://postgres:{password}@127.0.0.1:{free_port()}/recipes"
    app = create_app(settings_for(unreachable, DB_CONNECT_TIMEOUT=2))

    with TestClient(app) as client:
        response = client.get("/recipe/1")
        scraped = client.get("/metrics").text

    assert response.status_code == 503, response.text
    request_id = response.headers["X-Request-ID"]
    [reason] = log.entries(request_id=request_id, logger="app.api.errors")
    assert reason["level"] == "warning", reason
    assert reason["cause"] == "database", reason
    assert "database unavailable (OperationalError)" in reason["message"], reason
    assert "Connection refused" in reason["message"], reason
    line = only_line(log, request_id)
    assert (line["status"], line["level"], line["route"]) == (503, "warning", RECIPE_ROUTE)
    assert password not in log.text
    assert sample(scraped, "database_unavailable_total", cause="database") == 1


def test_an_unhandled_error_is_logged_with_its_traceback_and_answered_500_with_the_id(
    database_url: str, log: CapturedLog
) -> None:
    app = create_app(settings_for(database_url))

    @app.get("/test-only/explode")
    def explode() -> None:
        raise RuntimeError("boom in a route")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/test-only/explode")

    assert response.status_code == 500, response.text
    assert response.text == "Internal Server Error"
    request_id = response.headers["X-Request-ID"]
    [error] = log.entries(request_id=request_id, logger="app.api.observability")
    assert (error["level"], error["message"]) == ("error", "unhandled error"), error
    assert "RuntimeError: boom in a route" in error["exception"], error
    line = only_line(log, request_id)
    assert (line["route"], line["status"], line["level"]) == ("/test-only/explode", 500, "error")


# --- Formats -------------------------------------------------------------------------------


def test_the_text_format_puts_the_id_and_fields_after_the_message(client: TestClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        response = client.get("/health")
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)

    request_id = response.headers["X-Request-ID"]
    [line] = [line for line in stream.getvalue().splitlines() if "[app.request]" in line]
    assert " INFO [app.request] GET /health 200 " in line, line
    for field in (f"request_id={request_id}", "route=/health", "status=200", "method=GET"):
        assert field in line, line


def test_a_request_line_has_the_fields_of_every_other_json_line_in_the_same_order() -> None:
    """The request line skips the LogRecord, for speed; it must still look like the rest."""
    stream = io.StringIO()
    handler = JsonLinesHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("tests.request-line")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    fields = {"method": "GET", "route": "/r", "status": 200, "duration_ms": 1.5, "client": "c"}
    token = current_request_id.set("an-id")
    try:
        RequestLog(logger.name).write(logging.INFO, "GET /r 200", fields)
        logger.info("GET /r 200", extra=fields)
    finally:
        current_request_id.reset(token)
        logger.removeHandler(handler)

    direct, through_a_record = json_lines(stream.getvalue())
    assert list(direct) == list(through_a_record), (direct, through_a_record)
    assert {**direct, "time": None} == {**through_a_record, "time": None}


# --- Metrics -------------------------------------------------------------------------------


def sample(exposition: str, name: str, **labels: str) -> float:
    """One sample's value from Prometheus' text format; 0 if it is absent."""
    for family in text_string_to_metric_families(exposition):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return 0.0


def test_metrics_count_requests_by_route_method_and_status(client: TestClient) -> None:
    recipe = create_recipe(client)
    for _ in range(5):
        assert client.get(f"/recipe/{recipe['id']}").status_code == 200
    for _ in range(2):
        assert client.get("/recipe/0").status_code == 422

    response = client.get("/metrics")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    text = response.text
    route = {"route": RECIPE_ROUTE, "method": "GET"}
    assert sample(text, "http_requests_total", status="200", **route) == 5, text
    assert sample(text, "http_requests_total", status="422", **route) == 2, text
    assert sample(text, "http_requests_total", route="/recipe/", method="POST", status="201") == 1
    assert sample(text, "http_request_duration_seconds_count", **route) == 7, text
    assert sample(text, "http_request_duration_seconds_bucket", le="+Inf", **route) == 7, text
    assert sample(text, "http_request_duration_seconds_sum", **route) > 0, text
    # The scrape itself is the one request in progress; no connection is in use during it.
    assert sample(text, "http_requests_in_progress") == 1, text
    assert sample(text, "database_pool_checked_out_connections") == 0, text
    info = {"version": VERSION, "alembic_head": head_revision() or "none"}
    assert sample(text, "recipe_api_info", **info) == 1, text


def test_requests_counted_in_memory_export_as_prometheus_observing_each_would() -> None:
    """A second's worth of requests goes to the histogram at once (app/core/metrics.py): what
    /metrics shows must be what Histogram.observe, one request at a time, would have made."""
    durations = [0.0004, 0.001, 0.0011, 0.003, 0.003, 0.24, 0.25, 0.7, 4.9, 30.0]
    metrics = Metrics(VERSION, head_revision())
    reference = CollectorRegistry()
    expected = Histogram(
        "http_request_duration_seconds",
        "reference",
        ["route", "method"],
        buckets=DURATION_BUCKETS,
        registry=reference,
    )
    for number, seconds in enumerate(durations):
        metrics.request_answered("/r", "GET", 404 if number == 3 else 200, seconds)
        expected.labels("/r", "GET").observe(seconds)

    metrics.flush()

    exported = metrics.exposition().decode()
    names = ("http_request_duration_seconds_bucket", "http_request_duration_seconds_sum")
    wanted = [
        found
        for family in text_string_to_metric_families(generate_latest(reference).decode())
        for found in family.samples
        if found.name in names
    ]
    assert len(wanted) == len(DURATION_BUCKETS) + 2, wanted
    for found in wanted:
        got = sample(exported, found.name, **found.labels)
        assert got == pytest.approx(found.value), (found, exported)
    route = {"route": "/r", "method": "GET"}
    assert sample(exported, "http_request_duration_seconds_count", **route) == len(durations)
    assert sample(exported, "http_requests_total", status="200", **route) == len(durations) - 1
    assert sample(exported, "http_requests_total", status="404", **route) == 1
    # Flushed once: a second flush adds nothing.
    metrics.flush()
    assert metrics.exposition().decode() == exported


def test_made_up_methods_share_one_metric_label(client: TestClient) -> None:
    for method in ("PROPFIND", "BREW", "X" * 40):
        client.request(method, "/health")

    text = client.get("/metrics").text

    assert sample(text, "http_requests_total", route="/health", method="other", status="405") == 3
    assert "PROPFIND" not in text, text
    assert "BREW" not in text, text


def test_pooled_connections_in_use_are_sampled(app: FastAPI, client: TestClient) -> None:
    held = threading.Event()
    release = threading.Event()
    engine = app.state.engine

    def hold() -> None:
        with engine.connect():
            held.set()
            release.wait(timeout=30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(timeout=10)
        during = client.get("/metrics").text
    finally:
        release.set()
        holder.join(timeout=10)
    after = client.get("/metrics").text

    assert sample(during, "database_pool_checked_out_connections") == 1, during
    assert sample(after, "database_pool_checked_out_connections") == 0, after


def test_metrics_disabled_removes_the_route_and_keeps_the_request_ids(database_url: str) -> None:
    app = create_app(settings_for(database_url, METRICS_ENABLED=False))

    with TestClient(app) as client:
        response = client.get("/metrics")
        health = client.get("/health")

    assert response.status_code == 404, response.text
    assert app.state.metrics is None
    assert GENERATED_ID.fullmatch(health.headers["X-Request-ID"]), health.headers
