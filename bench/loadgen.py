"""A small HTTP/1.1 load generator, used only where wrk is missing.

It is written in Python and shares the two cores with the servers it measures, so its figures
are lower than wrk's; `scripts/bench.sh` says so when it falls back to it. Same output as the
wrk script: one JSON line after RESULT_MARKER.

    python -m bench.loadgen URL --kind get_by_id --path /recipe/ --seconds 5 --connections 32
"""

import argparse
import asyncio
import json
import random
import time
from urllib.parse import urlsplit

from bench.load import RESULT_MARKER


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.non_2xx = 0
        self.socket_errors = 0


def build_request(kind: str, path: str, host: str, max_id: int, number: int, token: str) -> bytes:
    if kind == "get_by_id":
        return f"GET {path}{random.randint(1, max_id)} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    if kind == "post":
        body = json.dumps(
            {
                "label": f"Bench Saffron Stew py-{number}",
                "source": "loadgen",
                "url": f"https://recipes.example.com/py/{number}",
            }
        ).encode()
        authorization = f"Authorization: Bearer {token}\r\n" if token else ""
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"{authorization}Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


async def read_response(reader: asyncio.StreamReader) -> int:
    """Reads one response and returns its status (the servers always send Content-Length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def connection_loop(
    args: argparse.Namespace, deadline: float, stats: Stats, counter: list[int]
) -> None:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    path = (
        args.path
        if args.kind != "static"
        else (url.path or "/") + (f"?{url.query}" if url.query else "")
    )
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < deadline:
            counter[0] += 1
            request = build_request(
                args.kind, path, url.netloc, args.max_id, counter[0], args.token
            )
            started = time.perf_counter()
            writer.write(request)
            try:
                status = await read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                stats.socket_errors += 1
                return
            stats.latencies.append(time.perf_counter() - started)
            if status >= 400:
                stats.non_2xx += 1
    finally:
        writer.close()


async def main(args: argparse.Namespace) -> None:
    stats = Stats()
    started = time.monotonic()
    deadline = started + args.seconds
    counter = [random.randint(0, 10**9)]
    await asyncio.gather(
        *(connection_loop(args, deadline, stats, counter) for _ in range(args.connections))
    )
    elapsed = time.monotonic() - started
    latencies = sorted(stats.latencies) or [0.0]

    def percentile(share: float) -> int:
        return int(latencies[min(len(latencies) - 1, int(share * len(latencies)))] * 1e6)

    result = {
        "requests": len(stats.latencies),
        "duration_us": int(elapsed * 1e6),
        "non_2xx": stats.non_2xx,
        "socket_errors": stats.socket_errors,
        "p50_us": percentile(0.50),
        "p99_us": percentile(0.99),
    }
    print(RESULT_MARKER + json.dumps(result), flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--kind", choices=["static", "get_by_id", "post"], default="static")
    parser.add_argument("--path", default="/")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--max-id", type=int, default=1)
    parser.add_argument("--token", default="", help="bearer token for writes")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
