"""Database work from async routes: one worker-thread hop per request, one transaction in it.

The driver blocks, so the work must leave the event loop. FastAPI's sync endpoints with a
`yield` session dependency did that four times per request (dependency entry, endpoint,
response validation, dependency exit, each an anyio thread hop) and kept the transaction open
across all of them. Here a route hands its whole unit of work to `Database.run`: one hop on a
plain thread pool, and a transaction that lasts only as long as its statements, which also
keeps SQLite's single writer lock short. `scripts/bench.sh` measures the difference.
"""

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.orm import Session, sessionmaker

P = ParamSpec("P")
T = TypeVar("T")

# What anyio lent FastAPI's sync endpoints: requests beyond the connection pool's size wait for
# a connection up to DB_POOL_TIMEOUT, then get a 503, as they did before.
MAX_THREADS = 40


class Database:
    """The app's one way to the database: built in the lifespan, one per worker process."""

    def __init__(
        self, session_factory: sessionmaker[Session], max_threads: int = MAX_THREADS
    ) -> None:
        self.session_factory = session_factory
        self._executor = ThreadPoolExecutor(max_threads, thread_name_prefix="db")

    async def run(
        self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`work(session, *args, **kwargs)` in a worker thread, in a new session and one
        transaction: committed when `work` returns, rolled back if it raises.

        The commit is done when this returns, so before any response is sent: a client never
        sees a 201 for a write that was not committed. A route calls this once, so a request
        is one transaction; CRUD functions flush and never commit.
        """

        def in_transaction() -> T:
            # The thread owns the session from start to close: if the request is cancelled
            # meanwhile, the work still ends with a commit or a rollback, never half way.
            with self.session_factory.begin() as session:
                return work(session, *args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(self._executor, in_transaction)

    def close(self) -> None:
        self._executor.shutdown()
