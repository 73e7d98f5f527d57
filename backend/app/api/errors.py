"""Maps domain and database errors to HTTP responses, in one place."""

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from app.core.errors import AppError, InvalidReference, NotAuthenticated, TooManyLoginFailures
from app.core.metrics import Metrics
from app.db.errors import database_unavailable
from app.schemas.errors import ErrorMessage

logger = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "Database unavailable, try again shortly"

# FastAPI answers 400, not 422, when a body is not UTF-8 text at all; routes that read a body
# declare it, so the published schema covers every status a client can get.
UNREADABLE_BODY: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorMessage, "description": "The body could not be read as UTF-8 JSON"}
}
# Every route that needs the database may answer this during an outage (see the handlers below).
DATABASE_UNAVAILABLE_RESPONSE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorMessage, "description": "Database unreachable or too slow; retry shortly"}
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorMessage}}
# Routes that need a bearer token.
NEEDS_TOKEN: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorMessage, "description": "No token, or one that is invalid or expired"},
    403: {"model": ErrorMessage, "description": "The caller may not do this"},
}
# A route that changes a resource named in its path, with a body.
CHANGE_RESPONSES = NOT_FOUND | NEEDS_TOKEN | UNREADABLE_BODY


async def app_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    if isinstance(exc, InvalidReference):
        # Same shape as FastAPI's own 422s, so clients parse one format.
        body = {
            "detail": [{"loc": ["body", exc.field], "msg": exc.detail, "type": "invalid_reference"}]
        }
        return JSONResponse(body, status_code=exc.status_code)
    headers: dict[str, str] = {}
    if isinstance(exc, NotAuthenticated):
        headers["WWW-Authenticate"] = "Bearer"  # RFC 6750
    if isinstance(exc, TooManyLoginFailures):
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


async def starlette_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own 4xx (404, 405, 413) in the API's JSON shape. A 405 lists every method
    the path has: Starlette names only those of the first route matching the path."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        methods = sorted(
            {
                method
                for route in request.app.router.routes
                if route.matches(request.scope)[0] is not Match.NONE
                for method in getattr(route, "methods", None) or ()
            }
        )
        exc = HTTPException(405, exc.detail, headers={"Allow": ", ".join(methods)})
    response = await http_exception_handler(request, exc)
    assert isinstance(response, JSONResponse)
    return response


async def database_unavailable_handler(request: Request, exc: Exception) -> JSONResponse:
    """A lost connection, a refused one, a timeout or a locked SQLite file: retryable, so 503.

    The driver's message can name hosts and users; it goes to the log (on the request's id),
    never to the client.
    """
    # "pool": no connection or database thread came free in time, this worker is saturated;
    # "database": the database refused, dropped or timed out the work.
    cause = "pool" if isinstance(exc, PoolTimeoutError) else "database"
    logger.warning(
        "database unavailable (%s): %s",
        exc.__class__.__name__,
        _reason(request, exc),
        extra={"cause": cause},
    )
    metrics: Metrics | None = request.app.state.metrics
    if metrics is not None:
        metrics.database_unavailable.labels(cause).inc()
    return JSONResponse(
        {"detail": DATABASE_UNAVAILABLE}, status_code=503, headers={"Retry-After": "1"}
    )


def _reason(request: Request, exc: Exception) -> str:
    """The first line of the driver's message, without the database password should it appear."""
    original = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(original).strip().splitlines()
    reason = lines[0].strip() if lines else ""
    password = request.app.state.engine.url.password
    return reason.replace(password, "***") if password else reason


def _json_safe(value: Any) -> Any:
    """`value` as JSON can carry it: NaN and infinity as text, lone surrogates replaced."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_json_safe(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


async def request_validation_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own 422 body, made encodable: it echoes the client's input, and echoing a NaN,
    an infinity or a lone UTF-16 surrogate (all valid in Python's JSON parser) failed with a 500.
    """
    assert isinstance(exc, RequestValidationError)
    errors = [_without_secret_input(error) for error in exc.errors()]
    return JSONResponse({"detail": _json_safe(jsonable_encoder(errors))}, status_code=422)


def _without_secret_input(error: Any) -> Any:
    """A password that fails validation is not echoed back."""
    if any("password" in str(part) for part in error.get("loc", ())):
        return {key: value for key, value in error.items() if key not in ("input", "ctx")}
    return error


async def database_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if database_unavailable(exc):
        return await database_unavailable_handler(request, exc)
    logger.exception("database error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "Internal server error"}, status_code=500)


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, app_error_handler)
    app.add_exception_handler(HTTPException, starlette_error_handler)
    app.add_exception_handler(RequestValidationError, request_validation_error_handler)
    app.add_exception_handler(DBAPIError, database_error_handler)
    app.add_exception_handler(PoolTimeoutError, database_unavailable_handler)
