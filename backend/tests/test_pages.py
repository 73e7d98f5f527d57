"""GET / (the HTML page of the newest recipes), /docs and /openapi.json."""

import re
from typing import Any

from fastapi.testclient import TestClient

from app.schemas.recipe import EXAMPLE_RECIPE, RecipeCreate
from app.schemas.user import UserCreate
from tests.utils.recipe import create_recipe


def add_recipe(client: TestClient, label: str, source: str | None, url: str | None) -> int:
    recipe_id: int = create_recipe(client, label=label, source=source, url=url)["id"]
    return recipe_id


def test_home_page_says_so_when_there_are_no_recipes(client: TestClient) -> None:
    response = client.get("/")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html"), response.headers
    assert "No recipes yet." in response.text, response.text


def test_home_page_lists_the_ten_newest_recipes_newest_first(client: TestClient) -> None:
    for n in range(1, 12):
        add_recipe(client, f"Recipe {n:02d}", f"Source {n:02d}", f"https://example.com/r/{n:02d}")

    response = client.get("/")

    assert response.status_code == 200, response.text
    page = response.text
    assert "Recipe 01" not in page, page
    assert "https://example.com/r/01" not in page, page
    positions = [page.find(f"Recipe {n:02d}") for n in range(11, 1, -1)]
    assert -1 not in positions, page
    assert positions == sorted(positions), f"not newest first: {positions}\n{page}"


def test_home_page_links_each_recipe_its_original_and_the_list(client: TestClient) -> None:
    vesuvio = add_recipe(client, "Chicken Vesuvio", "Serious Eats", "https://example.com/vesuvio")
    toast = add_recipe(client, "Plain Toast", None, None)

    page = client.get("/").text

    assert f'<a href="/recipe/{vesuvio}">Chicken Vesuvio</a>' in page, page
    assert f'<a href="/recipe/{toast}">Plain Toast</a>' in page, page
    assert "(Serious Eats)" in page, page
    assert 'href="https://example.com/vesuvio"' in page, page
    assert '<a href="/recipes/">' in page, page
    links = re.findall(r'href="([^"]+)"', page)
    assert len(links) == 5, f"2 recipes, 1 original, the list and the docs expected: {links}"
    for link in links:
        if link.startswith("/"):
            assert client.get(link).status_code == 200, link


def test_home_page_escapes_html_in_recipe_text(client: TestClient) -> None:
    add_recipe(
        client,
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(2)">',
        'https://example.com/"><script>alert(3)</script>',
    )

    page = client.get("/").text

    assert "<script>" not in page, page
    assert "<img" not in page, page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, page
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in page, page


def test_docs_page_is_served(client: TestClient) -> None:
    response = client.get("/docs")

    assert response.status_code == 200, response.text
    assert "swagger" in response.text.lower(), response.text[:500]


def test_openapi_document_lists_every_route(client: TestClient) -> None:
    response = client.get("/openapi.json")

    assert response.status_code == 200, response.text
    paths = response.json()["paths"]
    assert set(paths) == {
        "/",
        "/recipe/{recipe_id}",
        "/recipes/",
        "/search/",
        "/recipe/",
        "/user/",
        "/user/me",
        "/user/{user_id}",
        "/login/access-token",
        "/health",
        "/health/ready",
    }, sorted(paths)
    assert set(paths["/recipe/{recipe_id}"]) == {"get", "patch", "delete"}


def test_openapi_document_has_example_payloads(client: TestClient) -> None:
    schemas: dict[str, Any] = client.get("/openapi.json").json()["components"]["schemas"]

    assert schemas["RecipeCreate"]["examples"] == [EXAMPLE_RECIPE], schemas["RecipeCreate"]
    user_examples = schemas["UserCreate"].get("examples")
    assert user_examples, schemas["UserCreate"]
    assert "@" in user_examples[0]["email"], user_examples
    assert "is_superuser" not in schemas["UserCreate"]["properties"], schemas["UserCreate"]
    assert schemas["RecipeUpdate"].get("examples"), schemas["RecipeUpdate"]
    assert schemas["Recipe"].get("examples"), schemas["Recipe"]
    # The examples are payloads the API accepts as they stand.
    RecipeCreate.model_validate(schemas["RecipeCreate"]["examples"][0])
    UserCreate.model_validate(user_examples[0])
