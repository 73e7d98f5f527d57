"""The benchmark tools still run end to end and print their tables (not the figures)."""

import re
import subprocess

import pytest

from bench.servers import PROJECT_ROOT, SCRIPTS, VENV_BIN, clean_env

SCENARIOS = ("GET /recipe/{id}", "GET /search/", "POST /recipe/", "GET /")
HEADERS = (
    "scenario  stack rps  ceiling rps  ratio",
    "scenario  stack  ceiling",
    "rows  search p50 ms",
    "prestart",
    "RSS of one stack worker",
    "Search plan at",
)


def run_tool(command: list[str], admin_url: str) -> tuple[str, str]:
    """Run a benchmark tool from the project root; its stdout, and what to show on failure."""
    result = subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        env=clean_env(BENCH_DATABASE_URL=admin_url, BENCH_MYSQL_URL=admin_url),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr[-3000:]}"
    assert result.returncode == 0, output
    return result.stdout, output


def check_tables(stdout: str, output: str, headers: tuple[str, ...]) -> list[str]:
    """Every header printed, and a row per scenario; the rows of the scenario tables."""
    lines = [" ".join(line.split()) for line in stdout.splitlines()]
    for header in headers:
        assert any(line.startswith(" ".join(header.split())) for line in lines), (header, output)
    table_rows = [line for line in lines if line.startswith(SCENARIOS)]
    for scenario in SCENARIOS:
        assert any(line.startswith(f"{scenario} ") for line in table_rows), (scenario, output)
    # GET /recipe/{id} also on the same stack with request logs and metrics off, in the same
    # rounds, and the difference said in one line.
    assert any(line.startswith("GET /recipe/{id}, logs+metrics off ") for line in lines), output
    compared = [line for line in lines if "with request logs and metrics on" in line]
    assert len(compared) == 1, output
    assert re.search(r"rps with both off, in the same rounds: [+-]\d+\.\d%", compared[0]), output
    return table_rows


@pytest.mark.slow
def test_quick_benchmark_completes_and_prints_every_table(postgres_admin_url: str) -> None:
    stdout, output = run_tool([str(SCRIPTS / "bench.sh"), "--quick"], postgres_admin_url)

    headers = ("PostgreSQL, 2,000 recipes", *HEADERS, "sqlite scenario")
    table_rows = check_tables(stdout, output, headers)
    sqlite_rows = [line for line in table_rows if line.startswith(("GET /recipe/{id} ", "POST"))]
    assert len(sqlite_rows) >= 4, ("the SQLite table lacks its GET and POST rows", output)
    assert " on recipe" in stdout, ("no PostgreSQL plan", output)


@pytest.mark.slow
def test_quick_benchmark_on_mariadb_prints_its_tables(mysql_admin_url: str) -> None:
    command = [str(SCRIPTS / "bench.sh"), "--quick", "--database", "mariadb"]
    stdout, output = run_tool(command, mysql_admin_url)

    check_tables(stdout, output, ("MariaDB, 2,000 recipes", *HEADERS))
    assert "sqlite scenario" not in stdout, output
    assert "table=recipe" in stdout, ("no MariaDB plan", output)


@pytest.mark.slow
def test_cost_per_request_runs_for_the_stack_and_the_ceiling(postgres_admin_url: str) -> None:
    """`python -m bench.cost` (without valgrind): a row per scenario and app, CPU above zero."""
    stdout, output = run_tool([str(VENV_BIN / "python"), "-m", "bench.cost"], postgres_admin_url)

    rows = [line.split() for line in stdout.splitlines()]
    for scenario in ("GET /recipe/{id}", "POST /recipe/"):
        for app in ("stack", "ceiling"):
            row = next((r for r in rows if " ".join(r[:2]) == scenario and r[2] == app), None)
            assert row is not None, (scenario, app, output)
            assert float(row[3]) > 0, (scenario, app, output)


def test_results_name_an_unknown_revision_where_git_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The test image has no git (nor a .git): the benchmark still writes its results."""
    monkeypatch.syspath_prepend(str(PROJECT_ROOT))
    from bench.run import git_revision

    monkeypatch.setenv("PATH", "")
    assert git_revision() == "unknown"
