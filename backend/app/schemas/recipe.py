from typing import Annotated

from pydantic import (
    AfterValidator,
    AnyUrl,
    BaseModel,
    ConfigDict,
    JsonValue,
    PlainSerializer,
    UrlConstraints,
)

from app.schemas.types import MAX_TEXT_LENGTH, DbId, Label, NotNull, Text

EXAMPLE_RECIPE: dict[str, JsonValue] = {
    "label": "Chicken Vesuvio",
    "source": "Serious Eats",
    "url": "http://www.seriouseats.com/recipes/2011/12/chicken-vesuvio-recipe.html",
}


def _url_as_text(value: AnyUrl) -> str:
    # Store what the client sent (normalised), not pydantic's Url object.
    text = str(value)
    if len(text) > MAX_TEXT_LENGTH:
        raise ValueError(f"URL must be at most {MAX_TEXT_LENGTH} characters")
    return text


RecipeUrl = Annotated[
    AnyUrl,
    UrlConstraints(max_length=MAX_TEXT_LENGTH, allowed_schemes=["http", "https"]),
    AfterValidator(_url_as_text),
    # The value is a str after the validator; without this, every model_dump() warns that it
    # expected an AnyUrl.
    PlainSerializer(str, return_type=str),
]


class RecipeCreate(BaseModel):
    """A new recipe. Its submitter is the caller; a superuser may name another user."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_RECIPE]})

    label: Label
    # The tutorial's payload has these fields; requiring them keeps clients explicit.
    source: Text | None
    url: RecipeUrl | None
    submitter_id: DbId | None = None


class RecipeUpdate(BaseModel):
    """Partial update: only the fields present in the payload change."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"label": "Chicken Vesuvio (v2)"}]}
    )

    label: Annotated[Label | None, NotNull] = None
    source: Text | None = None
    url: RecipeUrl | None = None
    submitter_id: DbId | None = None


class Recipe(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={"examples": [{"id": 1, **EXAMPLE_RECIPE, "submitter_id": 1}]},
    )

    id: int
    label: str
    source: str | None
    url: str | None
    submitter_id: int | None


class RecipeSearchResults(BaseModel):
    results: list[Recipe]


class RecipePage(BaseModel):
    """One page of every recipe by id; `next_after_id` asks for the next page, null at the end."""

    results: list[Recipe]
    next_after_id: int | None
