from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import InvalidReference, NotFound
from app.models import Recipe
from app.schemas.recipe import RecipeCreate, RecipeUpdate

LIKE_ESCAPE = "\\"


def recipe_by_id(session: Session, recipe_id: int) -> Recipe | None:
    return session.get(Recipe, recipe_id)


def get_recipe(session: Session, recipe_id: int) -> Recipe:
    recipe = recipe_by_id(session, recipe_id)
    if recipe is None:
        raise NotFound(f"Recipe with ID {recipe_id} not found")
    return recipe


def latest_recipes(session: Session, limit: int = 10) -> Sequence[Recipe]:
    return session.scalars(select(Recipe).order_by(Recipe.id.desc()).limit(limit)).all()


def escape_like(keyword: str) -> str:
    """Make `%`, `_` and the escape character match themselves in a LIKE pattern."""
    return (
        keyword.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


def search_recipes(session: Session, keyword: str | None, limit: int) -> Sequence[Recipe]:
    """Recipes whose label contains `keyword` (any case), lowest ids first; all of it in SQL."""
    query = select(Recipe).order_by(Recipe.id).limit(limit)
    if keyword:
        query = query.where(Recipe.label.ilike(f"%{escape_like(keyword)}%", escape=LIKE_ESCAPE))
    return session.scalars(query).all()


def _flush_checking_submitter(session: Session, submitter_id: int | None) -> None:
    """Flush; the foreign key is what checks that `submitter_id` names a user.

    One statement instead of a SELECT before the write, and on SQLite the transaction starts
    with its write: no read lock to upgrade, so no "database is locked" under concurrent POSTs.
    """
    try:
        session.flush()
    except IntegrityError as exc:
        if submitter_id is None:
            raise
        raise InvalidReference("submitter_id", f"User with ID {submitter_id} not found") from exc


def create_recipe(session: Session, recipe_in: RecipeCreate) -> Recipe:
    recipe = Recipe(**recipe_in.model_dump())
    session.add(recipe)
    _flush_checking_submitter(session, recipe_in.submitter_id)
    return recipe


def update_recipe(session: Session, recipe_id: int, changes: RecipeUpdate) -> Recipe:
    recipe = get_recipe(session, recipe_id)
    values: dict[str, Any] = changes.model_dump(exclude_unset=True)
    for field, value in values.items():
        setattr(recipe, field, value)
    _flush_checking_submitter(session, values.get("submitter_id"))
    return recipe


def delete_recipe(session: Session, recipe_id: int) -> None:
    session.delete(get_recipe(session, recipe_id))
    session.flush()
