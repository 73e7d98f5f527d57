"""GET /search/ on SQLite and PostgreSQL: matching and limiting are done in SQL."""

import pytest
from fastapi.testclient import TestClient

from tests.utils.recipe import create_recipe


def add_recipes(client: TestClient, *labels: str) -> list[int]:
    return [create_recipe(client, label=label)["id"] for label in labels]


def found_labels(client: TestClient, **params: str | int) -> list[str]:
    response = client.get("/search/", params=params)
    assert response.status_code == 200, response.text
    return [recipe["label"] for recipe in response.json()["results"]]


def test_search_without_keyword_lists_recipes_by_id(client: TestClient) -> None:
    ids = add_recipes(client, "Stew", "Curry", "Soup")

    response = client.get("/search/")

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["id"], r["label"]) for r in results] == list(
        zip(ids, ["Stew", "Curry", "Soup"], strict=True)
    )
    assert results[0] == client.get(f"/recipe/{ids[0]}").json()


def test_search_on_empty_database_returns_no_results(client: TestClient) -> None:
    response = client.get("/search/", params={"keyword": "chicken"})

    assert response.status_code == 200, response.text
    assert response.json() == {"results": []}


@pytest.mark.parametrize("keyword", ["", "a", "ab"])
def test_search_rejects_keyword_shorter_than_three_characters(
    client: TestClient, keyword: str
) -> None:
    response = client.get("/search/", params={"keyword": keyword})

    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [["query", "keyword"]]


def test_search_is_a_case_insensitive_substring_match_on_label(client: TestClient) -> None:
    add_recipes(client, "Chicken Vesuvio", "Beef Stew", "roast CHICKEN", "Spatchcocked chicken")

    assert found_labels(client, keyword="chicken") == [
        "Chicken Vesuvio",
        "roast CHICKEN",
        "Spatchcocked chicken",
    ]
    assert found_labels(client, keyword="ICKE") == found_labels(client, keyword="chicken")
    assert found_labels(client, keyword="f st") == ["Beef Stew"]
    assert found_labels(client, keyword="lamb") == []


def test_search_ignores_case_beyond_ascii(client: TestClient) -> None:
    """SQLite's own lower() folds ASCII only; the app's engine makes it match PostgreSQL."""
    add_recipes(client, "CRÈME BRÛLÉE", "Crème fraîche tart", "Ψάρι ΠΛΑΚΙ")

    assert found_labels(client, keyword="crème") == ["CRÈME BRÛLÉE", "Crème fraîche tart"]
    assert found_labels(client, keyword="BRÛL") == ["CRÈME BRÛLÉE"]
    assert found_labels(client, keyword="πλακι") == ["Ψάρι ΠΛΑΚΙ"]


def test_search_matches_label_only_not_source_or_url(client: TestClient) -> None:
    create_recipe(
        client,
        label="Beef Stew",
        source="Chicken Weekly",
        url="https://chicken.example.com/stew",
    )

    assert found_labels(client, keyword="chicken") == []


def test_search_matches_percent_literally(client: TestClient) -> None:
    add_recipes(client, "1000 rye", "100% rye", "100 rye")

    assert found_labels(client, keyword="100%") == ["100% rye"]
    assert found_labels(client, keyword="0% r") == ["100% rye"]
    assert found_labels(client, keyword="%%%") == []


def test_search_matches_underscore_literally(client: TestClient) -> None:
    add_recipes(client, "axb", "a_b", "ab")

    assert found_labels(client, keyword="a_b") == ["a_b"]
    assert found_labels(client, keyword="___") == []


def test_search_matches_backslash_literally(client: TestClient) -> None:
    add_recipes(client, r"C:\temp stew", "C:temp stew", r"50\% off", "50% off", r"a\_b", "a_b")

    assert found_labels(client, keyword=r":\te") == [r"C:\temp stew"]
    assert found_labels(client, keyword=r"0\%") == [r"50\% off"]
    assert found_labels(client, keyword=r"a\_b") == [r"a\_b"]
    assert found_labels(client, keyword="\\\\\\") == []


def test_search_returns_ten_results_by_default(client: TestClient) -> None:
    ids = add_recipes(client, *[f"Stew {n:02d}" for n in range(12)])

    response = client.get("/search/", params={"keyword": "stew"})

    assert response.status_code == 200, response.text
    assert [recipe["id"] for recipe in response.json()["results"]] == ids[:10]


@pytest.mark.parametrize("max_results", [1, 5, 100])
def test_search_returns_at_most_max_results_lowest_ids_first(
    client: TestClient, max_results: int
) -> None:
    ids = add_recipes(client, *[f"Stew {n:02d}" for n in range(12)])

    response = client.get("/search/", params={"keyword": "stew", "max_results": max_results})

    assert response.status_code == 200, response.text
    assert [recipe["id"] for recipe in response.json()["results"]] == ids[:max_results]


@pytest.mark.parametrize("max_results", ["0", "101", "-1", "1000000000000", "ten"])
def test_search_rejects_max_results_outside_1_to_100(client: TestClient, max_results: str) -> None:
    response = client.get("/search/", params={"keyword": "stew", "max_results": max_results})

    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [["query", "max_results"]]


def test_search_matches_beyond_first_page(client: TestClient) -> None:
    """The tutorial took the first N rows and filtered them in Python, missing later matches."""
    add_recipes(client, *[f"Beef Stew {n}" for n in range(30)])
    matching = add_recipes(client, "Chicken Vesuvio", "Chicken Paprikash", "Chicken Curry")

    response = client.get("/search/", params={"keyword": "chicken"})

    assert response.status_code == 200, response.text
    assert [recipe["id"] for recipe in response.json()["results"]] == matching, response.text
    assert found_labels(client, keyword="chicken", max_results=2) == [
        "Chicken Vesuvio",
        "Chicken Paprikash",
    ]


@pytest.mark.parametrize("keyword", ["stew\x00", "x" * 257], ids=["nul", "too-long"])
def test_search_rejects_unstorable_keyword_with_422_not_500(
    client: TestClient, keyword: str
) -> None:
    response = client.get("/search/", params={"keyword": keyword})

    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [["query", "keyword"]]


def test_search_folds_case_but_not_accents_on_every_database(client: TestClient) -> None:
    """The same answer from PostgreSQL, SQLite and MariaDB, whose default collations would fold
    accents (`utf8mb4_general_ci`): only case is ignored."""
    add_recipes(client, "Crème Brûlée", "Creme Caramel")

    assert found_labels(client, keyword="CRÈME") == ["Crème Brûlée"]
    assert found_labels(client, keyword="creme") == ["Creme Caramel"]
    assert found_labels(client, keyword="brulee") == []
