from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator

from app.api.deps import database
from app.api.errors import DATABASE_UNAVAILABLE_RESPONSE
from app.core.config import Settings
from app.core.errors import LoginFailed, TooManyLoginFailures
from app.core.security import TokenSigner, verify_password
from app.crud import login as crud
from app.crud.login import LoginState
from app.schemas.errors import ErrorMessage
from app.schemas.types import MAX_PASSWORD_LENGTH, MAX_TEXT_LENGTH, reject_unstorable_text
from app.schemas.user import Token

router = APIRouter(tags=["login"], responses=DATABASE_UNAVAILABLE_RESPONSE)

FormText = Annotated[str, AfterValidator(reject_unstorable_text)]


def _retry_after(state: LoginState, now: datetime, settings: Settings) -> int | None:
    """Seconds until the account and the client may try again; None if they may now."""
    window = timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    waits = [
        (failures.oldest + window - now).total_seconds()
        for failures, limit in (
            (state.by_account, settings.LOGIN_MAX_FAILURES),
            (state.by_client, settings.LOGIN_MAX_FAILURES_PER_CLIENT),
        )
        if failures.count >= limit and failures.oldest is not None
    ]
    return max(1, int(max(waits)) + 1) if waits else None


@router.post(
    "/login/access-token",
    response_model=Token,
    responses={
        400: {"model": ErrorMessage, "description": "Incorrect email or password"},
        429: {"model": ErrorMessage, "description": "Too many failed logins; see Retry-After"},
    },
)
async def login_access_token(
    request: Request,
    username: Annotated[FormText, Form(min_length=1, max_length=MAX_TEXT_LENGTH)],
    password: Annotated[FormText, Form(min_length=1, max_length=MAX_PASSWORD_LENGTH)],
    grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
) -> Any:
    """OAuth2 password flow: `username` is the email. Failed logins are limited per account and
    per client address (LOGIN_MAX_FAILURES, LOGIN_MAX_FAILURES_PER_CLIENT within
    LOGIN_FAILURE_WINDOW_SECONDS); an unknown account and a wrong password get the same answer
    in the same time."""
    settings: Settings = request.app.state.settings
    db = database(request)
    account = username.strip().lower()
    client = request.client.host if request.client else "unknown"
    now = datetime.now(UTC)
    since = now - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    state = await db.read(crud.login_state, account, client, since)
    retry_after = _retry_after(state, now, settings)
    if retry_after is not None:
        raise TooManyLoginFailures(retry_after)
    if not await run_in_threadpool(verify_password, password, state.hashed_password):
        await db.write(crud.record_failure, account, client, now, since)
        raise LoginFailed()
    if state.by_account.count:
        await db.write(crud.clear_failures, account)
    assert state.user_id is not None  # a password matched, so the account exists
    signer: TokenSigner = request.app.state.tokens
    return Token(access_token=signer.issue(state.user_id))
