from sqlalchemy import Connection, Row, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from app.core.errors import Conflict
from app.models import User
from app.schemas.user import UserCreate

# Rows and Core statements built once, like the recipes (see crud/recipe.py).
UserRow = Row[int, str, str | None, str | None, bool]
user_table = User.metadata.tables[User.__tablename__]
USER_COLUMNS = (
    user_table.c.id,
    user_table.c.email,
    user_table.c.first_name,
    user_table.c.surname,
    user_table.c.is_superuser,
)
USER_BY_ID = select(*USER_COLUMNS).where(user_table.c.id == bindparam("user_id"))
INSERT_USER = insert(user_table).returning(*USER_COLUMNS)


def user_by_id(connection: Connection, user_id: int) -> UserRow | None:
    return connection.execute(USER_BY_ID, {"user_id": user_id}).first()


def create_user(connection: Connection, user_in: UserCreate) -> UserRow:
    """The unique constraint on the (lower-cased) email is what finds a taken address, also
    one taken by a concurrent request."""
    try:
        return connection.execute(INSERT_USER, user_in.model_dump()).one()
    except IntegrityError as exc:
        raise Conflict(f"A user with email {user_in.email} already exists") from exc
