"""Recipes for tests: one valid payload, changed only in what a test is about."""

from typing import Any

from fastapi.testclient import TestClient

from tests.utils import created

URL = "https://example.com/recipes/stew"


def recipe_payload(**overrides: Any) -> dict[str, Any]:
    """A valid POST /recipe/ body, as a submitter sends it (the caller becomes the submitter);
    `overrides` replace or add fields."""
    payload: dict[str, Any] = {"label": "Beef Stew", "source": "Grandma", "url": URL}
    payload.update(overrides)
    return payload


def create_recipe(client: TestClient, **overrides: Any) -> dict[str, Any]:
    """POST a recipe through the API; returns the 201's body."""
    return created(client.post("/recipe/", json=recipe_payload(**overrides)))


# One invalid value per field and kind of mistake: POST and PATCH must each answer 422 naming the
# field, and store nothing (tests/test_api_recipes.py). A new field adds its own.
INVALID_VALUES: list[tuple[str, object]] = [
    ("label", ""),
    ("label", "x" * 257),
    ("label", "nul\x00byte"),
    ("source", "x" * 257),
    ("source", "nul\x00byte"),
    ("url", "ftp://example.com/stew"),
    ("url", "https://example.com/" + "a" * 237),
    ("submitter_id", 0),
    ("submitter_id", 2**31),
]


def invalid_value_id(value: object) -> str:
    """A short test id for an INVALID_VALUES entry."""
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:12]}...({len(text)} chars)"
