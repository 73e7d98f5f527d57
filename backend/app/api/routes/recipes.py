from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import AfterValidator

from app.api.deps import database
from app.api.errors import DATABASE_UNAVAILABLE_RESPONSE, UNREADABLE_BODY
from app.crud import recipe as crud
from app.schemas.errors import ErrorMessage
from app.schemas.recipe import Recipe, RecipeCreate, RecipeSearchResults, RecipeUpdate
from app.schemas.types import MAX_ID, MAX_TEXT_LENGTH, reject_unstorable_text

router = APIRouter(tags=["recipes"], responses=DATABASE_UNAVAILABLE_RESPONSE)

RecipeId = Annotated[int, Path(ge=1, le=MAX_ID, examples=[1])]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorMessage}}


@router.get("/recipe/{recipe_id}", response_model=Recipe, responses=NOT_FOUND)
async def fetch_recipe(recipe_id: RecipeId, request: Request) -> Any:
    """One recipe by its id."""
    return await database(request).read(crud.get_recipe, recipe_id)


@router.get("/search/", response_model=RecipeSearchResults)
async def search_recipes(
    request: Request,
    keyword: Annotated[
        # Validated as part of the query, so a NUL in it is a 422 (raised in the body: a 500).
        Annotated[str, AfterValidator(reject_unstorable_text)] | None,
        Query(min_length=3, max_length=MAX_TEXT_LENGTH, examples=["chicken"]),
    ] = None,
    max_results: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Any:
    """Recipes whose label contains the keyword, ignoring case; `%` and `_` match themselves."""
    return {"results": await database(request).read(crud.search_recipes, keyword, max_results)}


@router.post(
    "/recipe/",
    status_code=status.HTTP_201_CREATED,
    response_model=Recipe,
    responses=UNREADABLE_BODY,
)
async def create_recipe(recipe_in: RecipeCreate, request: Request) -> Any:
    """Store a new recipe; `submitter_id` must name an existing user or be null."""
    return await database(request).write(crud.create_recipe, recipe_in)


@router.patch("/recipe/{recipe_id}", response_model=Recipe, responses=NOT_FOUND | UNREADABLE_BODY)
async def update_recipe(recipe_id: RecipeId, changes: RecipeUpdate, request: Request) -> Any:
    """Change only the fields present in the payload."""
    return await database(request).write(crud.update_recipe, recipe_id, changes)


@router.delete("/recipe/{recipe_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_recipe(recipe_id: RecipeId, request: Request) -> None:
    await database(request).write(crud.delete_recipe, recipe_id)
