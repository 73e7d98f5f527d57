from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool

from app.api import errors
from app.api.deps import CallerId, OptionalCallerId, PathId, database
from app.core.config import Settings
from app.core.security import hash_password
from app.crud import user as crud
from app.schemas.errors import ErrorMessage
from app.schemas.user import User, UserCreate, UserUpdate

router = APIRouter(tags=["users"], responses=errors.DATABASE_UNAVAILABLE_RESPONSE)


async def _with_hashed_password(values: dict[str, Any]) -> dict[str, Any]:
    """The payload as stored: the password replaced by its hash, computed off the event loop
    (Argon2 takes tens of milliseconds by design) and before a database thread is taken."""
    password = values.pop("password", None)
    if password is not None:
        values["hashed_password"] = await run_in_threadpool(hash_password, password)
    return values


@router.post(
    "/user/",
    status_code=status.HTTP_201_CREATED,
    response_model=User,
    responses={
        409: {"model": ErrorMessage, "description": "Email already registered"},
        **errors.NEEDS_TOKEN,
        **errors.UNREADABLE_BODY,
    },
)
async def create_user(user_in: UserCreate, caller: OptionalCallerId, request: Request) -> Any:
    """Register a user; the email is compared case-insensitively. Open to anyone when
    registration is open (USERS_OPEN_REGISTRATION), else for superusers only."""
    values = await _with_hashed_password(user_in.model_dump())
    settings: Settings = request.app.state.settings
    return await database(request).write(
        crud.create_user, values, caller, settings.open_registration
    )


@router.get("/user/me", response_model=User, responses=errors.NEEDS_TOKEN)
async def fetch_me(caller: CallerId, request: Request) -> Any:
    """The caller."""
    return await database(request).read(crud.get_caller, caller)


@router.get("/user/{user_id}", response_model=User, responses=errors.NOT_FOUND | errors.NEEDS_TOKEN)
async def fetch_user(user_id: PathId, caller: CallerId, request: Request) -> Any:
    """A user: the user themself, or any user for a superuser."""
    return await database(request).read(crud.get_user, user_id, caller)


@router.patch("/user/{user_id}", response_model=User, responses=errors.CHANGE_RESPONSES)
async def update_user(
    user_id: PathId, changes: UserUpdate, caller: CallerId, request: Request
) -> Any:
    """Change names or set a password: the user themself, or a superuser (the way to let a user
    without a password log in)."""
    values = await _with_hashed_password(changes.model_dump(exclude_unset=True))
    return await database(request).write(crud.update_user, user_id, values, caller)
