"""Client traffic that remembers what the server acknowledged: the soak's and the tests' load.

Client threads send a mix of reads, searches and writes until stopped or a limit is hit. Every
write posts a recipe with a label unique to the run and records each 201's id and label; every
other outcome (a status, or the name of the error that kept the request from being answered) is
counted. Afterwards `bench.databases.lost_writes` looks the acknowledged recipes up directly.
"""

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

SEARCH_KEYWORDS = ("chicken", "curry", "load", "tofu", "paprikash", "vesuvio", "100%", "a_b")


@dataclass(frozen=True)
class Mix:
    """Shares of each kind of request; what is left after reads and searches is writes."""

    reads: float = 0.0
    searches: float = 0.0


WRITES_ONLY = Mix()


class Traffic:
    """`threads` clients until stopped, `max_requests` are sent or `max_seconds` have passed."""

    def __init__(
        self,
        base_url: str,
        *,
        threads: int = 8,
        mix: Mix = WRITES_ONLY,
        max_requests: int = 5000,
        max_seconds: float = 30,
        request_timeout: float = 10,
        recipe_ids: Sequence[int] = (),
        headers: Mapping[str, str] | None = None,
        seed: int = 20240604,
    ) -> None:
        self.base_url = base_url
        self.threads = threads
        self.mix = mix
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.request_timeout = request_timeout
        self.headers = dict(headers or {})
        self.run_id = uuid.uuid4().hex[:8]
        self.recipe_ids = list(recipe_ids)
        self.acknowledged: dict[int, str] = {}
        self.outcomes: Counter[str] = Counter()
        self.unexpected: Counter[str] = Counter()
        self.mismatches: list[str] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sent = 0
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        self._workers = [
            threading.Thread(target=self._client, args=(n, deadline), daemon=True)
            for n in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()

    def stop(self) -> None:
        self._stop.set()
        self.join()

    def join(self) -> None:
        for worker in self._workers:
            worker.join(timeout=self.max_seconds + self.request_timeout + 5)
        alive = [worker.name for worker in self._workers if worker.is_alive()]
        assert not alive, f"client threads still running: {alive}"

    @property
    def requests(self) -> int:
        with self._lock:
            return self._sent

    @property
    def server_errors(self) -> int:
        with self._lock:
            return sum(n for outcome, n in self.outcomes.items() if outcome.startswith("5"))

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

    def _next(self) -> tuple[int, str, int | str] | None:
        """A ticket number, the kind of request and its argument; None once the limit is hit."""
        with self._lock:
            if self._sent >= self.max_requests:
                return None
            self._sent += 1
            roll = self._rng.random()
            if roll < self.mix.reads and self.recipe_ids:
                return self._sent, "read", self._rng.choice(self.recipe_ids)
            if roll < self.mix.reads + self.mix.searches:
                return self._sent, "search", self._rng.choice(SEARCH_KEYWORDS)
            return self._sent, "write", self._sent

    def _client(self, thread_number: int, deadline: float) -> None:
        with httpx.Client(
            base_url=self.base_url, timeout=self.request_timeout, headers=self.headers
        ) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                ticket = self._next()
                if ticket is None:
                    return
                number, kind, argument = ticket
                label = f"load {self.run_id} #{number} from thread {thread_number}"
                try:
                    if kind == "read":
                        response = client.get(f"/recipe/{argument}")
                    elif kind == "search":
                        response = client.get("/search/", params={"keyword": str(argument)})
                    else:
                        payload = {"label": label, "source": "load", "url": None}
                        response = client.post("/recipe/", json=payload)
                except httpx.HTTPError as exc:
                    self._record(exc.__class__.__name__, expected=False)
                    time.sleep(0.02)  # a refused connection fails at once: do not spin
                    continue
                expected = 201 if kind == "write" else 200
                self._record(str(response.status_code), response.status_code == expected)
                if kind == "write" and response.status_code == 201:
                    self._acknowledge(response.json(), label)
                elif response.status_code != expected:
                    time.sleep(0.02)

    def _acknowledge(self, body: dict[str, object], label: str) -> None:
        recipe_id = body["id"]
        assert isinstance(recipe_id, int), body
        with self._lock:
            self.acknowledged[recipe_id] = label
            self.recipe_ids.append(recipe_id)
            if body["label"] != label:
                self.mismatches.append(f"sent {label!r}, got back {body!r}")

    def _record(self, outcome: str, expected: bool) -> None:
        with self._lock:
            self.outcomes[outcome] += 1
            if not expected:
                self.unexpected[outcome] += 1


@contextmanager
def running_traffic(
    base_url: str,
    *,
    threads: int = 8,
    mix: Mix = WRITES_ONLY,
    max_seconds: float = 30,
    headers: Mapping[str, str] | None = None,
) -> Iterator[Traffic]:
    """Started `Traffic`, always stopped on the way out."""
    traffic = Traffic(base_url, threads=threads, mix=mix, max_seconds=max_seconds, headers=headers)
    traffic.start()
    try:
        yield traffic
    finally:
        traffic.stop()
