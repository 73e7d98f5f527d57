"""Log lines as an operator gets them: the JSON format, read from a process's output or captured
in-process with the handler, formatter and filter the app configures."""

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.core.logging import JsonFormatter, JsonLinesHandler, RequestIdFilter


def json_lines(output: str) -> list[dict[str, Any]]:
    """Every line of `output` as a JSON object; a line that is not one fails the test."""
    entries = []
    for number, line in enumerate(output.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            raise AssertionError(f"line {number} is not JSON: {line!r}\n{output}") from None
        assert isinstance(entry, dict), f"line {number} is not a JSON object: {line!r}"
        entries.append(entry)
    return entries


def lines_of(entries: list[dict[str, Any]], **fields: Any) -> list[dict[str, Any]]:
    """The entries whose fields have these values."""
    return [entry for entry in entries if all(entry.get(k) == v for k, v in fields.items())]


class CapturedLog:
    """What the app logs while it is attached, in the JSON format."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = JsonLinesHandler(self.stream)
        self.handler.setFormatter(JsonFormatter())
        self.handler.addFilter(RequestIdFilter())

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def entries(self, **fields: Any) -> list[dict[str, Any]]:
        return lines_of(json_lines(self.text), **fields)

    def requests(self, **fields: Any) -> list[dict[str, Any]]:
        """The lines requests end with."""
        return self.entries(logger="app.request", **fields)


@contextmanager
def captured_log(level: int = logging.INFO) -> Iterator[CapturedLog]:
    """The root logger's lines at `level` and above, captured; the root restored afterwards."""
    captured = CapturedLog()
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(captured.handler)
    root.setLevel(level)
    try:
        yield captured
    finally:
        root.removeHandler(captured.handler)
        root.setLevel(previous_level)
