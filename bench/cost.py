"""What one request costs inside the app, without HTTP: `python -m bench.cost [--instructions]`.

Throughput on a shared 2-core machine varies by 10% from run to run, too much to see a change
that saves 3%. This drives the stack's ASGI app and the ceiling in-process (no server, no
sockets, one request at a time) against a throwaway PostgreSQL database and prints the cost of
one GET /recipe/{id} and one POST /recipe/, the stack with its request logs and metrics on as the
image runs it (`--observability off` for neither). With `--instructions` the cost is counted by
valgrind (callgrind): the same code gives the same count to within a fraction of a percent.
Profile first (py-spy on a worker under `scripts/bench.sh`), then check each change here.
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from bench.databases import DEFAULT_ADMIN_URL, throwaway_database
from bench.run import run_prestart
from bench.servers import (
    METRICS_DIRECTORY,
    OBSERVABILITY_OFF,
    OBSERVABILITY_ON,
    PROJECT_ROOT,
    clean_env,
)

Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]

WARM_UP = 200
SHORT, LONG = 100, 1100  # requests in the two counted runs; their difference is what one costs
POST_BODY = json.dumps(
    {"label": "Cost stew", "source": "Bench", "url": "https://example.com/r/1"}
).encode()


def http_scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> Message:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }


async def request(app: ASGIApp, scenario: str, number: int, token: str) -> None:
    if scenario == "get":
        scope = http_scope("GET", f"/recipe/{1 + number % 3}", [])  # the seed's three
        body = b""
    else:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(POST_BODY)).encode()),
            (b"authorization", f"Bearer {token}".encode()),
        ]
        scope, body = http_scope("POST", "/recipe/", headers), POST_BODY
    received = False
    statuses: list[int] = []

    async def receive() -> Message:
        nonlocal received
        if received:  # a server would now wait for the client to disconnect
            await asyncio.Event().wait()
        received = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    if not statuses or statuses[0] >= 300:
        raise RuntimeError(f"{scope['method']} {scope['path']} answered {statuses}")


async def lifespan(app: ASGIApp, events: asyncio.Queue[Message], started: asyncio.Event) -> None:
    async def send(message: Message) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()
        elif message["type"].endswith(".failed"):
            raise RuntimeError(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, events.get, send)


async def drive(app: ASGIApp, scenario: str, requests: int, token: str) -> float:
    """Start the app, warm it up, then CPU seconds for `requests` requests in a row."""
    events: asyncio.Queue[Message] = asyncio.Queue()
    await events.put({"type": "lifespan.startup"})
    started = asyncio.Event()
    running = asyncio.create_task(lifespan(app, events, started))
    await asyncio.wait_for(started.wait(), timeout=30)
    for number in range(WARM_UP):
        await request(app, scenario, number, token)
    cpu_before = time.process_time()
    for number in range(requests):
        await request(app, scenario, number, token)
    spent = time.process_time() - cpu_before
    await events.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(running, timeout=10)
    return spent


def load_app(which: str) -> tuple[ASGIApp, str]:
    """The app, and a bearer token of the seed's superuser (user 1) for its writes; the
    ceiling checks none."""
    if which == "ceiling":
        from bench.ceiling import app as ceiling

        return ceiling, ""
    from app.main import app as stack

    return stack, stack.state.tokens.issue(1)


def child(which: str, scenario: str, requests: int) -> None:
    """The measured process: prints CPU microseconds per request."""
    import uvloop

    app, token = load_app(which)
    spent = uvloop.run(drive(app, scenario, requests, token))
    print(f"cpu_us_per_request={spent / requests * 1e6:.1f}")


def run_child(
    database_url: str,
    which: str,
    scenario: str,
    requests: int,
    valgrind: bool,
    observability: str = "on",
) -> tuple[float, int | None]:
    command = [sys.executable, "-m", "bench.cost", "--child", which, scenario, str(requests)]
    if valgrind:
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command]
    settings = {"LOG_LEVEL": "warning"}
    if which == "stack":
        settings = OBSERVABILITY_ON if observability == "on" else OBSERVABILITY_OFF
    # The request lines go to the captured stdout; the metrics to files, as in a worker.
    with tempfile.TemporaryDirectory(prefix="cost-metrics-") as metrics_dir:
        completed = subprocess.run(
            command,
            cwd=PROJECT_ROOT,
            env=clean_env(
                DATABASE_URL=database_url, **settings, **{METRICS_DIRECTORY: metrics_dir}
            ),
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    cpu = re.search(r"cpu_us_per_request=([\d.]+)", completed.stdout)
    if completed.returncode != 0 or cpu is None:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stdout}{completed.stderr}")
    instructions = re.search(r"Collected : (\d+)", completed.stderr)
    return float(cpu.group(1)), int(instructions.group(1)) if instructions else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instructions", action="store_true", help="count with valgrind")
    parser.add_argument("--scenario", choices=["get", "post"], help="only this scenario")
    parser.add_argument("--app", choices=["stack", "ceiling"], help="only this app")
    parser.add_argument(
        "--observability",
        choices=["on", "off"],
        default="on",
        help="the stack's request logs and metrics: on as the image runs it (the default), or off",
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        which, scenario, requests = args.child
        child(which, scenario, int(requests))
        return
    if args.instructions and shutil.which("valgrind") is None:
        sys.exit("--instructions needs valgrind (Debian package valgrind)")

    admin_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_ADMIN_URL)
    with throwaway_database(admin_url, prefix="bench_cost") as database_url:
        run_prestart(database_url)
        print(f"{'scenario':<18} {'app':<8} {'cpu us/request':>14} {'instructions/request':>21}")
        for scenario, label in (("get", "GET /recipe/{id}"), ("post", "POST /recipe/")):
            if args.scenario not in (None, scenario):
                continue
            for which in ("stack", "ceiling"):
                if args.app not in (None, which):
                    continue
                options = (args.instructions, args.observability)
                _, short = run_child(database_url, which, scenario, SHORT, *options)
                cpu_long, long = run_child(database_url, which, scenario, LONG, *options)
                per_request = f"{(long - short) / (LONG - SHORT):,.0f}" if long and short else "-"
                print(f"{label:<18} {which:<8} {cpu_long:>14.0f} {per_request:>21}", flush=True)


if __name__ == "__main__":
    main()
