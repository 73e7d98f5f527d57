"""The ceiling: the benchmarked routes as a bare ASGI app, no framework and no ORM.

It sends the same SQL as the app through a psycopg2 pool, so the gap between the two is what the
framework, the ORM and the validation cost: per request, the check that the pooled connection
still answers (`SELECT 1` outside a transaction, as the app's `pool_pre_ping` sends it on each
checkout), then one transaction with the route's statement, committed.
Served under the app's own gunicorn settings: `gunicorn -c gunicorn.conf.py bench.ceiling:app`.

The queries run on a small thread pool, as a careful hand-written service would run a
blocking driver, each thread with a connection of its own kept open (psycopg2's pool closes
connections beyond `minconn`, so min = max: no connection is opened under load). Sized like
the app's (DB_POOL_SIZE, default 5). Reads DATABASE_URL like the app; PostgreSQL only.
"""

import asyncio
import html
import os
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import psycopg2
import psycopg2.errors
from psycopg2.pool import ThreadedConnectionPool

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

COLUMNS = "id, label, source, url, submitter_id"
FIELDS = ("id", "label", "source", "url", "submitter_id")
RECIPE_FIELDS = frozenset(("label", "source", "url", "submitter_id"))
MAX_TEXT = 256
JSON = [(b"content-type", b"application/json")]

THREADS = int(os.environ.get("DB_POOL_SIZE", "5"))

_pool: ThreadedConnectionPool | None = None
_executor: ThreadPoolExecutor | None = None


def _dsn() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgresql", "postgres:")):
        raise RuntimeError("the ceiling serves PostgreSQL only: set DATABASE_URL")
    # libpq reads postgresql:// URIs; drop SQLAlchemy's driver suffix.
    return "postgresql://" + url.split("://", 1)[1]


def checked_connection(pool: ThreadedConnectionPool) -> Any:
    """A pooled connection that answers, checked as SQLAlchemy's pre-ping checks it. One that fails
    the check (the server restarted) is closed and the next one checked, until a new one opens.
    """
    for _ in range(pool.maxconn + 1):
        connection = pool.getconn()
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            connection.autocommit = False
            return connection
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            pool.putconn(connection, close=True)
    raise psycopg2.OperationalError("no pooled or new connection answers")


def _run(sql: str, params: tuple[Any, ...], many: bool = False) -> Any:
    """One statement in its own transaction, on a checked pooled connection."""
    assert _pool is not None
    connection = checked_connection(_pool)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if many else cursor.fetchone()
    finally:
        _pool.putconn(connection)


async def query(sql: str, params: tuple[Any, ...], many: bool = False) -> Any:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, _run, sql, params, many)


async def respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    # With a length, as Starlette sends it (without one, uvicorn would chunk the body).
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Send, status: int, payload: object) -> None:
    await respond(send, status, orjson.dumps(payload), JSON)


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def get_recipe(send: Send, raw_id: str) -> None:
    if not raw_id.isdigit() or not 1 <= int(raw_id) <= 2_147_483_647:
        await respond_json(send, 422, {"detail": "invalid id"})
        return
    row = await query(f"SELECT {COLUMNS} FROM recipe WHERE id = %s", (int(raw_id),))
    if row is None:
        await respond_json(send, 404, {"detail": f"Recipe with ID {raw_id} not found"})
        return
    await respond_json(send, 200, dict(zip(FIELDS, row, strict=True)))


async def search(send: Send, query_string: bytes) -> None:
    params = parse_qs(query_string.decode("latin-1"))
    keyword = params.get("keyword", [None])[0]
    limit = params.get("max_results", ["10"])[0]
    if (keyword is not None and not 3 <= len(keyword) <= MAX_TEXT) or not (
        limit.isdigit() and 1 <= int(limit) <= 100
    ):
        await respond_json(send, 422, {"detail": "invalid query"})
        return
    args: tuple[Any, ...]
    if keyword is None:
        sql, args = f"SELECT {COLUMNS} FROM recipe ORDER BY id LIMIT %s", (int(limit),)
    else:
        pattern = "%" + keyword.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        sql = f"SELECT {COLUMNS} FROM recipe WHERE label ILIKE %s ESCAPE '\\' ORDER BY id LIMIT %s"
        args = (pattern, int(limit))
    rows = await query(sql, args, many=True)
    await respond_json(send, 200, {"results": [dict(zip(FIELDS, r, strict=True)) for r in rows]})


def _valid_recipe(payload: object) -> bool:
    if not isinstance(payload, dict) or payload.keys() != RECIPE_FIELDS:
        return False
    label, source, url = payload["label"], payload["source"], payload["url"]
    submitter = payload["submitter_id"]
    return (
        isinstance(label, str)
        and 1 <= len(label) <= MAX_TEXT
        and (source is None or (isinstance(source, str) and len(source) <= MAX_TEXT))
        and (
            url is None
            or (
                isinstance(url, str)
                and len(url) <= MAX_TEXT
                and urlsplit(url).scheme in ("http", "https")
            )
        )
        and (submitter is None or (type(submitter) is int and 1 <= submitter <= 2_147_483_647))
    )


async def create_recipe(receive: Receive, send: Send) -> None:
    try:
        payload = orjson.loads(await read_body(receive))
    except orjson.JSONDecodeError:
        payload = None
    if not _valid_recipe(payload):
        await respond_json(send, 422, {"detail": "invalid recipe"})
        return
    sql = (
        "INSERT INTO recipe (label, source, url, submitter_id) VALUES (%s, %s, %s, %s)"
        f" RETURNING {COLUMNS}"
    )
    args = (payload["label"], payload["source"], payload["url"], payload["submitter_id"])
    try:
        row = await query(sql, args)
    except psycopg2.errors.ForeignKeyViolation:
        await respond_json(send, 422, {"detail": "submitter_id names no user"})
        return
    await respond_json(send, 201, dict(zip(FIELDS, row, strict=True)))


def _recipe_item(label: str, source: str | None, url: str | None) -> str:
    text = html.escape(label)
    item = f'<a href="{html.escape(url)}">{text}</a>' if url else text
    if source:
        item += f' <span class="source">({html.escape(source)})</span>'
    return f"<li>{item}</li>"


PAGE_HEAD = (
    '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
    "<title>Recipes</title>\n<style>\nbody { font-family: system-ui, sans-serif; "
    "max-width: 48rem; margin: 2rem auto; padding: 0 1rem; }\nli { margin: 0.5rem 0; }\n"
    ".source { color: #666; }\n</style>\n</head>\n<body>\n<h1>Latest recipes</h1>\n"
)


async def home(send: Send) -> None:
    rows = await query(
        "SELECT label, source, url FROM recipe ORDER BY id DESC LIMIT %s", (10,), many=True
    )
    items = "\n".join(_recipe_item(*row) for row in rows)
    page = PAGE_HEAD + (f"<ul>\n{items}\n</ul>\n" if rows else "<p>No recipes yet.</p>\n")
    page += "</body>\n</html>\n"
    await respond(send, 200, page.encode(), [(b"content-type", b"text/html; charset=utf-8")])


async def lifespan(receive: Receive, send: Send) -> None:
    global _pool, _executor
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            # Built in the worker, after the fork.
            _pool = ThreadedConnectionPool(THREADS, THREADS, _dsn())
            _executor = ThreadPoolExecutor(THREADS, thread_name_prefix="db")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _executor is not None:
                _executor.shutdown()
            if _pool is not None:
                _pool.closeall()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    method, path = scope["method"], scope["path"]
    if method == "GET" and path.startswith("/recipe/"):
        await get_recipe(send, path.removeprefix("/recipe/"))
    elif method == "GET" and path == "/search/":
        await search(send, scope["query_string"])
    elif method == "POST" and path == "/recipe/":
        await create_recipe(receive, send)
    elif method == "GET" and path == "/":
        await home(send)
    else:
        await respond_json(send, 404, {"detail": "Not Found"})
