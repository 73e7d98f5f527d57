from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from app.core.errors import Conflict, NotFound
from app.models import User
from app.schemas.user import UserCreate

user_table = User.metadata.tables[User.__tablename__]
USER_BY_ID = select(user_table).where(user_table.c.id == bindparam("user_id"))
INSERT_USER = insert(user_table).returning(user_table)


def get_user(connection: Connection, user_id: int) -> Row[Any]:
    user = connection.execute(USER_BY_ID, {"user_id": user_id}).first()
    if user is None:
        raise NotFound(f"User with ID {user_id} not found")
    return user


def create_user(connection: Connection, user_in: UserCreate) -> Row[Any]:
    """The unique constraint on the (lower-cased) email is what finds a taken address, also
    one taken by a concurrent request."""
    try:
        return connection.execute(INSERT_USER, user_in.model_dump()).one()
    except IntegrityError as exc:
        raise Conflict(f"A user with email {user_in.email} already exists") from exc
