"""The benchmark's tables, as text for the terminal and as JSON under bench/results/."""

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.load import RunResult

RESULTS_DIR = Path(__file__).resolve().parent / "results"

MAIN_HEADERS = (
    "scenario", "stack rps", "ceiling rps", "ratio", "stack p50 ms", "stack p99 ms", "non-2xx"
)  # fmt: skip
SCALE_HEADERS = ("rows", "search p50 ms", "rare-word p50 ms", "ceiling p50 ms")
SQLITE_HEADERS = (
    "sqlite scenario", "rps", "p50 ms", "p99 ms", "503/500", '"database is locked"'
)  # fmt: skip


@dataclass
class ScenarioResult:
    name: str
    stack: list[RunResult] = field(default_factory=list)
    ceiling: list[RunResult] = field(default_factory=list)

    @staticmethod
    def median(runs: Sequence[RunResult], attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in runs) if runs else 0.0

    def summary(self) -> dict[str, Any]:
        stack_rps = self.median(self.stack, "rps")
        ceiling_rps = self.median(self.ceiling, "rps")
        return {
            "scenario": self.name,
            "stack_rps": stack_rps,
            "ceiling_rps": ceiling_rps,
            "ratio": stack_rps / ceiling_rps if ceiling_rps else None,
            "stack_p50_ms": self.median(self.stack, "p50_ms"),
            "stack_p99_ms": self.median(self.stack, "p99_ms"),
            "non_2xx": sum(run.non_2xx for run in self.stack),
            "socket_errors": sum(run.socket_errors for run in self.stack),
            "ceiling_non_2xx": sum(run.non_2xx for run in self.ceiling),
            "stack_rounds": [asdict(run) for run in self.stack],
            "ceiling_rounds": [asdict(run) for run in self.ceiling],
        }


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [list(headers), *[[_cell(value) for value in row] for row in rows]]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        first, *rest = row
        parts = [first.ljust(widths[0])]
        parts += [value.rjust(width) for value, width in zip(rest, widths[1:], strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def main_table(scenarios: Sequence[dict[str, Any]]) -> str:
    rows = [
        (
            s["scenario"],
            s["stack_rps"],
            s["ceiling_rps"],
            f"{s['ratio']:.2f}" if s["ratio"] is not None else None,
            s["stack_p50_ms"],
            s["stack_p99_ms"],
            s["non_2xx"],
        )
        for s in scenarios
    ]
    return format_table(MAIN_HEADERS, rows)


def observability_cost(on: dict[str, Any], off: dict[str, Any]) -> dict[str, Any]:
    """What request logs and metrics cost a scenario: the same stack with both on and off,
    from the same interleaved rounds."""
    on_rps, off_rps = on["stack_rps"], off["stack_rps"]
    return {
        "scenario": on["scenario"],
        "on_rps": on_rps,
        "off_rps": off_rps,
        "change": on_rps / off_rps - 1 if off_rps else None,
        "on_p50_ms": on["stack_p50_ms"],
        "off_p50_ms": off["stack_p50_ms"],
    }


def observability_line(cost: dict[str, Any]) -> str:
    change = f"{cost['change']:+.1%}" if cost["change"] is not None else "-"
    return (
        f"{cost['scenario']}: {cost['on_rps']:,.0f} rps with request logs and metrics on, "
        f"{cost['off_rps']:,.0f} rps with both off, in the same rounds: {change} "
        "(budget: -5%)"
    )


def round_trip_table(counts: dict[str, dict[str, float]]) -> str:
    rows = [(name, f"{c['stack']:.1f}", f"{c['ceiling']:.1f}") for name, c in counts.items()]
    return format_table(("scenario", "stack", "ceiling"), rows)


def scale_table(scale: Sequence[dict[str, Any]], prestart: dict[str, Any], rss: float) -> str:
    rows = [
        (f"{s['rows']:,}", s["stack_p50_ms"], s["stack_rare_p50_ms"], s["ceiling_p50_ms"])
        for s in scale
    ]
    lines = [
        format_table(SCALE_HEADERS, rows),
        "",
        format_table(
            ("prestart", "wall s"),
            [
                ("empty database", f"{prestart['empty_s']:.2f}"),
                (
                    f"up-to-date database, median of {len(prestart['up_to_date_runs_s'])}",
                    f"{prestart['up_to_date_s']:.2f}",
                ),
            ],
        ),
        "",
        f"RSS of one stack worker after the run: {rss:.0f} MB (the larger of the two)",
    ]
    return "\n".join(lines)


def sqlite_table(rows: Sequence[dict[str, Any]]) -> str:
    return format_table(
        SQLITE_HEADERS,
        [
            (r["scenario"], r["rps"], r["p50_ms"], r["p99_ms"], r["non_2xx"], r["locked_in_log"])
            for r in rows
        ],
    )


def write_json(results: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"bench-{results['database']}-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path
