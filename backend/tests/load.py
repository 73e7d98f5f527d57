"""Helpers for the reliability tests: write load that remembers what was acknowledged, direct
database reads to check it, and a throwaway PostgreSQL server to stop and start.

Every load thread posts recipes with labels unique to the run and records each 201's id and
label; anything else (a 503, a reset connection) is only counted. Afterwards the tests look each
acknowledged recipe up in the database directly.
"""

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import bindparam, create_engine, select, text

from app.core.config import normalise_database_url
from app.models import Recipe
from tests.pg_cluster import ThrowawayCluster
from tests.support import find_pg_bin


class WriteLoad:
    """`threads` clients posting recipes until stopped, or `max_requests`/`max_seconds` is hit."""

    def __init__(
        self,
        base_url: str,
        *,
        threads: int = 8,
        max_requests: int = 5000,
        max_seconds: float = 30,
        request_timeout: float = 10,
    ) -> None:
        self.base_url = base_url
        self.threads = threads
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.request_timeout = request_timeout
        self.run_id = uuid.uuid4().hex[:8]
        self.acknowledged: dict[int, str] = {}
        self.outcomes: Counter[str] = Counter()
        self.mismatches: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sent = 0
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        self._workers = [
            threading.Thread(target=self._post_until_stopped, args=(n, deadline), daemon=True)
            for n in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=self.request_timeout + 5)
        alive = [worker.name for worker in self._workers if worker.is_alive()]
        assert not alive, f"load threads still running after stop: {alive}"

    def acknowledged_count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def wait_for_acknowledged(self, count: int, timeout: float) -> bool:
        """True once `count` writes in total have been acknowledged."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.acknowledged_count() >= count:
                return True
            time.sleep(0.05)
        return False

    def summary(self) -> str:
        with self._lock:
            return f"acknowledged={len(self.acknowledged)} outcomes={dict(self.outcomes)}"

    def _take_ticket(self) -> int | None:
        with self._lock:
            if self._sent >= self.max_requests:
                return None
            self._sent += 1
            return self._sent

    def _post_until_stopped(self, thread_number: int, deadline: float) -> None:
        with httpx.Client(base_url=self.base_url, timeout=self.request_timeout) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                ticket = self._take_ticket()
                if ticket is None:
                    return
                label = f"load {self.run_id} #{ticket} from thread {thread_number}"
                payload = {"label": label, "source": "load", "url": None, "submitter_id": None}
                try:
                    response = client.post("/recipe/", json=payload)
                except httpx.HTTPError as exc:
                    self._record(exc.__class__.__name__)
                    time.sleep(0.02)  # a refused connection fails at once: do not spin
                    continue
                if response.status_code == 201:
                    body = response.json()
                    with self._lock:
                        self.outcomes["201"] += 1
                        self.acknowledged[body["id"]] = body["label"]
                        if body["label"] != label:
                            self.mismatches.append(f"sent {label!r}, got back {body!r}")
                else:
                    self._record(str(response.status_code))
                    time.sleep(0.02)

    def _record(self, outcome: str) -> None:
        with self._lock:
            self.outcomes[outcome] += 1


@contextmanager
def running_load(
    base_url: str, threads: int = 8, max_requests: int = 5000, max_seconds: float = 30
) -> Iterator[WriteLoad]:
    """A started `WriteLoad`, always stopped on the way out."""
    load = WriteLoad(base_url, threads=threads, max_requests=max_requests, max_seconds=max_seconds)
    load.start()
    try:
        yield load
    finally:
        load.stop()


def stored_labels(database_url: str, ids: Iterable[int]) -> dict[int, str]:
    """Labels of the recipes with these ids, read from the database without the app."""
    wanted = sorted(ids)
    engine = create_engine(normalise_database_url(database_url))
    try:
        with engine.connect() as connection:
            query = select(Recipe.id, Recipe.label).where(
                Recipe.id.in_(bindparam("ids", expanding=True))
            )
            rows = connection.execute(query, {"ids": wanted}).all()
    finally:
        engine.dispose()
    return {row.id: row.label for row in rows}


def lost_writes(database_url: str, acknowledged: dict[int, str]) -> list[str]:
    """Each acknowledged recipe that is missing or changed, described; empty when none."""
    stored = stored_labels(database_url, acknowledged)
    return [
        f"id {recipe_id}: acknowledged {label!r}, stored {stored.get(recipe_id)!r}"
        for recipe_id, label in sorted(acknowledged.items())
        if stored.get(recipe_id) != label
    ]


def count_rows(database_url: str, table: str) -> int:
    engine = create_engine(normalise_database_url(database_url))
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one())
    finally:
        engine.dispose()


@contextmanager
def running_cluster() -> Iterator[ThrowawayCluster]:
    """A started throwaway PostgreSQL server, destroyed on the way out.

    Without server binaries the test is skipped, or fails under REQUIRE_POSTGRES=1 (as in CI).
    """
    if find_pg_bin() is None:
        reason = "no PostgreSQL server binaries (initdb) for a throwaway cluster"
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason} (REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    cluster = ThrowawayCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
