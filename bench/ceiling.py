"""The ceiling: the benchmarked routes as a bare ASGI app doing the least work each request needs.

No framework, no ORM, no validation library: per request, one statement on a connection in
autocommit (no liveness check, no BEGIN or COMMIT), with the same answer the stack gives. For
POST /recipe/ that is one `INSERT ... RETURNING`; the ceiling checks no token (the stack's
token check is part of the gap it measures) and records the benchmark's caller, user 1, as the
submitter. Served under the app's own gunicorn settings:
`gunicorn -c gunicorn.conf.py bench.ceiling:app`.

Each worker runs the statement on its one connection, opened once, straight from the event loop:
no thread hop either. That is the least a request costs on these drivers (psycopg2 for
PostgreSQL, PyMySQL for MariaDB, the app's), so it is the ratio the targets use. As a diagnostic,
CEILING_THREADS=N runs the statements on N threads instead, each with its own connection, which
shows what a thread hop costs; never the ceiling for the targets. Reads DATABASE_URL like the
app. The columns come from the app's table, so a new column needs no change here.
"""

import asyncio
import html
import os
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import psycopg2
import psycopg2.errors
import pymysql
from sqlalchemy.engine import make_url

from app.models import Recipe
from bench.databases import libpq_url, pymysql_connect

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

FIELDS = tuple(Recipe.__table__.columns.keys())
COLUMNS = ", ".join(FIELDS)
WRITABLE = frozenset(FIELDS) - {"id"}
MAX_TEXT = 256
MAX_ID = 2_147_483_647
CALLER_ID = 1  # the seed's superuser, whom the benchmark logs in as
JSON = [(b"content-type", b"application/json")]

THREADS = int(os.environ.get("CEILING_THREADS", "0"))

_executor: ThreadPoolExecutor | None = None
_connections = threading.local()

DATABASE_URL = make_url(os.environ.get("DATABASE_URL", "sqlite://"))
MYSQL = DATABASE_URL.get_backend_name() in ("mysql", "mariadb")
if not MYSQL and DATABASE_URL.get_backend_name() != "postgresql":
    raise RuntimeError("the ceiling serves PostgreSQL and MariaDB: set DATABASE_URL")
# The stack's case-insensitive match, as SQLAlchemy writes it for each: MariaDB has no ILIKE.
LABEL_MATCHES = (
    "lower(label) LIKE lower(%s) ESCAPE '\\\\'" if MYSQL else "label ILIKE %s ESCAPE '\\'"
)


def _connect() -> Any:
    """A new connection in autocommit: each statement commits by itself."""
    url = DATABASE_URL.render_as_string(hide_password=False)
    if MYSQL:
        return pymysql_connect(url, autocommit=True)
    connection = psycopg2.connect(libpq_url(url))
    connection.autocommit = True
    return connection


def _connection() -> Any:
    """The calling thread's connection, opened on its first query."""
    connection = getattr(_connections, "connection", None)
    if connection is None:
        connection = _connections.connection = _connect()
    return connection


def _run(sql: str, params: tuple[Any, ...], many: bool) -> Any:
    with _connection().cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if many else cursor.fetchone()


async def query(sql: str, params: tuple[Any, ...], many: bool = False) -> Any:
    if _executor is None:
        return _run(sql, params, many)
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


def as_recipe(row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(FIELDS, row, strict=True))


async def get_recipe(send: Send, raw_id: str) -> None:
    if not raw_id.isdigit() or not 1 <= int(raw_id) <= MAX_ID:
        await respond_json(send, 422, {"detail": "invalid id"})
        return
    row = await query(f"SELECT {COLUMNS} FROM recipe WHERE id = %s", (int(raw_id),))
    if row is None:
        await respond_json(send, 404, {"detail": f"Recipe with ID {raw_id} not found"})
        return
    await respond_json(send, 200, as_recipe(row))


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
        sql = f"SELECT {COLUMNS} FROM recipe WHERE {LABEL_MATCHES} ORDER BY id LIMIT %s"
        args = (pattern, int(limit))
    rows = await query(sql, args, many=True)
    await respond_json(send, 200, {"results": [as_recipe(row) for row in rows]})


def _text(value: object, required: bool = False) -> bool:
    if value is None:
        return not required
    return isinstance(value, str) and (1 if required else 0) <= len(value.strip()) <= MAX_TEXT


def _valid_recipe(payload: object) -> bool:
    """The stack's rules for the fields the benchmark sends."""
    if not isinstance(payload, dict) or not payload.keys() <= WRITABLE:
        return False
    url = payload.get("url")
    return (
        _text(payload.get("label"), required=True)
        and _text(payload.get("source"))
        and (url is None or (_text(url) and urlsplit(url).scheme in ("http", "https")))
    )


async def create_recipe(receive: Receive, send: Send) -> None:
    try:
        payload = orjson.loads(await read_body(receive))
    except orjson.JSONDecodeError:
        payload = None
    if not _valid_recipe(payload):
        await respond_json(send, 422, {"detail": "invalid recipe"})
        return
    values = {"submitter_id": CALLER_ID, **payload}
    names = ", ".join(values)
    placeholders = ", ".join(["%s"] * len(values))
    sql = f"INSERT INTO recipe ({names}) VALUES ({placeholders}) RETURNING {COLUMNS}"
    try:
        row = await query(sql, tuple(values.values()))
    except (psycopg2.errors.ForeignKeyViolation, pymysql.err.IntegrityError):
        await respond_json(send, 422, {"detail": "submitter_id names no user"})
        return
    await respond_json(send, 201, as_recipe(row))


def _recipe_item(recipe_id: int, label: str, source: str | None, url: str | None) -> str:
    item = f'<a href="/recipe/{recipe_id}">{html.escape(label)}</a>'
    if source:
        item += f' <span class="source">({html.escape(source)})</span>'
    if url:
        item += f' <a class="original" href="{html.escape(url)}" rel="noopener noreferrer">'
        item += "original</a>"
    return f"<li>{item}</li>"


PAGE_HEAD = (
    '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
    "<title>Recipes</title>\n<style>\nbody { font-family: system-ui, sans-serif; "
    "max-width: 48rem; margin: 2rem auto; padding: 0 1rem; }\nli { margin: 0.5rem 0; }\n"
    ".source { color: #666; }\n</style>\n</head>\n<body>\n<h1>Latest recipes</h1>\n"
)
PAGE_FOOT = (
    '<p><a href="/recipes/">Every recipe</a> · <a href="/docs">API documentation</a></p>\n'
    "</body>\n</html>\n"
)


async def home(send: Send) -> None:
    rows = await query(
        "SELECT id, label, source, url FROM recipe ORDER BY id DESC LIMIT %s", (10,), many=True
    )
    items = "\n".join(_recipe_item(*row) for row in rows)
    page = PAGE_HEAD + (f"<ul>\n{items}\n</ul>\n" if rows else "<p>No recipes yet.</p>\n")
    await respond(
        send, 200, (page + PAGE_FOOT).encode(), [(b"content-type", b"text/html; charset=utf-8")]
    )


async def lifespan(receive: Receive, send: Send) -> None:
    global _executor
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            # Built in the worker, after the fork; each thread connects on its first query.
            if THREADS > 0:
                _executor = ThreadPoolExecutor(THREADS, thread_name_prefix="db")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _executor is not None:
                _executor.shutdown()
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
