from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from app.core.errors import Conflict, Forbidden, NotAuthenticated, NotFound
from app.db.database import update_returning
from app.models import User

user_table = User.metadata.tables[User.__tablename__]
# Every column but the password hash, which never leaves the database through these.
PUBLIC_COLUMNS = [column for column in user_table.c if column.name != "hashed_password"]
USER_BY_ID = select(*PUBLIC_COLUMNS).where(user_table.c.id == bindparam("user_id"))
INSERT_USER = insert(user_table).returning(*PUBLIC_COLUMNS)
NOT_YOURS = "Only the user themself or a superuser may see or change a user"
SUPERUSERS_ONLY = "Registration is closed: only a superuser may create users"


def _user(connection: Connection, user_id: int) -> Row[Any] | None:
    return connection.execute(USER_BY_ID, {"user_id": user_id}).first()


def get_caller(connection: Connection, caller_id: int) -> Row[Any]:
    """The user a valid token names; gone since it was issued means not authenticated."""
    caller = _user(connection, caller_id)
    if caller is None:
        raise NotAuthenticated("Could not validate credentials")
    return caller


def _allowed_target(connection: Connection, user_id: int, caller_id: int) -> Row[Any]:
    """The user `user_id`, if the caller may see and change it: themself, or anyone for a
    superuser (who alone learns whether an id exists)."""
    caller = get_caller(connection, caller_id)
    if caller.id == user_id:
        return caller
    if not caller.is_superuser:
        raise Forbidden(NOT_YOURS)
    user = _user(connection, user_id)
    if user is None:
        raise NotFound(f"User with ID {user_id} not found")
    return user


def get_user(connection: Connection, user_id: int, caller_id: int) -> Row[Any]:
    return _allowed_target(connection, user_id, caller_id)


def create_user(
    connection: Connection, values: dict[str, Any], caller_id: int | None, open_registration: bool
) -> Row[Any]:
    """`values` with the password already hashed. When registration is closed, only a
    superuser may create users. The unique constraint on the (lower-cased) email is what finds
    a taken address, also one taken by a concurrent request."""
    if not open_registration:
        if caller_id is None:
            raise NotAuthenticated("Not authenticated")
        if not get_caller(connection, caller_id).is_superuser:
            raise Forbidden(SUPERUSERS_ONLY)
    try:
        return connection.execute(INSERT_USER, values).one()
    except IntegrityError as exc:
        raise Conflict(f"A user with email {values['email']} already exists") from exc


def update_user(
    connection: Connection, user_id: int, values: dict[str, Any], caller_id: int
) -> Row[Any]:
    """`values` with any new password already hashed; an empty payload changes nothing."""
    user = _allowed_target(connection, user_id, caller_id)
    if not values:
        return user
    statement = update(user_table).where(user_table.c.id == user_id).values(values)
    updated = update_returning(connection, statement, USER_BY_ID, {"user_id": user_id})
    assert updated is not None  # found above, and users are never deleted
    return updated
