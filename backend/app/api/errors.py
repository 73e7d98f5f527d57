"""Maps domain and database errors to HTTP responses, in one place."""

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.core.errors import AppError, InvalidReference

logger = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "Database unavailable, try again shortly"


async def app_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    if isinstance(exc, InvalidReference):
        # Same shape as FastAPI's own 422s, so clients parse one format.
        body = {
            "detail": [{"loc": ["body", exc.field], "msg": exc.detail, "type": "invalid_reference"}]
        }
        return JSONResponse(body, status_code=exc.status_code)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)


async def database_unavailable_handler(request: Request, exc: Exception) -> JSONResponse:
    """A lost connection, a refused one, a timeout or a locked SQLite file: retryable, so 503.

    The driver's message can name hosts and users; it goes to the log, never to the client.
    """
    logger.warning(
        "database error on %s %s: %s", request.method, request.url.path, exc.__class__.__name__
    )
    return JSONResponse(
        {"detail": DATABASE_UNAVAILABLE}, status_code=503, headers={"Retry-After": "1"}
    )


def is_connection_problem(exc: DBAPIError) -> bool:
    return isinstance(exc, OperationalError) or exc.connection_invalidated


async def database_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if is_connection_problem(exc):
        return await database_unavailable_handler(request, exc)
    logger.exception("database error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "Internal server error"}, status_code=500)


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, app_error_handler)
    app.add_exception_handler(DBAPIError, database_error_handler)
    app.add_exception_handler(PoolTimeoutError, database_unavailable_handler)
