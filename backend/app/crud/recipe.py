from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from app.core.errors import InvalidReference, NotFound
from app.models import Recipe
from app.schemas.recipe import RecipeCreate, RecipeUpdate

LIKE_ESCAPE = "\\"

recipe_table = Recipe.metadata.tables[Recipe.__tablename__]
# Built once, with bound parameters: a request then only binds its values (see app/crud).
RECIPE_BY_ID = select(recipe_table).where(recipe_table.c.id == bindparam("recipe_id"))
LATEST_RECIPES = select(recipe_table).order_by(recipe_table.c.id.desc()).limit(bindparam("limit"))
FIRST_RECIPES = select(recipe_table).order_by(recipe_table.c.id).limit(bindparam("limit"))
RECIPES_MATCHING = FIRST_RECIPES.where(
    recipe_table.c.label.ilike(bindparam("pattern"), escape=LIKE_ESCAPE)
)
INSERT_RECIPE = insert(recipe_table).returning(recipe_table)
DELETE_RECIPE = (
    delete(recipe_table)
    .where(recipe_table.c.id == bindparam("recipe_id"))
    .returning(recipe_table.c.id)
)


def _not_found(recipe_id: int) -> NotFound:
    return NotFound(f"Recipe with ID {recipe_id} not found")


def get_recipe(connection: Connection, recipe_id: int) -> Row[Any]:
    recipe = connection.execute(RECIPE_BY_ID, {"recipe_id": recipe_id}).first()
    if recipe is None:
        raise _not_found(recipe_id)
    return recipe


def latest_recipes(connection: Connection, limit: int = 10) -> Sequence[Row[Any]]:
    return connection.execute(LATEST_RECIPES, {"limit": limit}).all()


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


def create_recipe(connection: Connection, recipe_in: RecipeCreate) -> Row[Any]:
    with _submitter_must_exist(recipe_in.submitter_id):
        return connection.execute(INSERT_RECIPE, recipe_in.model_dump()).one()


def update_recipe(connection: Connection, recipe_id: int, changes: RecipeUpdate) -> Row[Any]:
    """Set only the fields present in the payload; an empty one changes nothing."""
    values: dict[str, Any] = changes.model_dump(exclude_unset=True)
    if not values:
        return get_recipe(connection, recipe_id)
    statement = (
        update(recipe_table)
        .where(recipe_table.c.id == recipe_id)
        .values(values)
        .returning(recipe_table)
    )
    with _submitter_must_exist(values.get("submitter_id")):
        recipe = connection.execute(statement).first()
    if recipe is None:
        raise _not_found(recipe_id)
    return recipe


def delete_recipe(connection: Connection, recipe_id: int) -> None:
    if connection.execute(DELETE_RECIPE, {"recipe_id": recipe_id}).first() is None:
        raise _not_found(recipe_id)
