from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import InvalidReference, NotFound
from app.models import Recipe, User
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


def _check_submitter(session: Session, submitter_id: int | None) -> None:
    if submitter_id is not None and session.get(User, submitter_id) is None:
        raise InvalidReference("submitter_id", f"User with ID {submitter_id} not found")


def create_recipe(session: Session, recipe_in: RecipeCreate) -> Recipe:
    _check_submitter(session, recipe_in.submitter_id)
    recipe = Recipe(**recipe_in.model_dump())
    session.add(recipe)
    session.flush()
    return recipe


def update_recipe(session: Session, recipe_id: int, changes: RecipeUpdate) -> Recipe:
    recipe = get_recipe(session, recipe_id)
    values: dict[str, Any] = changes.model_dump(exclude_unset=True)
    if "submitter_id" in values:
        _check_submitter(session, values["submitter_id"])
    for field, value in values.items():
        setattr(recipe, field, value)
    session.flush()
    return recipe


def delete_recipe(session: Session, recipe_id: int) -> None:
    session.delete(get_recipe(session, recipe_id))
    session.flush()
