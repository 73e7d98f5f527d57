"""The benchmark, end to end; `scripts/bench.sh [--quick] [--large]` runs it.

1. A fresh PostgreSQL database: prestart timed on it empty, then up to date (median of rounds).
2. The stack (`scripts/start.sh`) and the ceiling (`bench/ceiling.py`) under the same gunicorn
   settings, 2 workers each; recipes bulk-loaded in steps, search latency taken at each step.
3. Every scenario driven against both, interleaved (stack, ceiling, stack, ceiling, ...).
4. The GET and POST scenarios again on SQLite.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg2

from bench import data, report
from bench.load import RunResult, Scenario, run_load, wrk_available
from bench.servers import (
    CEILING_READY,
    PROJECT_ROOT,
    STACK_READY,
    Server,
    clean_env,
    launch_ceiling,
    launch_stack,
    wait_ready,
)

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CONNECTIONS = 32

GET_BY_ID = Scenario("GET /recipe/{id}", "GET", "/recipe/", "get_by_id")
SEARCH = Scenario(
    "GET /search/", "GET", f"/search/?keyword={data.COMMON_KEYWORD}&max_results=10", "static"
)
RARE_SEARCH = Scenario(
    "GET /search/ (rare)", "GET", f"/search/?keyword={data.RARE_KEYWORD}&max_results=10", "static"
)
POST = Scenario("POST /recipe/", "POST", "/recipe/", "post")
HOME = Scenario("GET /", "GET", "/", "static")
SCENARIOS = (GET_BY_ID, SEARCH, POST, HOME)
SQLITE_SCENARIOS = (GET_BY_ID, POST)
SCALE_STEPS = (10_000, 100_000, 1_000_000)


@dataclass(frozen=True)
class Plan:
    rows: int
    seconds: int  # per round
    warmup_seconds: float  # under a second: a burst from the Python generator (wrk counts whole s)
    rounds: int
    scale_seconds: int  # per search latency sample, at one connection
    use_wrk: bool

    @classmethod
    def from_args(cls, args: argparse.Namespace, use_wrk: bool) -> "Plan":
        if args.quick:
            plan = cls(2_000, 1, 0.3, 3, 1, use_wrk)
        elif args.large:
            plan = cls(1_000_000, 5, 2, 5, 2, use_wrk)
        else:
            plan = cls(100_000, 5, 2, 5, 2, use_wrk)
        overrides = {
            key: value
            for key, value in {
                "rows": args.rows,
                "seconds": args.seconds,
                "rounds": args.rounds,
            }.items()
            if value is not None
        }
        return cls(**{**asdict(plan), **overrides})

    def scale_steps(self) -> list[int]:
        return [step for step in SCALE_STEPS if step <= self.rows] or [self.rows]


def git_revision() -> str:
    """The checkout's revision for the results file; "unknown" outside a git checkout or without
    git (the test image has neither)."""
    try:
        completed = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return "unknown"
    return completed.stdout.strip() or "unknown"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def libpq_url(url: str) -> str:
    """A URL psycopg2 accepts: SQLAlchemy's `postgresql+psycopg2://` scheme spelt plainly."""
    return "postgresql://" + url.split("://", 1)[1]


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new database `bench_<random>` next to the one `admin_url` names, dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(libpq_url(admin_url))
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield urlsplit(libpq_url(admin_url))._replace(path=f"/{name}").geturl()
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def run_prestart(database_url: str) -> float:
    """Wall time of `scripts/prestart.sh`, the way an operator runs it."""
    started = time.perf_counter()
    completed = subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "prestart.sh")],
        cwd=PROJECT_ROOT,
        env=clean_env(DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"prestart failed:\n{completed.stdout}{completed.stderr}")
    return elapsed


def max_recipe_id(database_url: str) -> int:
    connection = psycopg2.connect(database_url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT max(id) FROM recipe")
            row = cursor.fetchone()
    finally:
        connection.close()
    return int(row[0])


def drive(
    server: Server, scenario: Scenario, plan: Plan, seconds: float, max_id: int, connections: int
) -> RunResult:
    return run_load(
        server.base_url,
        scenario,
        seconds=seconds,
        connections=connections,
        max_id=max_id,
        use_wrk=plan.use_wrk and seconds >= 1,
    )


def interleaved(
    servers: list[Server], scenario: Scenario, plan: Plan, max_id: int
) -> dict[str, list[RunResult]]:
    """A warm-up each, then rounds of A B A B ... so that drift hits both alike."""
    for server in servers:
        drive(server, scenario, plan, plan.warmup_seconds, max_id, CONNECTIONS)
    runs: dict[str, list[RunResult]] = {server.name: [] for server in servers}
    for _ in range(plan.rounds):
        for server in servers:
            runs[server.name].append(
                drive(server, scenario, plan, plan.seconds, max_id, CONNECTIONS)
            )
    return runs


def search_latency(server: Server, scenario: Scenario, plan: Plan) -> float:
    """p50 at one connection: the cost of one search, not the queue in front of it."""
    return drive(server, scenario, plan, plan.scale_seconds, 1, 1).p50_ms


def benchmark_postgres(admin_url: str, plan: Plan, workdir: Path, results: dict[str, Any]) -> None:
    with fresh_database(admin_url) as database_url, ExitStack() as servers:
        log(f"database {urlsplit(database_url).path.lstrip('/')}: prestart on it empty")
        empty = run_prestart(database_url)
        # Rounds like every other figure: one run of three short processes swings with whatever
        # else the machine does in that second.
        up_to_date = [run_prestart(database_url) for _ in range(plan.rounds)]
        results["prestart"] = {
            "empty_s": empty,
            "up_to_date_s": statistics.median(up_to_date),
            "up_to_date_runs_s": up_to_date,
        }

        stack = launch_stack(database_url, workdir / "stack.log")
        servers.callback(stack.stop)
        ceiling = launch_ceiling(database_url, workdir / "ceiling.log")
        servers.callback(ceiling.stop)
        wait_ready(stack, STACK_READY)
        wait_ready(ceiling, CEILING_READY)

        loaded = 0
        scale = []
        for step in plan.scale_steps():
            log(f"loading recipes up to {step:,}")
            started = time.perf_counter()
            data.load_postgres(database_url, step - loaded, seed=loaded)
            log(f"  {step - loaded:,} rows in {time.perf_counter() - started:.1f}s")
            loaded = step
            scale.append(
                {
                    "rows": step,
                    "stack_p50_ms": search_latency(stack, SEARCH, plan),
                    "stack_rare_p50_ms": search_latency(stack, RARE_SEARCH, plan),
                    "ceiling_p50_ms": search_latency(ceiling, SEARCH, plan),
                }
            )
        results["search_scale"] = scale

        max_id = max_recipe_id(database_url)
        scenarios = []
        for scenario in SCENARIOS:
            log(f"{scenario.name}: {plan.rounds} rounds of {plan.seconds}s each, stack and ceiling")
            runs = interleaved([stack, ceiling], scenario, plan, max_id)
            result = report.ScenarioResult(scenario.name, runs["stack"], runs["ceiling"])
            scenarios.append(result.summary())
        results["scenarios"] = scenarios
        results["stack_worker_rss_mb"] = stack.worker_rss_mb()


def benchmark_sqlite(plan: Plan, workdir: Path, results: dict[str, Any]) -> None:
    path = workdir / "bench.db"
    database_url = f"sqlite:///{path}"
    log("SQLite: prestart, load, stack")
    run_prestart(database_url)
    data.load_sqlite(str(path), plan.rows, seed=0)
    stack = launch_stack(database_url, workdir / "stack-sqlite.log")
    try:
        wait_ready(stack, STACK_READY)
        rows = []
        for scenario in SQLITE_SCENARIOS:
            log(f"SQLite {scenario.name}: {plan.rounds} rounds of {plan.seconds}s")
            runs = interleaved([stack], scenario, plan, plan.rows + 3)["stack"]
            summary = report.ScenarioResult(scenario.name, runs).summary()
            rows.append(
                {
                    "scenario": scenario.name,
                    "rps": summary["stack_rps"],
                    "p50_ms": summary["stack_p50_ms"],
                    "p99_ms": summary["stack_p99_ms"],
                    "p99_ms_worst_round": max(run.p99_ms for run in runs),
                    "non_2xx": summary["non_2xx"],
                    "rounds": summary["stack_rounds"],
                }
            )
    finally:
        stack.stop()
    locked = stack.log().count("database is locked")
    for row in rows:
        # The log is shared by both scenarios; only POSTs write, so they own the count.
        row["locked_in_log"] = locked if row["scenario"] == POST.name else 0
    results["sqlite"] = rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench.sh", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="2,000 rows, 1 s rounds (a smoke run)")
    size.add_argument("--large", action="store_true", help="1,000,000 rows")
    parser.add_argument("--rows", type=int, help="recipes to load (overrides the size)")
    parser.add_argument("--seconds", type=int, help="seconds per round")
    parser.add_argument("--rounds", type=int, help="rounds per scenario and server (>= 3)")
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    use_wrk = wrk_available()
    plan = Plan.from_args(args, use_wrk)
    admin_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    if not use_wrk:
        print(
            "wrk not found: falling back to the Python load generator (bench/loadgen.py), which "
            "competes with the servers for the CPU; figures are lower than wrk's.",
            flush=True,
        )
    results: dict[str, Any] = {
        "plan": asdict(plan),
        "connections": CONNECTIONS,
        "load_generator": "wrk" if use_wrk else "bench/loadgen.py",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "revision": git_revision(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "load_average_before": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        benchmark_postgres(admin_url, plan, Path(workdir), results)
        if not args.skip_sqlite:
            benchmark_sqlite(plan, Path(workdir), results)

    results["load_average_after"] = os.getloadavg()[0]
    rss = max(results["stack_worker_rss_mb"], default=0.0)
    print(
        f"\nPostgreSQL, {plan.rows:,} recipes, {CONNECTIONS} connections, median of "
        f"{plan.rounds} rounds of {plan.seconds}s ({results['load_generator']}, "
        f"{os.cpu_count()} CPUs)\n"
    )
    print(report.main_table(results["scenarios"]))
    print("\nSearch latency by table size (one connection)\n")
    print(report.scale_table(results["search_scale"], results["prestart"], rss))
    if "sqlite" in results:
        print(f"\nSQLite, {plan.rows:,} recipes, {CONNECTIONS} connections\n")
        print(report.sqlite_table(results["sqlite"]))
    print(
        f"\nload average (1 min) before {results['load_average_before']:.1f}, after "
        f"{results['load_average_after']:.1f}: anything else running skews the figures"
    )
    print(f"results: {report.write_json(results).relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
