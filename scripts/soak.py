"""Soak test driver for `scripts/soak.sh`: mixed traffic against the gunicorn stack on PostgreSQL.

1. creates a fresh database next to SOAK_DATABASE_URL's (dropped again at the end),
2. runs scripts/prestart.sh on it and starts scripts/start.sh with 2 workers on a free
   127.0.0.1 port,
3. drives 70% GET /recipe/{existing id}, 20% search, 10% POST with SOAK_CONCURRENCY requests in
   flight for the given number of seconds, then stops the server with SIGTERM,
4. looks up every recipe that got a 201 directly in the database,

and prints one line on stdout:
`soak: 300s requests=N errors={...} 5xx=N acknowledged_writes=N found=N lost=N`.
Exits non-zero on any 5xx, any lost write or any other error (an unexpected status or a
failed connection); diagnostics go to stderr.
"""

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import bindparam, create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SEARCH_KEYWORDS = ["chicken", "curry", "soak", "tofu", "paprikash", "vesuvio", "100%", "a_b"]
REQUEST_TIMEOUT = 30.0
SERVER_READY_TIMEOUT = 60.0
SHUTDOWN_TIMEOUT = 60.0


def log(message: str) -> None:
    print(f"soak: {message}", file=sys.stderr, flush=True)


def psycopg2_url(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url.removeprefix(prefix)
    return url


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new, empty database on the server of `admin_url`, dropped on the way out."""
    name = f"recipes_soak_{uuid.uuid4().hex[:12]}"
    admin = create_engine(psycopg2_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(psycopg2_url(admin_url)).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def app_env(database_url: str, port: int) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "POSTGRES_", "SOAK_"))
    }
    env.update(
        DATABASE_URL=database_url,
        HOST="127.0.0.1",
        PORT=str(port),
        WEB_CONCURRENCY="2",
        LOG_LEVEL="warning",
    )
    return env


@contextmanager
def running_server(env: dict[str, str], log_file: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log_file.open("wb") as output:
        process = subprocess.Popen(
            [str(ROOT / "scripts" / "start.sh")],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait_until_ready(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SERVER_READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        try:
            if httpx.get(base_url + "/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready within {SERVER_READY_TIMEOUT:.0f}s")


@dataclass
class Traffic:
    """What the clients saw; one instance shared by all client tasks (one event loop)."""

    recipe_ids: list[int]
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    requests: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    server_errors: int = 0
    acknowledged: dict[int, str] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(20240604))

    def record_status(self, status: int, expected: int) -> None:
        if status >= 500:
            self.server_errors += 1
        if status != expected:
            self.errors[str(status)] += 1


async def one_request(client: httpx.AsyncClient, traffic: Traffic) -> None:
    roll = traffic.rng.random()
    traffic.requests += 1
    try:
        if roll < 0.7:
            recipe_id = traffic.rng.choice(traffic.recipe_ids)
            response = await client.get(f"/recipe/{recipe_id}")
            traffic.record_status(response.status_code, 200)
        elif roll < 0.9:
            keyword = traffic.rng.choice(SEARCH_KEYWORDS)
            max_results = traffic.rng.randint(1, 100)
            response = await client.get(
                "/search/", params={"keyword": keyword, "max_results": max_results}
            )
            traffic.record_status(response.status_code, 200)
        else:
            label = f"soak {traffic.run_id} #{traffic.requests}"
            payload = {"label": label, "source": "soak", "url": None, "submitter_id": 1}
            response = await client.post("/recipe/", json=payload)
            traffic.record_status(response.status_code, 201)
            if response.status_code == 201:
                body = response.json()
                traffic.acknowledged[body["id"]] = label
                traffic.recipe_ids.append(body["id"])
                if body["label"] != label:
                    traffic.errors["label_mismatch"] += 1
    except httpx.HTTPError as exc:
        traffic.errors[exc.__class__.__name__] += 1


async def drive(base_url: str, seconds: int, concurrency: int, traffic: Traffic) -> None:
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=REQUEST_TIMEOUT, limits=limits
    ) as client:

        async def client_loop() -> None:
            while time.monotonic() < deadline:
                await one_request(client, traffic)

        # The loops stop at the deadline; the timeout is a backstop should a request hang.
        await asyncio.wait_for(
            asyncio.gather(*(client_loop() for _ in range(concurrency))),
            timeout=seconds + REQUEST_TIMEOUT + 10,
        )


def existing_recipe_ids(base_url: str) -> list[int]:
    response = httpx.get(base_url + "/search/", params={"max_results": 100}, timeout=10)
    response.raise_for_status()
    ids = [recipe["id"] for recipe in response.json()["results"]]
    if not ids:
        raise RuntimeError("the seeded database has no recipes to read")
    return ids


def stored_labels(database_url: str, ids: list[int]) -> dict[int, str]:
    engine = create_engine(database_url)
    found: dict[int, str] = {}
    try:
        with engine.connect() as connection:
            query = text("SELECT id, label FROM recipe WHERE id IN :ids").bindparams(
                bindparam("ids", expanding=True)
            )
            for start in range(0, len(ids), 5000):
                rows = connection.execute(query, {"ids": ids[start : start + 5000]})
                found.update({row.id: row.label for row in rows})
    finally:
        engine.dispose()
    return found


def stop_server(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=SHUTDOWN_TIMEOUT)


def soak(seconds: int, admin_url: str, concurrency: int) -> int:
    with fresh_database(admin_url) as database_url, tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        env = app_env(database_url, port)
        prestart = subprocess.run(
            [str(ROOT / "scripts" / "prestart.sh")],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if prestart.returncode != 0:
            log(f"prestart failed ({prestart.returncode}):\n{prestart.stderr[-4000:]}")
            return 2
        server_log = Path(tmp) / "server.log"
        with running_server(env, server_log) as process:
            try:
                wait_until_ready(base_url, process)
                traffic = Traffic(recipe_ids=existing_recipe_ids(base_url))
                asyncio.run(drive(base_url, seconds, concurrency, traffic))
                exit_code = stop_server(process)
            except Exception:
                log("server log tail:\n" + server_log.read_text(errors="replace")[-4000:])
                raise
        if exit_code != 0:
            traffic.errors[f"server_exit_{exit_code}"] += 1
        stored = stored_labels(database_url, sorted(traffic.acknowledged))
        found = sum(1 for i, label in traffic.acknowledged.items() if stored.get(i) == label)
        lost = len(traffic.acknowledged) - found
        errors = dict(sorted(traffic.errors.items()))
        print(
            f"soak: {seconds}s requests={traffic.requests} errors={errors}"
            f" 5xx={traffic.server_errors} acknowledged_writes={len(traffic.acknowledged)}"
            f" found={found} lost={lost}",
            flush=True,
        )
        if traffic.server_errors or lost or errors:
            log("server log tail:\n" + server_log.read_text(errors="replace")[-4000:])
            return 1
        return 0


def main() -> int:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    if seconds < 1:
        log("DURATION_SECONDS must be at least 1")
        return 2
    admin_url = os.environ.get("SOAK_DATABASE_URL", DEFAULT_ADMIN_URL)
    concurrency = int(os.environ.get("SOAK_CONCURRENCY", "16"))
    return soak(seconds, admin_url, concurrency)


if __name__ == "__main__":
    sys.exit(main())
