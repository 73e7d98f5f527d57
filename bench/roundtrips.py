"""How many round trips a server makes to its database per request, counted on the wire.

A TCP proxy between the server under test and the database counts the requests the client side
sends, each of which waits for the database's answer: a simple query or a Sync (PostgreSQL's
protocol), a command (MySQL's: a packet with sequence number 0). The server needs no change and
cannot hide a statement, a liveness check, a BEGIN or a COMMIT from it.
"""

import asyncio
import socket
import struct
import threading
from collections.abc import Callable

from sqlalchemy.engine import make_url

# PostgreSQL: the untyped messages before the StartupMessage, then typed ones.
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
WAITS_FOR_ANSWER = {b"Q", b"S"}  # simple query; Sync ends an extended-protocol exchange


class _PostgresCounter:
    def __init__(self, count: Callable[[], None]) -> None:
        self._count = count
        self._buffer = b""
        self._started = False

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while True:
            if not self._started:
                if len(self._buffer) < 8:
                    return
                length, code = struct.unpack("!ii", self._buffer[:8])
                if len(self._buffer) < length:
                    return
                self._buffer = self._buffer[length:]
                self._started = code not in (SSL_REQUEST, GSSENC_REQUEST)
                continue
            if len(self._buffer) < 5:
                return
            kind = self._buffer[:1]
            (length,) = struct.unpack("!i", self._buffer[1:5])
            if len(self._buffer) < 1 + length:
                return
            self._buffer = self._buffer[1 + length :]
            if kind in WAITS_FOR_ANSWER:
                self._count()


class _MysqlCounter:
    """Every command starts a new exchange, with sequence number 0 (the handshake's packets
    from the client have higher ones)."""

    def __init__(self, count: Callable[[], None]) -> None:
        self._count = count
        self._buffer = b""

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= 4:
            length = int.from_bytes(self._buffer[:3], "little")
            sequence = self._buffer[3]
            if len(self._buffer) < 4 + length:
                return
            self._buffer = self._buffer[4 + length :]
            if sequence == 0:
                self._count()


class RoundTripCounter:
    """A proxy on a free loopback port to the database of `database_url`, in a thread."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        self.database_url = url
        self._mysql = url.get_backend_name() in ("mysql", "mariadb")
        self._upstream = (url.host or "127.0.0.1", url.port or (3306 if self._mysql else 5432))
        self._lock = threading.Lock()
        self._count = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: asyncio.AbstractServer | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the round-trip proxy did not start")

    @property
    def url(self) -> str:
        """`database_url` through the proxy (no TLS, so that the counter can read the wire)."""
        url = self.database_url.set(host="127.0.0.1", port=self.port)
        if not self._mysql:
            url = url.update_query_dict({"sslmode": "disable", "gssencmode": "disable"})
        return url.render_as_string(hide_password=False)

    def reset(self) -> None:
        with self._lock:
            self._count = 0

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def close(self) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _counted(self) -> None:
        with self._lock:
            self._count += 1

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._listen())
        self._ready.set()
        self._loop.run_forever()

    async def _listen(self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._serve, sock=sock)

    async def _serve(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        try:
            server_in, server_out = await asyncio.open_connection(*self._upstream)
        except OSError:
            client_out.close()
            return
        counter = _MysqlCounter(self._counted) if self._mysql else _PostgresCounter(self._counted)
        await asyncio.gather(
            _pump(client_in, server_out, counter.feed),
            _pump(server_in, client_out, None),
            return_exceptions=True,
        )


async def _pump(
    source: asyncio.StreamReader,
    sink: asyncio.StreamWriter,
    inspect: Callable[[bytes], None] | None,
) -> None:
    try:
        while data := await source.read(65536):
            if inspect is not None:
                inspect(data)
            sink.write(data)
            await sink.drain()
    finally:
        sink.close()
