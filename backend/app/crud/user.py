from sqlalchemy import Connection, Row, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import Conflict
from app.models import User
from app.schemas.user import UserCreate

# Read as a row, like the recipes (see crud/recipe.py): a Core statement built once.
UserRow = Row[int, str, str | None, str | None, bool]
user_table = User.metadata.tables[User.__tablename__]
USER_BY_ID = select(
    user_table.c.id,
    user_table.c.email,
    user_table.c.first_name,
    user_table.c.surname,
    user_table.c.is_superuser,
).where(user_table.c.id == bindparam("user_id"))


def user_by_id(connection: Connection, user_id: int) -> UserRow | None:
    return connection.execute(USER_BY_ID, {"user_id": user_id}).first()


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
