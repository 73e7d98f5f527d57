"""Prestart step 1: wait until the database accepts connections.

A database that is still starting (or not yet reachable) is waited for, up to PRESTART_MAX_WAIT
seconds; a mistake in the configuration (wrong password, missing database) ends the job at once,
since waiting cannot fix it.
"""

import logging
import sys
import time

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay, wait_fixed

from app.core.config import Settings, get_settings, mask_password
from app.core.logging import configure_logging, step_fields
from app.db.errors import MYSQL_UNREACHABLE, mysql_error_code
from app.db.session import create_db_engine

logger = logging.getLogger("app.backend_pre_start")

# Substrings of libpq/psycopg2 messages for conditions that go away by themselves.
TRANSIENT_MARKERS = (
    "connection refused",
    "could not connect to server",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "not accepting connections",  # also "not yet accepting": a standby or a restart
    "timeout expired",
    "connection timed out",
    "could not translate host name",  # the db container's name is not in DNS yet
    "temporary failure in name resolution",
    "no route to host",
    "server closed the connection unexpectedly",
    "too many clients already",
    "remaining connection slots are reserved",  # the same, seen by a role that is no superuser
)


def is_transient(exc: BaseException) -> bool:
    """On MariaDB/MySQL by the error code (app/db/errors.py): a wrong password (1045), a missing
    database (1049) or no right to it (1044) are not retried."""
    if not isinstance(exc, OperationalError):
        return False
    code = mysql_error_code(exc)
    if code is not None:
        return code in MYSQL_UNREACHABLE
    return any(marker in str(exc).lower() for marker in TRANSIENT_MARKERS)


def check_connection(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


class ThrottledProgress:
    """tenacity's `before_sleep`: logs the first failure, then at most every `every` seconds,
    so a database that takes minutes to come fills no screen."""

    def __init__(self, url: str, max_wait: float, every: float = 10) -> None:
        self.url = url
        self.max_wait = max_wait
        self.every = every
        self._last_logged: float | None = None

    def __call__(self, state: RetryCallState) -> None:
        elapsed = state.seconds_since_start or 0.0
        if self._last_logged is not None and elapsed - self._last_logged < self.every:
            return
        self._last_logged = elapsed
        exc = state.outcome.exception() if state.outcome else None
        reason = str(exc).strip().splitlines()[0] if exc else "unknown error"
        logger.warning(
            "database %s not accepting connections yet (%.0fs of at most %.0fs, attempt %d): %s",
            self.url,
            elapsed,
            self.max_wait,
            state.attempt_number,
            reason,
        )


def wait_for_database(settings: Settings) -> None:
    engine = create_db_engine(settings, pooled=False)
    retrying = Retrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_delay(settings.PRESTART_MAX_WAIT),
        wait=wait_fixed(settings.PRESTART_RETRY_INTERVAL),
        before_sleep=ThrottledProgress(
            mask_password(settings.database_url), settings.PRESTART_MAX_WAIT
        ),
        reraise=True,
    )
    try:
        retrying(check_connection, engine)
    finally:
        engine.dispose()


def main() -> int:
    settings = get_settings().for_prestart()
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    url = mask_password(settings.database_url)
    logger.info("waiting for database %s (at most %ss)", url, settings.PRESTART_MAX_WAIT)
    started = time.perf_counter()
    try:
        wait_for_database(settings)
    except OperationalError as exc:
        transient = is_transient(exc)
        reason = "gave up waiting" if transient else "cannot connect, not retrying"
        outcome = "gave_up" if transient else "refused"
        logger.error(
            "%s for %s: %s",
            reason,
            url,
            str(exc.orig or exc).strip(),
            extra=step_fields("wait", outcome, started),
        )
        return 1
    logger.info("database %s is ready", url, extra=step_fields("wait", "ok", started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
