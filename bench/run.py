"""The benchmark, end to end; `scripts/bench.sh [--quick] [--large] [--database mariadb]` runs it.

1. A fresh PostgreSQL (or MariaDB) database: prestart timed on it empty, then up to date
   (median of rounds).
2. The stack (`scripts/start.sh`, request logs and metrics on, as the image runs it) and the
   ceiling (`bench/ceiling.py`, the least work each request needs) under the same gunicorn
   settings, 2 workers each; recipes bulk-loaded in steps, search latency taken at each step.
3. Every scenario driven against both, interleaved (the order rotating from round to round);
   GET /recipe/{id} also against the same stack with request logs and metrics off, in the
   same rounds.
4. The round trips each sends the database per request, counted on the wire.
5. The plan the database chose for the search, at the largest table size.
6. The GET and POST scenarios again on SQLite (the default run only).
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app.core.config import normalise_database_url
from app.crud.recipe import RECIPES_MATCHING, escape_like
from bench import data, report
from bench.databases import DEFAULT_ADMIN_URL, DEFAULT_MYSQL_ADMIN_URL, throwaway_database
from bench.load import RunResult, Scenario, run_load, wrk_available
from bench.roundtrips import RoundTripCounter
from bench.servers import (
    CEILING_READY,
    OBSERVABILITY_OFF,
    OBSERVABILITY_ON,
    PROJECT_ROOT,
    STACK_READY,
    Server,
    access_token,
    clean_env,
    launch_ceiling,
    launch_stack,
    run_command,
    run_script,
)

CONNECTIONS = 32
# The seed's superuser, given a password so that the benchmark can log in and write.
SUPERUSER = "admin@recipeapi.com"
SUPERUSER_PASSWORD = "benchmark superuser password"

GET_BY_ID = Scenario("GET /recipe/{id}", "GET", "/recipe/", "get_by_id")
# The stack as the image runs it has request logs and metrics on; this one has both off.
QUIET_STACK = "stack, logs and metrics off"
QUIET_ROW = "GET /recipe/{id}, logs+metrics off"
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
# --database: the server's name in the tables, and where its admin URL comes from.
DATABASES = {
    "postgresql": ("PostgreSQL", "BENCH_DATABASE_URL", DEFAULT_ADMIN_URL),
    "mariadb": ("MariaDB", "BENCH_MYSQL_URL", DEFAULT_MYSQL_ADMIN_URL),
}


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
    """The checkout's revision, for the results file; "unknown" outside a git checkout (the
    test image has neither git nor the history)."""
    try:
        completed = run_command(["git", "describe", "--always", "--dirty"])
    except OSError:
        return "unknown"
    return completed.stdout.strip() or "unknown"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_prestart(database_url: str) -> float:
    """Wall time of `scripts/prestart.sh`, the way an operator runs it."""
    env = clean_env(DATABASE_URL=database_url, FIRST_SUPERUSER_PASSWORD=SUPERUSER_PASSWORD)
    started = time.perf_counter()
    completed = run_script("prestart.sh", env, timeout=300)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"prestart failed:\n{completed.stdout}{completed.stderr}")
    return elapsed


def max_recipe_id(database_url: str) -> int:
    engine = create_engine(normalise_database_url(database_url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT max(id) FROM recipe")).scalar_one())
    finally:
        engine.dispose()


def search_plan(database_url: str, keyword: str) -> list[str]:
    """EXPLAIN of the stack's own search statement, as its driver sends it, one line per row
    of the answer (MariaDB's rows as `column=value` pairs)."""
    engine = create_engine(normalise_database_url(database_url), poolclass=NullPool)
    compiled = RECIPES_MATCHING.compile(dialect=engine.dialect)
    params = compiled.construct_params({"pattern": f"%{escape_like(keyword)}%", "limit": 10})
    args: Any = params
    if compiled.positiontup is not None:
        args = tuple(params[name] for name in compiled.positiontup)
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(f"EXPLAIN {compiled.string}", args)
        names = [column[0] for column in cursor.description]
        rows = cursor.fetchall()
    finally:
        connection.close()
        engine.dispose()
    if names == ["QUERY PLAN"]:
        return [row[0] for row in rows]
    return [" ".join(f"{n}={v}" for n, v in zip(names, row, strict=True)) for row in rows]


def drive(
    server: Server, scenario: Scenario, plan: Plan, seconds: float, max_id: int, connections: int
) -> RunResult:
    return run_load(
        server.base_url,
        scenario,
        seconds=seconds,
        connections=connections,
        max_id=max_id,
        token=server.token,
        use_wrk=plan.use_wrk and seconds >= 1,
    )


def interleaved(
    servers: list[Server], scenario: Scenario, plan: Plan, max_id: int
) -> dict[str, list[RunResult]]:
    """A warm-up each, then rounds of A B C, B C A, C A B ... so that drift hits all alike and
    none always runs right after another (the one after the ceiling's burst of connections ran
    measurably slower)."""
    for server in servers:
        drive(server, scenario, plan, plan.warmup_seconds, max_id, CONNECTIONS)
    runs: dict[str, list[RunResult]] = {server.name: [] for server in servers}
    for round_number in range(plan.rounds):
        shift = round_number % len(servers)
        for server in servers[shift:] + servers[:shift]:
            runs[server.name].append(
                drive(server, scenario, plan, plan.seconds, max_id, CONNECTIONS)
            )
    return runs


def search_latency(server: Server, scenario: Scenario, plan: Plan) -> float:
    """p50 at one connection: the cost of one search, not the queue in front of it."""
    return drive(server, scenario, plan, plan.scale_seconds, 1, 1).p50_ms


def benchmark_server(admin_url: str, plan: Plan, workdir: Path, results: dict[str, Any]) -> None:
    """Everything but SQLite, on the server of `admin_url` (PostgreSQL or MariaDB)."""
    with throwaway_database(admin_url, prefix="bench") as database_url, ExitStack() as servers:
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

        stack = launch_stack(database_url, workdir / "stack.log", OBSERVABILITY_ON)
        servers.callback(stack.stop)
        # The same code with request logs and metrics off, for GET /recipe/{id}'s comparison.
        quiet = launch_stack(
            database_url, workdir / "stack-quiet.log", OBSERVABILITY_OFF, name=QUIET_STACK
        )
        servers.callback(quiet.stop)
        ceiling = launch_ceiling(database_url, workdir / "ceiling.log")
        servers.callback(ceiling.stop)
        stack.wait_ready(STACK_READY)
        stack.token = access_token(stack.base_url, SUPERUSER, SUPERUSER_PASSWORD)
        quiet.wait_ready(STACK_READY)
        ceiling.wait_ready(CEILING_READY)

        loaded = 0
        scale = []
        for step in plan.scale_steps():
            log(f"loading recipes up to {step:,}")
            started = time.perf_counter()
            data.load(database_url, step - loaded, seed=loaded)
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
        results["search_plan"] = search_plan(database_url, data.COMMON_KEYWORD)

        max_id = max_recipe_id(database_url)
        scenarios = []
        for scenario in SCENARIOS:
            compared = [stack, quiet, ceiling] if scenario is GET_BY_ID else [stack, ceiling]
            names = ", ".join(server.name for server in compared)
            log(f"{scenario.name}: {plan.rounds} rounds of {plan.seconds}s each, {names}")
            runs = interleaved(compared, scenario, plan, max_id)
            result = report.ScenarioResult(scenario.name, runs["stack"], runs["ceiling"])
            scenarios.append(result.summary())
            if scenario is GET_BY_ID:
                off = report.ScenarioResult(QUIET_ROW, runs[QUIET_STACK], runs["ceiling"])
                scenarios.append(off.summary())
                results["observability"] = report.observability_cost(scenarios[-2], scenarios[-1])
        results["scenarios"] = scenarios
        results["stack_worker_rss_mb"] = stack.worker_rss_mb()
    with throwaway_database(admin_url, prefix="bench_trips") as database_url:
        log("round trips per request: stack and ceiling through a counting proxy")
        run_prestart(database_url)
        results["round_trips"] = count_round_trips(database_url, workdir)


def count_round_trips(database_url: str, workdir: Path, requests: int = 50) -> dict[str, Any]:
    """Requests the stack and the ceiling send the database per HTTP request of each scenario,
    counted on the wire (bench/roundtrips.py), after a warm-up that fills their pools."""
    counter = RoundTripCounter(database_url)
    counts: dict[str, dict[str, float]] = {scenario.name: {} for scenario in SCENARIOS}
    try:
        for server in (
            launch_stack(counter.url, workdir / "stack-trips.log"),
            launch_ceiling(counter.url, workdir / "ceiling-trips.log"),
        ):
            try:
                server.wait_ready(CEILING_READY)
                headers = {}
                if server.name == "stack":
                    token = access_token(server.base_url, SUPERUSER, SUPERUSER_PASSWORD)
                    headers["Authorization"] = f"Bearer {token}"
                with httpx.Client(base_url=server.base_url, headers=headers) as client:
                    for scenario in SCENARIOS:
                        for _ in range(20):
                            send_once(client, scenario)
                        counter.reset()
                        for _ in range(requests):
                            send_once(client, scenario)
                        counts[scenario.name][server.name] = counter.count / requests
            finally:
                server.stop()
    finally:
        counter.close()
    return counts


def send_once(client: httpx.Client, scenario: Scenario) -> None:
    """One request of the scenario, the way the load generator sends it."""
    if scenario.kind == "post":
        body = {"label": "Round trip stew", "source": "bench", "url": None}
        response = client.post(scenario.path, json=body)
    elif scenario.kind == "get_by_id":
        response = client.get(f"{scenario.path}1")
    else:
        response = client.get(scenario.path)
    if response.status_code >= 300:
        raise RuntimeError(f"{scenario.name} answered {response.status_code}: {response.text}")


def benchmark_sqlite(plan: Plan, workdir: Path, results: dict[str, Any]) -> None:
    path = workdir / "bench.db"
    database_url = f"sqlite:///{path}"
    log("SQLite: prestart, load, stack")
    run_prestart(database_url)
    data.load_sqlite(str(path), plan.rows, seed=0)
    stack = launch_stack(database_url, workdir / "stack-sqlite.log", OBSERVABILITY_ON)
    try:
        stack.wait_ready(STACK_READY)
        stack.token = access_token(stack.base_url, SUPERUSER, SUPERUSER_PASSWORD)
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
    parser.add_argument(
        "--database",
        choices=sorted(DATABASES),
        default="postgresql",
        help="the server to run on (default postgresql; its admin URL from BENCH_DATABASE_URL, "
        "or BENCH_MYSQL_URL for mariadb); the SQLite section belongs to the PostgreSQL run",
    )
    parser.add_argument("--skip-sqlite", action="store_true", help="the server only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    use_wrk = wrk_available()
    plan = Plan.from_args(args, use_wrk)
    server_name, url_variable, default_url = DATABASES[args.database]
    admin_url = os.environ.get(url_variable, default_url)
    if not use_wrk:
        print(
            "wrk not found: falling back to the Python load generator (bench/loadgen.py), which "
            "competes with the servers for the CPU; figures are lower than wrk's.",
            flush=True,
        )
    results: dict[str, Any] = {
        "database": args.database,
        "plan": asdict(plan),
        "connections": CONNECTIONS,
        "load_generator": "wrk" if use_wrk else "bench/loadgen.py",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "revision": git_revision(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "load_average_before": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        benchmark_server(admin_url, plan, Path(workdir), results)
        if args.database == "postgresql" and not args.skip_sqlite:
            benchmark_sqlite(plan, Path(workdir), results)

    results["load_average_after"] = os.getloadavg()[0]
    rss = max(results["stack_worker_rss_mb"], default=0.0)
    print(
        f"\n{server_name}, {plan.rows:,} recipes, {CONNECTIONS} connections, median of "
        f"{plan.rounds} rounds of {plan.seconds}s ({results['load_generator']}, "
        f"{os.cpu_count()} CPUs)\n"
    )
    print(report.main_table(results["scenarios"]))
    print(f"\n{report.observability_line(results['observability'])}")
    print("\nRound trips to the database per request (counted on the wire)\n")
    print(report.round_trip_table(results["round_trips"]))
    print("\nSearch latency by table size (one connection)\n")
    print(report.scale_table(results["search_scale"], results["prestart"], rss))
    print(f"\nSearch plan at {plan.rows:,} rows (EXPLAIN of the stack's statement)\n")
    print("\n".join(results["search_plan"]))
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
