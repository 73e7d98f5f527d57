"""What operators see of each request: its id, one log line when it is answered, the metrics.

One plain ASGI middleware, outermost among the app's: `BaseHTTPMiddleware` and
`@app.middleware("http")` run every request through extra tasks and streams, at a cost measured
in docs/performance.md.
"""

import logging
import re
import secrets
import time

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logging import RequestLog, current_request_id
from app.core.metrics import Metrics

REQUEST_ID_HEADER = b"x-request-id"
# An incoming id is kept when it looks like the ids proxies and tracers send (UUIDs, hex, ULIDs,
# W3C trace ids): bounded, and nothing that could forge a log field or break a header.
SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
# The route of a request that matched none (404s, redirects to the path with a slash): one label,
# whatever the path, so that scanners cannot inflate the metrics or the logs.
UNMATCHED_ROUTE = "unmatched"

logger = logging.getLogger(__name__)
request_log = RequestLog("app.request")


def new_request_id() -> str:
    return secrets.token_hex(16)


def incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            return value.decode("ascii") if SANE_REQUEST_ID.fullmatch(value) else None
    return None


def route_template(scope: Scope) -> str:
    """The path template of the route that answered (`/recipe/{recipe_id}`), as the router left
    it in the scope."""
    route = scope.get("route")
    if route is None and "endpoint" in scope:
        # FastAPI's router names only its own routes in the scope; the docs' pages and assets
        # (a plain Route and a Mount) leave their endpoint.
        endpoint = scope["endpoint"]
        route = next(
            (
                candidate
                for candidate in scope["router"].routes
                if endpoint
                in (getattr(candidate, "endpoint", None), getattr(candidate, "app", None))
            ),
            None,
        )
    template: str | None = getattr(route, "path_format", None)
    return template or UNMATCHED_ROUTE


def level_for(status: int) -> int:
    if status < 500:
        return logging.INFO
    # An outage answers 503 by design; anything else is a fault to look at.
    return logging.WARNING if status == 503 else logging.ERROR


class RequestObservability:
    """Each HTTP request gets an id (the client's `X-Request-ID` when sane, else a new one),
    returned in the response's `X-Request-ID` and set for every log line written while serving
    it; when answered, one line on `app.request` and the request metrics.

    An exception that escapes the app is logged here, with its traceback and the request's id,
    and answered with Starlette's bare 500.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics | None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = incoming_request_id(scope) or new_request_id()
        id_header = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status = 500  # until a response starts
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        token = current_request_id.set(request_id)
        metrics = self.metrics
        if metrics is not None:
            metrics.in_flight += 1
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if response_started:
                raise
            logger.exception("unhandled error")
            await PlainTextResponse("Internal Server Error", 500)(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope)
            method = scope["method"]
            if metrics is not None:
                metrics.in_flight -= 1
                metrics.request_answered(route, method, status, seconds)
            level = level_for(status)
            if request_log.enabled_for(level):
                client = scope.get("client")
                request_log.write(
                    level,
                    f"{method} {route} {status}",
                    {
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                        "client": client[0] if client else None,
                    },
                )
            current_request_id.reset(token)
