"""The app's Prometheus metrics, correct whichever gunicorn worker answers /metrics.

Each gunicorn worker is a process of its own. In prometheus-client's multiprocess mode every
worker writes its values to files in the directory PROMETHEUS_MULTIPROC_DIR names (set and
emptied by scripts/start.sh before the workers start), and /metrics adds up the files of all of
them. A gauge of a worker that died is dropped (gunicorn.conf.py, `child_exit`); its counters
stay, so that totals never go back. Without that variable (scripts/dev.sh, the tests in-process)
the values live in the process, in a registry of the app's own.

Writing a value to those files costs each request more than the rest of its metrics and its log
line together (docs/performance.md). So a request is counted in memory, and each worker writes
what it counted to the metrics once every SAMPLE_SECONDS, and before it answers /metrics or
stops; the gauges are sampled at the same moments.
"""

import asyncio
import os
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import Engine

MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Seconds; most requests take milliseconds, a database that does not answer takes the timeouts
# (DB_POOL_TIMEOUT, DB_STATEMENT_TIMEOUT_MS: 5 s by default).
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Methods other than these share one label, so that made-up methods cannot add series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
# How old what /metrics reports of the other workers may be.
SAMPLE_SECONDS = 1.0


def multiprocess_directory() -> str | None:
    return os.environ.get(MULTIPROCESS_DIRECTORY) or None


@dataclass
class _Answered:
    """Requests of one route, method and status answered since the last flush."""

    count: int = 0
    seconds: float = 0.0
    # One more than the bounds: the last counts what took longer than all of them (+Inf).
    buckets: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))


class Metrics:
    """Every metric the app exports; one per app, built by `create_app`.

    The request middleware calls `request_answered` and keeps `in_flight` up to date, on the
    event loop; `flush_while_serving`, started with the app, and /metrics call `flush` there too.
    """

    def __init__(self, version: str, alembic_head: str | None) -> None:
        self.multiprocess = multiprocess_directory() is not None
        # In multiprocess mode the values go to the files and /metrics reads them all, so the
        # metrics are registered nowhere in the process.
        self.registry = None if self.multiprocess else CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "http_request_duration_seconds",
            "Time from the request's arrival to its response, by route template and method.",
            ["route", "method"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.requests_in_progress = Gauge(
            "http_requests_in_progress",
            "HTTP requests being served, across the live workers.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.database_unavailable = Counter(
            "database_unavailable",
            "Requests answered 503 for want of the database: cause=pool when no pooled "
            "connection came free in time, cause=database when it refused, dropped or timed "
            "out the work.",
            ["cause"],
            registry=registry,
        )
        self.pool_checked_out = Gauge(
            "database_pool_checked_out_connections",
            "Pooled database connections in use, across the live workers.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.info = Gauge(
            "recipe_api_info",
            "Always 1: the app's version, and the newest migration its code knows.",
            ["version", "alembic_head"],
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.info.labels(version=version, alembic_head=alembic_head or "none").set(1)
        # Requests inside the middleware now; only the event loop changes it.
        self.in_flight = 0
        self._answered: dict[tuple[str, str, int], _Answered] = {}
        self._engine: Engine | None = None

    def request_answered(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count a request, in memory until the next `flush`."""
        answered = self._answered.get((route, method, status))
        if answered is None:
            answered = self._answered[(route, method, status)] = _Answered()
        answered.count += 1
        answered.seconds += seconds
        # The first bucket whose bound is at least `seconds`, as Histogram.observe picks it.
        answered.buckets[bisect_left(DURATION_BUCKETS, seconds)] += 1

    def watch_pool(self, engine: Engine) -> None:
        """Sample this engine's pool from now on."""
        self._engine = engine

    def flush(self) -> None:
        """Write the requests counted since the last flush, and this worker's gauges."""
        answered, self._answered = self._answered, {}
        for (route, method, status), counted in answered.items():
            label = method if method in KNOWN_METHODS else OTHER_METHOD
            self.requests.labels(route, label, str(status)).inc(counted.count)
            histogram: Any = self.request_duration.labels(route, label)
            # Histogram.observe takes one value at a time. What it adds to, the sum and the
            # bucket of each value, takes a second's worth at once (tests/test_observability.py
            # checks the exported buckets, sum and count).
            histogram._sum.inc(counted.seconds)
            for bucket, count in zip(histogram._buckets, counted.buckets, strict=True):
                if count:
                    bucket.inc(count)
        self.requests_in_progress.set(self.in_flight)
        pool = self._engine.pool if self._engine is not None else None
        checked_out = getattr(pool, "checkedout", None)
        if checked_out is not None:
            self.pool_checked_out.set(checked_out())

    async def flush_while_serving(self) -> None:
        """`flush` every SAMPLE_SECONDS until cancelled, and once more then (at shutdown)."""
        try:
            while True:
                self.flush()
                await asyncio.sleep(SAMPLE_SECONDS)
        finally:
            self.flush()

    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format (`CONTENT_TYPE`): in multiprocess mode, the
        sum over the files of every worker, live or dead. Reads files: call it off the loop."""
        if self.registry is not None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
