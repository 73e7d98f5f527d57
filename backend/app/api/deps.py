"""What the routes take from the app: the worker's database and the caller's identity."""

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import OAuth2PasswordBearer

from app.core.errors import NotAuthenticated
from app.core.security import InvalidToken, TokenSigner
from app.db.database import Database
from app.schemas.types import MAX_ID

# auto_error=False: a missing token is answered by NotAuthenticated, in the API's one JSON shape.
bearer_token = OAuth2PasswordBearer(tokenUrl="/login/access-token", auto_error=False)


def database(request: Request) -> Database:
    """The worker's database, built in the lifespan: a route does its one unit of work with
    `await database(request).read(...)` or `.write(...)`.

    A plain call rather than a `Depends`: FastAPI's dependency resolution costs measurably more
    (docs/performance.md) for what is an attribute lookup.
    """
    db: Database = request.app.state.database
    return db


def _token_user_id(request: Request, token: str) -> int:
    signer: TokenSigner = request.app.state.tokens
    try:
        return signer.user_id(token)
    except InvalidToken:
        raise NotAuthenticated("Could not validate credentials") from None


async def caller_id(request: Request, token: Annotated[str | None, Depends(bearer_token)]) -> int:
    """The id of the user whose bearer token came with the request; 401 without a valid one.

    Only the signature and expiry are checked here, without the database: the unit of work
    that needs the caller checks that the user still exists. `async` although it never awaits:
    FastAPI runs a plain `def` dependency in a worker thread, a hop per request for a few
    microseconds of work.
    """
    if token is None:
        raise NotAuthenticated("Not authenticated")
    return _token_user_id(request, token)


async def optional_caller_id(
    request: Request, token: Annotated[str | None, Depends(bearer_token)]
) -> int | None:
    """As `caller_id`, for routes open to anonymous callers; a bad token is still a 401."""
    return None if token is None else _token_user_id(request, token)


CallerId = Annotated[int, Depends(caller_id)]
# An id in a path: a 32-bit key, so a larger number is a 422, not an overflow in the query.
PathId = Annotated[int, Path(ge=1, le=MAX_ID, examples=[1])]
OptionalCallerId = Annotated[int | None, Depends(optional_caller_id)]
