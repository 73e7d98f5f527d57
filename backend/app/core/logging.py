"""Logs: one line per event on stdout, for the app, the prestart steps and gunicorn alike.

LOG_FORMAT=json writes one JSON object per line, for a log collector; `text` is for a terminal.
Every line written while a request is served carries its id, whichever thread writes it: the
request middleware sets `current_request_id` (app/api/observability.py), and the database threads
run with a copy of the request's context (app/db/database.py).
"""

import json
import logging
import logging.config
import os
import time
from contextvars import ContextVar
from typing import Any, TextIO

import orjson

# The id of the request being served; None outside a request (start-up, prestart, gunicorn).
current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# What every record carries; anything else on it came as `extra=` and is written as a field.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "request_id",
}
_LEVEL_NAMES = {
    level: logging.getLevelName(level).lower()
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)
}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a record was given with `extra=`."""
    return {name: value for name, value in vars(record).items() if name not in _RECORD_ATTRIBUTES}


# ".000Z" to ".999Z": the end of every timestamp, formatted once.
_MILLISECONDS = tuple(f".{millisecond:03d}Z" for millisecond in range(1000))


class _UtcClock:
    """`2026-11-29T22:19:56.165Z` for a time.time(). Every request line needs one: the part up to
    the second is formatted once per second, the milliseconds looked up."""

    def __init__(self) -> None:
        # One tuple, replaced whole: threads that log at once never mix two seconds.
        self._last: tuple[int, str] = (-1, "")

    def timestamp(self, created: float) -> str:
        second = int(created)
        last_second, prefix = self._last
        if second != last_second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._last = (second, prefix)
        return prefix + _MILLISECONDS[int((created - second) * 1000)]


_clock = _UtcClock()


def json_entry(
    created: float,
    level: int,
    logger: str,
    message: str,
    fields: dict[str, Any],
    request_id: str | None,
) -> dict[str, Any]:
    """The fields of a JSON line, in their order: time (UTC, ISO 8601), level, logger, message,
    pid, the request id while serving one, then the line's own fields."""
    entry: dict[str, Any] = {
        "time": _clock.timestamp(created),
        "level": _LEVEL_NAMES.get(level) or logging.getLevelName(level).lower(),
        "logger": logger,
        "message": message,
        "pid": os.getpid(),
    }
    if request_id is not None:
        entry["request_id"] = request_id
    entry.update(fields)
    return entry


def json_line(entry: dict[str, Any]) -> str:
    try:
        return orjson.dumps(entry, default=str).decode()
    except TypeError:
        # orjson refuses what is not valid UTF-8 (a lone surrogate in a message); the standard
        # library escapes it instead of losing the line.
        return json.dumps(entry, default=str)


class RequestIdFilter(logging.Filter):
    """Puts the id of the request being served, or None, on every record as `request_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record (`json_entry`), with the traceback of an exception.

    A formatter of our own on orjson (already a dependency): the request line skips records
    altogether (`RequestLog`), and every other line must look the same.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry = json_entry(
            record.created,
            record.levelno,
            record.name,
            record.getMessage(),
            extra_fields(record),
            getattr(record, "request_id", None),
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json_line(entry)


class TextFormatter(logging.Formatter):
    """`time LEVEL [logger] message`, then the request id and the `extra=` fields as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s [%(name)s] %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = {"request_id": getattr(record, "request_id", None), **extra_fields(record)}
        pairs = " ".join(f"{name}={value}" for name, value in fields.items() if value is not None)
        return f"{line} {pairs}" if pairs else line


class JsonLinesHandler(logging.StreamHandler[TextIO]):
    """The JSON format's handler: records as any StreamHandler writes them, and lines that come
    without a record (`write_entry`), under the same lock."""

    def write_entry(self, entry: dict[str, Any]) -> None:
        line = json_line(entry) + self.terminator
        self.acquire()
        try:
            stream = self.stream
            stream.write(line)
            stream.flush()
        finally:
            self.release()


class RequestLog:
    """The line each request ends with, on the `app.request` logger.

    It is on the path of every request, where creating and handling a LogRecord cost several
    times what the line itself does (docs/performance.md). So a `JsonLinesHandler` gets the line
    directly, with the fields `JsonFormatter` would write; any other handler (the text format, a
    test's capture) gets a record as usual. Levels and propagation apply as for any logger.
    """

    def __init__(self, name: str = "app.request") -> None:
        self.logger = logging.getLogger(name)

    def enabled_for(self, level: int) -> bool:
        """Whether a line at `level` would be written: the caller may skip building it."""
        return self.logger.isEnabledFor(level)

    def write(self, level: int, message: str, fields: dict[str, Any]) -> None:
        logger = self.logger
        if not logger.isEnabledFor(level):
            return
        entry: dict[str, Any] | None = None
        record: logging.LogRecord | None = None
        current: logging.Logger | None = logger
        while current is not None:
            for handler in current.handlers:
                if level < handler.level:
                    continue
                if isinstance(handler, JsonLinesHandler) and not logger.filters:
                    if entry is None:
                        entry = json_entry(
                            time.time(),
                            level,
                            logger.name,
                            message,
                            fields,
                            current_request_id.get(),
                        )
                    handler.write_entry(entry)
                    continue
                if record is None:
                    record = logger.makeRecord(
                        logger.name, level, "", 0, message, (), None, extra=fields
                    )
                    if not logger.filter(record):
                        return
                handler.handle(record)
            current = current.parent if current.propagate else None


FORMATTERS = {"json": JsonFormatter, "text": TextFormatter}


def logging_config(level: str, log_format: str, stream: str = "stdout") -> dict[str, Any]:
    """The `logging.config.dictConfig` of every process: one handler, on stdout (`stream`), that
    every logger reaches. gunicorn.conf.py gives it to gunicorn as `logconfig_dict`."""
    formatter = FORMATTERS[log_format]
    handler = JsonLinesHandler if log_format == "json" else logging.StreamHandler
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "formatters": {"line": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {
            "stdout": {
                "class": f"{handler.__module__}.{handler.__qualname__}",
                "stream": f"ext://sys.{stream}",
                "formatter": "line",
                "filters": ["request_id"],
            }
        },
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            # The servers' own lines go through the one handler instead of their own.
            **{
                name: {"level": level, "handlers": [], "propagate": True}
                for name in ("gunicorn.error", "uvicorn", "uvicorn.error")
            },
            # Their access logs stay off: the app writes one line per request, with more in it.
            **{
                name: {"handlers": [], "propagate": False}
                for name in ("gunicorn.access", "uvicorn.access")
            },
        },
    }


def configure_logging(level: str, log_format: str = "json", stream: str = "stdout") -> None:
    logging.config.dictConfig(logging_config(level, log_format, stream))
    # Python's warnings as log lines too, rather than bare text on stderr.
    logging.captureWarnings(True)


def step_fields(step: str, outcome: str, started: float, **fields: Any) -> dict[str, Any]:
    """The `extra=` of a prestart step's closing line: which step, how it ended, how long it took
    (from `started`, a `time.perf_counter()`), and anything else worth a field."""
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    return {"step": step, "outcome": outcome, "duration_ms": duration_ms, **fields}
