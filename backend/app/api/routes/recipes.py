from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from pydantic import AfterValidator, StringConstraints

from app.api import errors
from app.api.deps import CallerId, PathId, database
from app.crud import recipe as crud
from app.schemas.recipe import Recipe, RecipeCreate, RecipePage, RecipeSearchResults, RecipeUpdate
from app.schemas.types import MAX_ID, MAX_TEXT_LENGTH, reject_unstorable_text

router = APIRouter(tags=["recipes"], responses=errors.DATABASE_UNAVAILABLE_RESPONSE)

# Constraints on the string itself, so that their messages speak of characters.
Keyword = Annotated[
    str,
    StringConstraints(min_length=3, max_length=MAX_TEXT_LENGTH),
    # Validated as part of the query, so a NUL in it is a 422 (raised in the body: a 500).
    AfterValidator(reject_unstorable_text),
]


@router.get("/recipe/{recipe_id}", response_model=Recipe, responses=errors.NOT_FOUND)
async def fetch_recipe(recipe_id: PathId, request: Request) -> Any:
    """One recipe by its id."""
    return await database(request).read(crud.get_recipe, recipe_id)


@router.get("/recipes/", response_model=RecipePage)
async def list_recipes(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> Any:
    """Every recipe by id, a page at a time: pass the previous page's `next_after_id` as
    `after_id` for the next one (it is null on the last page). Stable under inserts."""
    return await database(request).read(crud.recipe_page, limit, after_id)


@router.get("/search/", response_model=RecipeSearchResults)
async def search_recipes(
    request: Request,
    keyword: Annotated[Keyword | None, Query(examples=["chicken"])] = None,
    max_results: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Any:
    """Recipes whose label contains the keyword, ignoring case; `%` and `_` match themselves."""
    return {"results": await database(request).read(crud.search_recipes, keyword, max_results)}


@router.post(
    "/recipe/",
    status_code=status.HTTP_201_CREATED,
    response_model=Recipe,
    responses=errors.NEEDS_TOKEN | errors.UNREADABLE_BODY,
)
async def create_recipe(recipe_in: RecipeCreate, caller: CallerId, request: Request) -> Any:
    """Store a new recipe, submitted by the caller; a superuser may name another submitter."""
    return await database(request).write(crud.create_recipe, recipe_in, caller)


@router.delete(
    "/recipe/{recipe_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors.NOT_FOUND | errors.NEEDS_TOKEN,
)
async def delete_recipe(recipe_id: PathId, caller: CallerId, request: Request) -> None:
    """Delete a recipe: its submitter or a superuser."""
    await database(request).write(crud.delete_recipe, recipe_id, caller)


@router.patch("/recipe/{recipe_id}", response_model=Recipe, responses=errors.CHANGE_RESPONSES)
async def update_recipe(
    recipe_id: PathId, changes: RecipeUpdate, caller: CallerId, request: Request
) -> Any:
    """Change only the fields present in the payload: the recipe's submitter or a superuser."""
    return await database(request).write(crud.update_recipe, recipe_id, changes, caller)
