from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    bindparam,
    delete,
    exists,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from app.core.errors import Forbidden, InvalidReference, NotAuthenticated, NotFound
from app.db.database import update_returning
from app.models import Recipe, User
from app.schemas.recipe import RecipeCreate, RecipeUpdate

LIKE_ESCAPE = "\\"

recipe_table = Recipe.metadata.tables[Recipe.__tablename__]
user_table = User.metadata.tables[User.__tablename__]
# Built once, with bound parameters: a request then only binds its values (see app/crud).
RECIPE_BY_ID = select(recipe_table).where(recipe_table.c.id == bindparam("recipe_id"))
LATEST_RECIPES = select(recipe_table).order_by(recipe_table.c.id.desc()).limit(bindparam("limit"))
FIRST_RECIPES = select(recipe_table).order_by(recipe_table.c.id).limit(bindparam("limit"))
RECIPES_MATCHING = FIRST_RECIPES.where(
    recipe_table.c.label.ilike(bindparam("pattern"), escape=LIKE_ESCAPE)
)
INSERT_RECIPE = insert(recipe_table).returning(recipe_table)
PAGE_AFTER_ID = FIRST_RECIPES.where(recipe_table.c.id > bindparam("after_id"))


def _not_found(recipe_id: int) -> NotFound:
    return NotFound(f"Recipe with ID {recipe_id} not found")


def get_recipe(connection: Connection, recipe_id: int) -> Row[Any]:
    recipe = connection.execute(RECIPE_BY_ID, {"recipe_id": recipe_id}).first()
    if recipe is None:
        raise _not_found(recipe_id)
    return recipe


def latest_recipes(connection: Connection, limit: int = 10) -> Sequence[Row[Any]]:
    return connection.execute(LATEST_RECIPES, {"limit": limit}).all()


def recipe_page(connection: Connection, limit: int, after_id: int) -> dict[str, Any]:
    """Recipes by id after `after_id`: keyset pagination, so a page never shifts when rows are
    added or deleted before it. One row more than asked tells whether another page follows."""
    rows = connection.execute(PAGE_AFTER_ID, {"after_id": after_id, "limit": limit + 1}).all()
    page = rows[:limit]
    next_after_id = page[-1].id if len(rows) > limit else None
    return {"results": page, "next_after_id": next_after_id}


def escape_like(keyword: str) -> str:
    """Make `%`, `_` and the escape character match themselves in a LIKE pattern."""
    return (
        keyword.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


def search_recipes(connection: Connection, keyword: str | None, limit: int) -> Sequence[Row[Any]]:
    """Recipes whose label contains `keyword` (any case), lowest ids first; all of it in SQL."""
    if not keyword:
        return connection.execute(FIRST_RECIPES, {"limit": limit}).all()
    pattern = f"%{escape_like(keyword)}%"
    return connection.execute(RECIPES_MATCHING, {"pattern": pattern, "limit": limit}).all()


@contextmanager
def _submitter_must_exist(submitter_id: int | None) -> Iterator[None]:
    """The foreign key is what checks that `submitter_id` names a user.

    One statement instead of a SELECT before the write, and on SQLite the transaction starts
    with its write: no read lock to upgrade, so no "database is locked" under concurrent POSTs.
    """
    try:
        yield
    except IntegrityError as exc:
        if submitter_id is None:
            raise
        raise InvalidReference("submitter_id", f"User with ID {submitter_id} not found") from exc


def _is_superuser(caller_id: Any) -> ColumnElement[bool]:
    return exists().where(user_table.c.id == caller_id, user_table.c.is_superuser.is_(True))


def _submitter_or_superuser(caller_id: Any) -> ColumnElement[bool]:
    """Who may change or delete a recipe, as a condition of the statement that does it."""
    return or_(recipe_table.c.submitter_id == caller_id, _is_superuser(caller_id))


DELETE_RECIPE = (
    delete(recipe_table)
    .where(
        recipe_table.c.id == bindparam("recipe_id"),
        _submitter_or_superuser(bindparam("caller_id")),
    )
    .returning(recipe_table.c.id)
)
MAY_NOT_CHANGE = "Only the recipe's submitter or a superuser may change or delete it"
ONLY_SUPERUSERS_ASSIGN = "Only a superuser may submit or assign a recipe for another user"


def _refusal(connection: Connection, recipe_id: int, message: str) -> NotFound | Forbidden:
    """Why a guarded statement touched no row: no such recipe, or not the caller's to change."""
    found = connection.execute(RECIPE_BY_ID, {"recipe_id": recipe_id}).first()
    return _not_found(recipe_id) if found is None else Forbidden(message)


def create_recipe(connection: Connection, recipe_in: RecipeCreate, caller_id: int) -> Row[Any]:
    """Store a recipe submitted by the caller, or, for a superuser, by the user it names."""
    values = recipe_in.model_dump()
    submitter_id = values["submitter_id"] or caller_id
    if submitter_id != caller_id:
        if not connection.execute(select(_is_superuser(caller_id))).scalar():
            raise Forbidden(ONLY_SUPERUSERS_ASSIGN)
        with _submitter_must_exist(submitter_id):
            return connection.execute(INSERT_RECIPE, values).one()
    try:
        return connection.execute(INSERT_RECIPE, {**values, "submitter_id": caller_id}).one()
    except IntegrityError as exc:
        # The foreign key: the token is valid, but its user is gone.
        raise NotAuthenticated("Could not validate credentials") from exc


def update_recipe(
    connection: Connection, recipe_id: int, changes: RecipeUpdate, caller_id: int
) -> Row[Any]:
    """Set only the fields present in the payload; an empty one changes nothing. Handing the
    recipe to another submitter (or to none) is for superusers only."""
    values: dict[str, Any] = changes.model_dump(exclude_unset=True)
    hands_over = "submitter_id" in values and values["submitter_id"] != caller_id
    allowed = _is_superuser(caller_id) if hands_over else _submitter_or_superuser(caller_id)
    message = ONLY_SUPERUSERS_ASSIGN if hands_over else MAY_NOT_CHANGE
    if not values:
        recipe = connection.execute(RECIPE_BY_ID.where(allowed), {"recipe_id": recipe_id}).first()
    else:
        statement = update(recipe_table).where(recipe_table.c.id == recipe_id, allowed)
        with _submitter_must_exist(values.get("submitter_id")):
            recipe = update_returning(
                connection, statement.values(values), RECIPE_BY_ID, {"recipe_id": recipe_id}
            )
    if recipe is None:
        raise _refusal(connection, recipe_id, message)
    return recipe


def delete_recipe(connection: Connection, recipe_id: int, caller_id: int) -> None:
    params = {"recipe_id": recipe_id, "caller_id": caller_id}
    if connection.execute(DELETE_RECIPE, params).first() is None:
        raise _refusal(connection, recipe_id, MAY_NOT_CHANGE)
