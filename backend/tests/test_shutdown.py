"""Graceful shutdown: SIGTERM to gunicorn (2 workers) while requests are in flight.

The requests in flight finish with their normal answers, new connections are refused as soon as
shutdown begins, idle keep-alive connections are closed, and the master exits 0 within
GUNICORN_GRACEFUL_TIMEOUT. The app is not changed for this: requests are held in flight by a
table lock that the test takes in the database and releases after the signal.
"""

import signal
import socket
import threading
import time
from collections import Counter

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text

from app.core.config import normalise_database_url
from bench.databases import lost_writes
from bench.servers import Server, serving_stack, wait_until
from bench.traffic import running_traffic
from tests.utils.cluster import app_connections, recipe_table_locked
from tests.utils.recipe import recipe_payload
from tests.utils.user import served_account

pytestmark = pytest.mark.slow

GRACEFUL_TIMEOUT = 10
LOCK_HELD_AFTER_SIGTERM = 3.0
IN_FLIGHT_READS = 12
IN_FLIGHT_WRITES = 4


def port_of(server: Server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def connection_refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def sigterm(server: Server) -> float:
    server.process.send_signal(signal.SIGTERM)
    return time.monotonic()


def test_sigterm_lets_requests_in_flight_finish_refuses_new_connections_and_exits_0(
    fresh_server_url: str,
) -> None:
    with serving_stack(
        fresh_server_url,
        {
            "GUNICORN_GRACEFUL_TIMEOUT": str(GRACEFUL_TIMEOUT),
            # The requests wait on the test's lock; they must not time out while they do.
            "DB_STATEMENT_TIMEOUT_MS": "60000",
            # A worker runs at most DB_POOL_SIZE requests in the database at once (one per database
            # thread, app/db/database.py); all of these must fit, with either worker taking most.
            "DB_POOL_SIZE": str(IN_FLIGHT_READS + IN_FLIGHT_WRITES),
        },
    ) as server:
        base = server.base_url
        auth = served_account(base, fresh_server_url).headers
        created = httpx.post(f"{base}/recipe/", json=recipe_payload(label="before"), headers=auth)
        assert created.status_code == 201, created.text
        recipe_id = created.json()["id"]

        results: list[tuple[str, int | str]] = []
        results_lock = threading.Lock()

        def call(method: str, path: str, json: dict[str, object] | None = None) -> None:
            try:
                response = httpx.request(method, base + path, json=json, headers=auth, timeout=30)
                outcome: int | str = response.status_code
            except httpx.HTTPError as exc:
                outcome = repr(exc)
            with results_lock:
                results.append((f"{method} {path}", outcome))

        engine = create_engine(
            normalise_database_url(fresh_server_url), isolation_level="AUTOCOMMIT"
        )
        idle = httpx.Client(base_url=base, timeout=10)
        try:
            assert idle.get("/health").status_code == 200  # now an idle keep-alive connection
            # Every request below blocks on this lock, inside the app, until it is released.
            with engine.connect() as locker, recipe_table_locked(locker):
                threads = [
                    threading.Thread(target=call, args=("GET", f"/recipe/{recipe_id}"))
                    for _ in range(IN_FLIGHT_READS)
                ] + [
                    threading.Thread(
                        target=call,
                        args=("POST", "/recipe/", recipe_payload(label=f"in flight {n}")),
                    )
                    for n in range(IN_FLIGHT_WRITES)
                ]
                for thread in threads:
                    thread.start()
                waiting = wait_until(
                    lambda: waiting_requests(engine) >= IN_FLIGHT_READS + IN_FLIGHT_WRITES,
                    timeout=15,
                )
                assert waiting, (
                    f"only {waiting_requests(engine)} requests wait in the database; "
                    f"finished: {results}"
                )

                signalled_at = sigterm(server)
                refused = wait_until(
                    lambda: connection_refused(port_of(server)),
                    timeout=LOCK_HELD_AFTER_SIGTERM - 0.5,
                )
                refused_after = time.monotonic() - signalled_at
                still_running = server.process.poll() is None
                time.sleep(max(0.0, LOCK_HELD_AFTER_SIGTERM - refused_after))
                with results_lock:
                    finished_early = list(results)
            # The lock is released: the requests in flight go on.

            for thread in threads:
                thread.join(timeout=30)
            exit_code = server.process.wait(timeout=GRACEFUL_TIMEOUT + 10)
            stopped_after = time.monotonic() - signalled_at
            with pytest.raises(httpx.TransportError):
                idle.get("/health")
        finally:
            idle.close()
            engine.dispose()
        log = server.log()

    assert refused, f"new connections still accepted {refused_after:.1f}s after SIGTERM"
    assert still_running, "the server exited before its requests in flight finished"
    assert finished_early == [], f"requests finished while the lock was held: {finished_early}"
    outcomes = Counter(outcome for _, outcome in results)
    expected = Counter({200: IN_FLIGHT_READS, 201: IN_FLIGHT_WRITES})
    assert outcomes == expected, f"requests in flight at SIGTERM ended with {results}\n{log}"
    assert exit_code == 0, f"gunicorn exited {exit_code}\n{log}"
    assert LOCK_HELD_AFTER_SIGTERM <= stopped_after < GRACEFUL_TIMEOUT, (
        f"stopped {stopped_after:.1f}s after SIGTERM (graceful_timeout {GRACEFUL_TIMEOUT}s)"
    )
    assert count_labels(fresh_server_url, "in flight %") == IN_FLIGHT_WRITES


def waiting_requests(engine: Engine) -> int:
    with engine.connect() as connection:
        return len(app_connections(connection, waiting_for_lock=True))


def count_labels(database_url: str, pattern: str) -> int:
    engine = create_engine(normalise_database_url(database_url))
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    text("SELECT count(*) FROM recipe WHERE label LIKE :pattern"),
                    {"pattern": pattern},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_sigterm_under_write_load_exits_0_with_no_5xx_and_no_acknowledged_write_lost(
    fresh_server_url: str,
) -> None:
    with serving_stack(
        fresh_server_url,
        {"GUNICORN_GRACEFUL_TIMEOUT": str(GRACEFUL_TIMEOUT)},
    ) as server:
        writer = served_account(server.base_url, fresh_server_url)
        with running_traffic(
            server.base_url, threads=8, max_seconds=60, headers=writer.headers
        ) as load:
            assert load.wait_for_acknowledged(60, timeout=20), load.summary()
            signalled_at = sigterm(server)
            exit_code = server.process.wait(timeout=GRACEFUL_TIMEOUT + 10)
            stopped_after = time.monotonic() - signalled_at
            time.sleep(0.3)  # the clients now only meet refused connections
        log = server.log()
    assert exit_code == 0, f"gunicorn exited {exit_code}\n{log[-3000:]}"
    assert stopped_after < GRACEFUL_TIMEOUT, f"stopped {stopped_after:.1f}s after SIGTERM"
    server_errors = {o: n for o, n in load.outcomes.items() if o.startswith("5")}
    assert not server_errors, f"5xx during shutdown: {load.summary()}"
    assert load.outcomes["ConnectError"] > 0, f"no request was refused: {load.summary()}"
    assert not load.mismatches, load.mismatches[:5]
    lost = lost_writes(fresh_server_url, load.acknowledged)
    assert not lost, f"{len(lost)} acknowledged writes lost: {lost[:10]}"
