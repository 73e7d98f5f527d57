"""A database outage while serving: gunicorn (2 workers) on a throwaway PostgreSQL or MariaDB
server.

Requests that need the database answer 503 with a JSON reason, never 500 and never after more
than the configured connect/statement timeout; `/health` stays 200 and `/health/ready` says
503. When the database is back the same workers serve again, without a restart.
"""

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest

from app.api.errors import DATABASE_UNAVAILABLE
from bench.servers import Server, serving_stack, wait_until
from tests.utils.cluster import (
    ThrowawayMariaDB,
    ThrowawayServer,
    admin_engine,
    app_connections,
    kill_connection,
    recipe_table_locked,
    running_server,
)
from tests.utils.migrations import migrate
from tests.utils.recipe import recipe_payload
from tests.utils.user import Account, served_account

pytestmark = pytest.mark.slow

CONNECT_TIMEOUT = 2  # libpq's minimum
STATEMENT_TIMEOUT_MS = 3000
# Each worker holds at most 8 connections; a 9th request waits this long for one, then gets 503.
POOL_SIZE, MAX_OVERFLOW, POOL_TIMEOUT = 4, 4, 1
# Slack for a loaded 2-core CI machine on top of the timeout that bounds a request.
MARGIN = 3.0
RECOVERY_DEADLINE = 10.0
NEW_RECIPE = recipe_payload(label="outage soup")


@pytest.fixture(scope="module", params=["postgresql", "mysql"])
def cluster(request: pytest.FixtureRequest) -> Iterator[ThrowawayServer]:
    with running_server(request.param) as started:
        migrate(started.url())
        yield started


@pytest.fixture(scope="module")
def server(cluster: ThrowawayServer) -> Iterator[Server]:
    with serving_stack(
        cluster.url(),
        {
            "DB_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
            "DB_STATEMENT_TIMEOUT_MS": str(STATEMENT_TIMEOUT_MS),
            "DB_POOL_SIZE": str(POOL_SIZE),
            "DB_MAX_OVERFLOW": str(MAX_OVERFLOW),
            "DB_POOL_TIMEOUT": str(POOL_TIMEOUT),
        },
    ) as running:
        yield running


@pytest.fixture(scope="module")
def writer(server: Server, cluster: ThrowawayServer) -> Account:
    """A user logged in while the database is up; its token outlasts the outages."""
    return served_account(server.base_url, cluster.url())


@pytest.fixture
def recipe_id(server: Server, cluster: ThrowawayServer, writer: Account) -> Iterator[int]:
    """A stored recipe, with the database up and every worker's pool warm."""
    # After a restart in the test before, a worker that served nothing since still pools dead
    # connections: a read notices and runs again, a write answers 503 once (it is never run
    # twice). So reads first, on fresh connections, which both workers take.
    statuses = burst(server, lambda client: client.get("/recipes/", params={"limit": 1}), count=24)
    assert statuses == Counter({200: 24}), f"reads with the database up: {statuses}"
    response = httpx.post(
        server.base_url + "/recipe/", json=NEW_RECIPE, headers=writer.headers, timeout=10
    )
    assert response.status_code == 201, response.text
    recipe_id: int = response.json()["id"]
    statuses = burst(server, lambda client: client.get(f"/recipe/{recipe_id}"), count=24)
    assert statuses == Counter({200: 24}), f"warm-up with the database up: {statuses}"
    yield recipe_id
    # Whatever a test did to the database, the next one finds it running.
    if not database_answers(cluster):
        cluster.start()


def database_answers(cluster: ThrowawayServer) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", cluster.port), timeout=1):
            return True
    except OSError:
        return False


def burst(
    server: Server,
    send: Callable[[httpx.Client], httpx.Response],
    count: int = 16,
    threads: int = 8,
) -> Counter[int]:
    """Send `count` requests from `threads` clients at once (fresh connections, so both workers
    take some); returns how many got each status."""

    def one(_: int) -> int:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            return send(client).status_code

    with ThreadPoolExecutor(threads) as pool:
        return Counter(pool.map(one, range(count)))


def timed(send: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = send()
    return response, time.monotonic() - started


def assert_unavailable(response: httpx.Response, elapsed: float, limit: float) -> None:
    request = f"{response.request.method} {response.request.url.path}"
    assert response.status_code == 503, (
        f"{request} answered {response.status_code} during the outage: {response.text[:300]}"
    )
    assert response.headers["content-type"] == "application/json", response.headers
    assert response.json() == {"detail": DATABASE_UNAVAILABLE}, response.text
    assert response.headers.get("retry-after") == "1", response.headers
    assert elapsed < limit, f"{request} took {elapsed:.1f}s, more than {limit:.1f}s"


def wait_for_recovery(server: Server, recipe_id: int) -> float:
    """Seconds until GET /recipe/{id} answers 200 again; fails after RECOVERY_DEADLINE."""
    started = time.monotonic()
    last: object = None
    while time.monotonic() - started < RECOVERY_DEADLINE:
        try:
            response = httpx.get(f"{server.base_url}/recipe/{recipe_id}", timeout=10)
            if response.status_code == 200:
                return time.monotonic() - started
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"no recovery within {RECOVERY_DEADLINE}s (last: {last!r})")


def test_database_stopped_gives_503_quickly_and_service_resumes_when_it_is_back(
    server: Server, cluster: ThrowawayServer, recipe_id: int, writer: Account
) -> None:
    base = server.base_url
    auth = writer.headers
    cluster.stop("fast")  # terminates the pooled connections: the first use of each must notice
    limit = CONNECT_TIMEOUT + MARGIN

    for send in (
        lambda: httpx.get(f"{base}/recipe/{recipe_id}", timeout=30),
        lambda: httpx.post(f"{base}/recipe/", json=NEW_RECIPE, headers=auth, timeout=30),
        lambda: httpx.get(f"{base}/search/", params={"keyword": "soup"}, timeout=30),
        lambda: httpx.get(f"{base}/user/{writer.id}", headers=auth, timeout=30),
        lambda: httpx.get(f"{base}/", timeout=30),
    ):
        assert_unavailable(*timed(send), limit=limit)

    # Every request on either worker, whatever state its pooled connections were in.
    statuses = burst(server, lambda client: client.get(f"/recipe/{recipe_id}"), count=24)
    assert statuses == Counter({503: 24}), f"GET during the outage: {statuses}"
    statuses = burst(
        server, lambda client: client.post("/recipe/", json=NEW_RECIPE, headers=auth), count=8
    )
    assert statuses == Counter({503: 8}), f"POST during the outage: {statuses}"

    # Clients learn of this answer from the schema, which is served without the database.
    document = httpx.get(f"{base}/openapi.json", timeout=10).json()
    for method, path in [
        ("get", "/recipe/{recipe_id}"),
        ("post", "/recipe/"),
        ("get", "/search/"),
        ("get", "/user/{user_id}"),
        ("get", "/"),
    ]:
        documented = document["paths"][path][method]["responses"]
        assert "503" in documented, f"{method.upper()} {path} documents only {sorted(documented)}"

    live = httpx.get(f"{base}/health", timeout=10)
    assert (live.status_code, live.json()) == (200, {"status": "ok"}), live.text
    ready, elapsed = timed(lambda: httpx.get(f"{base}/health/ready", timeout=30))
    assert ready.status_code == 503, f"/health/ready during the outage: {ready.text}"
    assert ready.json()["status"] == "unavailable", ready.text
    assert ready.json()["detail"], ready.text
    assert elapsed < limit, f"/health/ready took {elapsed:.1f}s"

    cluster.start()  # same port, same data; the app is not restarted
    wait_for_recovery(server, recipe_id)
    statuses = burst(server, lambda client: client.get(f"/recipe/{recipe_id}"), count=24)
    assert statuses == Counter({200: 24}), f"GET after the database came back: {statuses}"
    created = httpx.post(f"{base}/recipe/", json=NEW_RECIPE, headers=auth, timeout=10)
    assert created.status_code == 201, created.text
    ready = httpx.get(f"{base}/health/ready", timeout=10)
    assert ready.status_code == 200, ready.text


@contextmanager
def silent_listener(port: int) -> Iterator[None]:
    """Something on the database's port that accepts TCP connections and never answers."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    try:
        yield
    finally:
        sock.close()


def test_unresponsive_database_gives_503_within_the_connect_timeout(
    server: Server, cluster: ThrowawayServer, recipe_id: int
) -> None:
    # PyMySQL waits for the server's greeting with its read timeout, not the connect timeout:
    # the app sets that to the statement timeout plus the connect timeout (app/db/session.py).
    limit = CONNECT_TIMEOUT + MARGIN
    if isinstance(cluster, ThrowawayMariaDB):
        limit += STATEMENT_TIMEOUT_MS / 1000
    cluster.stop("fast")
    with silent_listener(cluster.port):
        response, elapsed = timed(
            lambda: httpx.get(f"{server.base_url}/recipe/{recipe_id}", timeout=30)
        )
        assert_unavailable(response, elapsed, limit=limit)
        assert elapsed >= CONNECT_TIMEOUT - 0.5, (
            f"answered in {elapsed:.1f}s: the request never reached the silent database"
        )
        ready, elapsed = timed(lambda: httpx.get(f"{server.base_url}/health/ready", timeout=30))
        assert ready.status_code == 503, ready.text
        assert elapsed < limit, f"/health/ready took {elapsed:.1f}s"
    cluster.start()
    wait_for_recovery(server, recipe_id)


def test_pooled_connections_killed_by_the_server_are_replaced_without_errors(
    server: Server, cluster: ThrowawayServer, recipe_id: int
) -> None:
    engine = admin_engine(cluster)
    try:
        with engine.connect() as connection:
            killed = [kill_connection(connection, pid) for pid in app_connections(connection)]
    finally:
        engine.dispose()
    assert len(killed) >= 2, f"expected pooled connections of both workers, killed {killed}"
    assert all(killed), killed
    statuses = burst(server, lambda client: client.get(f"/recipe/{recipe_id}"), count=24)
    assert statuses == Counter({200: 24}), f"GET after the pooled connections died: {statuses}"


def run_in_thread(send: Callable[[], httpx.Response]) -> tuple[threading.Thread, list[object]]:
    result: list[object] = []

    def target() -> None:
        started = time.monotonic()
        outcome: object
        try:
            outcome = send()
        except httpx.HTTPError as exc:
            outcome = exc
        result.extend((outcome, time.monotonic() - started))  # both at once, for readers

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result


def test_connection_lost_in_the_middle_of_a_request_gives_503(
    server: Server, cluster: ThrowawayServer, recipe_id: int
) -> None:
    engine = admin_engine(cluster)
    try:
        with (
            engine.connect() as locker,
            engine.connect() as observer,
            recipe_table_locked(locker),
        ):
            thread, result = run_in_thread(
                lambda: httpx.get(f"{server.base_url}/recipe/{recipe_id}", timeout=30)
            )
            waiting = wait_until(lambda: bool(app_connections(observer, True)), timeout=10)
            assert waiting, "the request never reached the database"
            # Killed while it waits: the request loses its connection mid-query.
            terminated = [kill_connection(observer, pid) for pid in app_connections(observer, True)]
            thread.join(timeout=30)
    finally:
        engine.dispose()
    assert terminated, "no request was waiting to be terminated"
    assert all(terminated), f"terminating the connection failed: {terminated}"
    response, elapsed = result
    assert isinstance(response, httpx.Response), f"no response: {response!r}"
    assert isinstance(elapsed, float)
    assert_unavailable(response, elapsed, limit=STATEMENT_TIMEOUT_MS / 1000 + MARGIN)


def test_query_blocked_past_the_statement_timeout_gives_503(
    server: Server, cluster: ThrowawayServer, recipe_id: int
) -> None:
    engine = admin_engine(cluster)
    try:
        with engine.connect() as locker, recipe_table_locked(locker):
            response, elapsed = timed(
                lambda: httpx.get(f"{server.base_url}/recipe/{recipe_id}", timeout=30)
            )
    finally:
        engine.dispose()
    assert_unavailable(response, elapsed, limit=STATEMENT_TIMEOUT_MS / 1000 + MARGIN)
    assert elapsed >= STATEMENT_TIMEOUT_MS / 1000 - 0.2, f"answered after {elapsed:.1f}s"
    after = httpx.get(f"{server.base_url}/recipe/{recipe_id}", timeout=10)
    assert after.status_code == 200, after.text


def test_requests_beyond_the_pool_get_503_after_the_pool_timeout(
    server: Server, cluster: ThrowawayServer, recipe_id: int
) -> None:
    """More requests than connections while every connection is stuck: the surplus waits
    DB_POOL_TIMEOUT for a connection and gets 503, instead of queueing without end."""
    in_flight = 3 * (POOL_SIZE + MAX_OVERFLOW)  # more than both workers' pools together
    engine = admin_engine(cluster)
    try:
        with engine.connect() as locker, recipe_table_locked(locker):
            requests = [
                run_in_thread(
                    lambda: httpx.get(f"{server.base_url}/recipe/{recipe_id}", timeout=30)
                )
                for _ in range(in_flight)
            ]
            # Only a pool timeout can answer while the lock is held (shorter than the
            # statement timeout).
            answered = wait_until(
                lambda: any(result for _, result in requests),
                timeout=(STATEMENT_TIMEOUT_MS / 1000) - 0.5,
            )
            early = [list(result) for _, result in requests if result]
    finally:
        engine.dispose()
    for thread, _ in requests:
        thread.join(timeout=30)
    assert answered, "no request got an answer while every connection was stuck"
    for response, elapsed in early:
        assert isinstance(response, httpx.Response), f"no response: {response!r}"
        assert isinstance(elapsed, float)
        assert_unavailable(response, elapsed, limit=POOL_TIMEOUT + MARGIN)
    statuses = Counter(
        result[0].status_code if isinstance(result[0], httpx.Response) else repr(result[0])
        for _, result in requests
    )
    assert set(statuses) <= {200, 503}, f"statuses with the pool exhausted: {statuses}"
