from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, status

from app.api.deps import database
from app.api.errors import DATABASE_UNAVAILABLE_RESPONSE, UNREADABLE_BODY
from app.crud import user as crud
from app.schemas.errors import ErrorMessage
from app.schemas.types import MAX_ID
from app.schemas.user import User, UserCreate

router = APIRouter(tags=["users"], responses=DATABASE_UNAVAILABLE_RESPONSE)


@router.post(
    "/user/",
    status_code=status.HTTP_201_CREATED,
    response_model=User,
    responses={
        409: {"model": ErrorMessage, "description": "Email already registered"},
        **UNREADABLE_BODY,
    },
)
async def create_user(user_in: UserCreate, request: Request) -> Any:
    """Register a user; the email is compared case-insensitively."""
    return await database(request).write(crud.create_user, user_in)


@router.get("/user/{user_id}", response_model=User, responses={404: {"model": ErrorMessage}})
async def fetch_user(
    user_id: Annotated[int, Path(ge=1, le=MAX_ID, examples=[1])], request: Request
) -> Any:
    return await database(request).read(crud.get_user, user_id)
