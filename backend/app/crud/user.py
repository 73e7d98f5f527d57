from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import Conflict
from app.models import User
from app.schemas.user import UserCreate


def user_by_id(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.lower()))


def create_user(session: Session, user_in: UserCreate, *, is_superuser: bool = False) -> User:
    if user_by_email(session, user_in.email) is not None:
        raise Conflict(f"A user with email {user_in.email} already exists")
    user = User(**user_in.model_dump(), is_superuser=is_superuser)
    session.add(user)
    try:
        # A concurrent request may have taken the address since the check above.
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"A user with email {user_in.email} already exists") from exc
    return user
