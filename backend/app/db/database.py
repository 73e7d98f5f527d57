"""Database work from async routes: one worker-thread hop per request, its unit of work in it.

The driver blocks, so the work must leave the event loop. FastAPI's sync endpoints with a
`yield` session dependency did that four times per request (dependency entry, endpoint,
response validation, dependency exit, each an anyio thread hop) and kept the transaction open
across all of them. Here a route hands its whole unit of work to `Database.read` or
`Database.write`: one hop on a plain thread pool, with no transaction open across the hops
(figures in docs/performance.md).
"""

import asyncio
import contextvars
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, Row, Select, Update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

P = ParamSpec("P")
T = TypeVar("T")


class SqliteWriterQueue:
    """Lines up a SQLite file's writers, in every process that uses it, in the kernel.

    SQLite admits one writer at a time and makes the others poll, sleeping longer and longer
    between tries: under concurrent POSTs the slowest waited far longer than the writes took.
    Waiting for an exclusive flock(2) on a lock file instead wakes the next writer as soon as the
    previous one commits. Each thread opens its own descriptor, since flock locks per open file.
    """

    def __init__(self, database_path: str) -> None:
        # Next to the database, as SQLite keeps its -wal and -shm files: every process using the
        # file finds the same lock, and it goes when the database's directory goes.
        self.path = Path(f"{database_path}-writers")
        self._descriptors = threading.local()

    @contextmanager
    def turn(self) -> Iterator[None]:
        descriptor: int | None = getattr(self._descriptors, "fd", None)
        if descriptor is None:
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._descriptors.fd = descriptor
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)


def writer_queue_for(engine: Engine) -> SqliteWriterQueue | None:
    """A queue for a SQLite file's writers; PostgreSQL and in-memory SQLite need none."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    return SqliteWriterQueue(database)


class Database:
    """The app's one way to the database: built in the lifespan, one per worker process.

    A route makes one call with its whole unit of work. The engine's connections are in
    autocommit (`app/db/session.py`): a statement commits as it runs, so a unit of one statement
    is one round trip, and every write is committed when the call returns, before any response
    is sent: a client never sees a 201 for a write that was not committed. CRUD functions never
    commit.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        threads: int,
        wait_timeout: float,
        writers: SqliteWriterQueue | None = None,
    ) -> None:
        """`threads`: as many as the pool keeps connections (DB_POOL_SIZE), so requests never
        need its overflow (left to health checks). With a thread per overflow connection too,
        sustained load kept opening and closing connections (a PostgreSQL backend process each)
        and the extra threads contended for the GIL. A unit of work waits for a thread instead,
        up to `wait_timeout` (DB_POOL_TIMEOUT), then fails as an exhausted pool does: 503.
        """
        self.engine = engine
        self._wait_timeout = wait_timeout
        self._writers = writers
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="db")

    async def read(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`work(connection, *args, **kwargs)` in a worker thread.

        Pooled connections are not checked before use (a round trip each time). One that turns
        out dead, because the database restarted since it was pooled, fails its statement; the
        pool then drops every connection as old as it, and the read runs once more, on a new
        connection: reading twice is harmless. A write is never run twice (its statement may
        have reached the database): it fails with 503 instead.
        """

        def unit() -> T:
            try:
                return self._run(work, *args, **kwargs)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
            return self._run(work, *args, **kwargs)

        return await self._in_thread(unit)

    async def write(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`work(connection, *args, **kwargs)` in a worker thread; on SQLite it first waits for
        its turn among writers."""

        def unit() -> T:
            with self._writers.turn() if self._writers else nullcontext():
                return self._run(work, *args, **kwargs)

        return await self._in_thread(unit)

    def _run(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        # The thread owns the connection from start to close: if the request is cancelled
        # meanwhile, the unit still ends, never half way.
        with self.engine.connect() as connection:
            return work(connection, *args, **kwargs)

    async def _in_thread(self, in_transaction: Callable[[], T]) -> T:
        # Executor threads do not inherit the caller's context variables: run the unit in a copy
        # of the request's, so that what it logs carries the request id.
        queued = self._executor.submit(contextvars.copy_context().run, in_transaction)
        timed_out = False

        def give_up() -> None:
            # Still queued after the timeout (cancel() fails once the work has started): every
            # thread is busy with a database that does not keep up. Answer now, as an exhausted
            # pool does, rather than let requests pile up without end.
            nonlocal timed_out
            timed_out = queued.cancel()

        # A timer, not asyncio.wait(timeout=...), which costs measurably more per request.
        timer = asyncio.get_running_loop().call_later(self._wait_timeout, give_up)
        try:
            return await asyncio.wrap_future(queued)
        except asyncio.CancelledError:
            if timed_out:
                raise PoolTimeoutError(
                    f"no database thread free within {self._wait_timeout}s"
                ) from None
            raise
        finally:
            timer.cancel()

    def close(self) -> None:
        self._executor.shutdown()


@contextmanager
def atomic(connection: Connection) -> Iterator[None]:
    """The statements in the block commit together or not at all, on a connection of the app's
    (autocommit) engine: for the few units of work that need more than one statement to be
    one change."""
    if connection.in_transaction():
        connection.commit()  # ends SQLAlchemy's record of the autocommitted statements so far
    connection.execution_options(isolation_level=connection.dialect.default_isolation_level)
    with connection.begin():
        yield


def update_returning(
    connection: Connection, statement: Update, read_back: Select[Any], params: dict[str, Any]
) -> Row[Any] | None:
    """Run `statement` (an UPDATE of one row, its values bound) and return the row as it stands
    after it, or None if it updated nothing. Where the database returns updated rows
    (PostgreSQL, SQLite) that is one statement with RETURNING; MariaDB has no `UPDATE ...
    RETURNING`, so there the row is read back with `read_back` and its `params` in the same
    transaction, the update's lock still held."""
    if connection.dialect.update_returning:
        return connection.execute(statement.returning(*read_back.selected_columns)).first()
    with atomic(connection):
        if connection.execute(statement).rowcount == 0:
            return None
        return connection.execute(read_back, params).first()
