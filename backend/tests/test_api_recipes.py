"""GET/POST/PATCH/DELETE /recipe/ on SQLite and PostgreSQL (`client` runs each on both)."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from bench.servers import free_port
from tests.utils.recipe import INVALID_VALUES, create_recipe, invalid_value_id, recipe_payload
from tests.utils.user import Account, bearer


def error_locations(response: Any) -> list[list[Any]]:
    return [error["loc"] for error in response.json()["detail"]]


def test_get_recipe_returns_every_stored_field(client: TestClient, cook: Account) -> None:
    created = create_recipe(client)

    response = client.get(f"/recipe/{created['id']}")

    assert response.status_code == 200, response.text
    assert response.json() == {"id": created["id"], **recipe_payload(), "submitter_id": cook.id}


@pytest.mark.parametrize("recipe_id", [1, 999, 2_147_483_647])
def test_get_unknown_recipe_is_404_naming_the_id(client: TestClient, recipe_id: int) -> None:
    response = client.get(f"/recipe/{recipe_id}")

    assert response.status_code == 404, response.text
    assert response.json() == {"detail": f"Recipe with ID {recipe_id} not found"}


@pytest.mark.parametrize("recipe_id", ["0", "-1", "2147483648", "abc"])
def test_get_recipe_with_impossible_id_is_422_not_500(client: TestClient, recipe_id: str) -> None:
    response = client.get(f"/recipe/{recipe_id}")

    assert response.status_code == 422, response.text


# A serializer warning (the url stored as str, typed AnyUrl) would surface here as a 500.
@pytest.mark.filterwarnings("error::UserWarning")
def test_create_recipe_returns_201_and_stores_it(client: TestClient, cook: Account) -> None:
    response = client.post("/recipe/", json=recipe_payload())

    assert response.status_code == 201, response.text
    created = response.json()
    assert isinstance(created["id"], int), created
    assert created == {"id": created["id"], **recipe_payload(), "submitter_id": cook.id}
    stored = client.get(f"/recipe/{created['id']}")
    assert stored.status_code == 200, stored.text
    assert stored.json() == created


def test_create_recipe_accepts_null_optional_values(client: TestClient) -> None:
    created = create_recipe(client, source=None, url=None)

    stored = client.get(f"/recipe/{created['id']}").json()
    assert (stored["source"], stored["url"]) == (None, None), stored


def test_create_recipe_stores_256_characters_of_any_script(client: TestClient) -> None:
    """The limit is in characters, not bytes: PostgreSQL's varchar(256) must accept it all."""
    label = "é" * 255 + "🍲"
    source = "ß" * 256
    url = "https://example.com/" + "a" * (256 - len("https://example.com/"))

    created = create_recipe(client, label=label, source=source, url=url)

    stored = client.get(f"/recipe/{created['id']}").json()
    assert (stored["label"], stored["source"], stored["url"]) == (label, source, url), stored


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/stew",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "mailto:cook@example.com",
        "example.com/stew",
        "not a url",
        "",
    ],
)
def test_create_recipe_rejects_url_that_is_not_http(client: TestClient, url: str) -> None:
    response = client.post("/recipe/", json=recipe_payload(url=url))

    assert response.status_code == 422, response.text
    assert ["body", "url"] in error_locations(response), response.text
    assert client.get("/search/").json() == {"results": []}


@pytest.mark.parametrize("field", ["label", "source", "url"])
def test_create_recipe_rejects_missing_field(client: TestClient, field: str) -> None:
    payload = recipe_payload()
    del payload[field]

    response = client.post("/recipe/", json=payload)

    assert response.status_code == 422, response.text
    assert ["body", field] in error_locations(response), response.text


@pytest.mark.parametrize(("field", "value"), INVALID_VALUES, ids=invalid_value_id)
def test_create_recipe_rejects_invalid_value(client: TestClient, field: str, value: object) -> None:
    response = client.post("/recipe/", json=recipe_payload(**{field: value}))

    assert response.status_code == 422, response.text
    assert ["body", field] in error_locations(response), response.text
    assert client.get("/search/").json() == {"results": []}


def test_create_recipe_rejects_null_label(client: TestClient) -> None:
    response = client.post("/recipe/", json=recipe_payload(label=None))

    assert response.status_code == 422, response.text
    assert ["body", "label"] in error_locations(response), response.text


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"label": "bad \\ud800", "source": null, "url": null, "submitter_id": null}', "label"),
        ('{"label": NaN, "source": null, "url": null, "submitter_id": null}', "label"),
        ('{"label": "Stew", "source": null, "url": null, "submitter_id": NaN}', "submitter_id"),
        ('{"label": "Stew", "source": null, "url": null, "submitter_id": 1e400}', "submitter_id"),
    ],
    ids=["lone-surrogate", "nan-label", "nan-id", "infinite-id"],
)
def test_recipe_payload_json_cannot_store_is_422_not_500(
    client: TestClient, method: str, body: str, field: str
) -> None:
    """Python's JSON parser accepts these; the 422 that echoes them back must still encode."""
    existing = create_recipe(client)
    path = "/recipe/" if method == "POST" else f"/recipe/{existing['id']}"

    response = client.request(
        method, path, content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422, response.text
    assert ["body", field] in error_locations(response), response.text
    assert client.get(f"/recipe/{existing['id']}").json() == existing


def test_create_recipe_rejects_unknown_submitter(
    client: TestClient, anonymous: TestClient, superuser: Account
) -> None:
    """Only a superuser may name a submitter (test_auth.py); a user who does not exist is 422."""
    response = anonymous.post(
        "/recipe/", json=recipe_payload(submitter_id=4242), headers=superuser.headers
    )

    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert [error["loc"] for error in errors] == [["body", "submitter_id"]], errors
    assert "4242" in errors[0]["msg"], errors
    assert client.get("/search/").json() == {"results": []}


def test_create_recipe_rejects_unknown_field(client: TestClient) -> None:
    response = client.post("/recipe/", json=recipe_payload(id=77))

    assert response.status_code == 422, response.text
    assert ["body", "id"] in error_locations(response), response.text


def test_patch_changes_only_the_given_fields(client: TestClient) -> None:
    created = create_recipe(client)

    response = client.patch(f"/recipe/{created['id']}", json={"label": "Irish Stew"})

    assert response.status_code == 200, response.text
    expected = {**created, "label": "Irish Stew"}
    assert response.json() == expected
    assert client.get(f"/recipe/{created['id']}").json() == expected


@pytest.mark.filterwarnings("error::UserWarning")
def test_patch_can_change_every_field_and_clear_nullable_ones(
    client: TestClient, anonymous: TestClient, cook: Account, superuser: Account
) -> None:
    """A superuser's PATCH: only a superuser may change the submitter (test_auth.py)."""
    created = create_recipe(client)
    changes = {"source": "Chef", "url": "http://example.org/x", "submitter_id": superuser.id}
    nulls = {"source": None, "url": None, "submitter_id": None}
    path = f"/recipe/{created['id']}"

    moved = anonymous.patch(path, json=changes, headers=superuser.headers)
    cleared = anonymous.patch(path, json=nulls, headers=superuser.headers)

    assert moved.status_code == 200, moved.text
    assert moved.json() == {**created, **changes}
    assert cleared.status_code == 200, cleared.text
    assert client.get(f"/recipe/{created['id']}").json() == {**created, **nulls}


def test_patch_with_empty_body_changes_nothing(client: TestClient) -> None:
    created = create_recipe(client)

    response = client.patch(f"/recipe/{created['id']}", json={})

    assert response.status_code == 200, response.text
    assert response.json() == created


@pytest.mark.parametrize(("field", "value"), INVALID_VALUES, ids=invalid_value_id)
def test_patch_rejects_invalid_value_and_keeps_the_recipe(
    client: TestClient, field: str, value: object
) -> None:
    created = create_recipe(client)

    response = client.patch(f"/recipe/{created['id']}", json={field: value})

    assert response.status_code == 422, response.text
    assert ["body", field] in error_locations(response), response.text
    assert client.get(f"/recipe/{created['id']}").json() == created


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"label": None}, "label"), ({"submitter_id": 4242}, "submitter_id"), ({"id": 5}, "id")],
)
def test_patch_rejects_null_label_unknown_submitter_and_unknown_field(
    client: TestClient,
    anonymous: TestClient,
    superuser: Account,
    changes: dict[str, Any],
    field: str,
) -> None:
    created = create_recipe(client)

    response = anonymous.patch(f"/recipe/{created['id']}", json=changes, headers=superuser.headers)

    assert response.status_code == 422, response.text
    assert ["body", field] in error_locations(response), response.text
    assert client.get(f"/recipe/{created['id']}").json() == created


def test_patch_unknown_recipe_is_404(client: TestClient) -> None:
    response = client.patch("/recipe/999", json={"label": "Irish Stew"})

    assert response.status_code == 404, response.text
    assert response.json() == {"detail": "Recipe with ID 999 not found"}


def test_delete_recipe_is_204_then_get_is_404(client: TestClient) -> None:
    created = create_recipe(client)
    kept = create_recipe(client, label="Kept")

    response = client.delete(f"/recipe/{created['id']}")

    assert response.status_code == 204, response.text
    assert response.content == b""
    gone = client.get(f"/recipe/{created['id']}")
    assert gone.status_code == 404, gone.text
    assert gone.json() == {"detail": f"Recipe with ID {created['id']} not found"}
    assert client.get(f"/recipe/{kept['id']}").json() == kept
    again = client.delete(f"/recipe/{created['id']}")
    assert again.status_code == 404, again.text


def test_delete_unknown_recipe_is_404(client: TestClient) -> None:
    response = client.delete("/recipe/999")

    assert response.status_code == 404, response.text
    assert response.json() == {"detail": "Recipe with ID 999 not found"}


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_recipe_routes_answer_503_not_500_when_database_is_unreachable(scheme: str) -> None:
    port = free_port()  # nothing listens there once the probe socket is closed
    settings = Settings(
        DATABASE_URL=f"{scheme}://app:s3cret@127.0.0.1:{port}/recipes",
        _env_file=None,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        fetched = client.get("/recipe/1")
        created = client.post("/recipe/", json=recipe_payload(), headers=bearer(app, 1))

    for response in (fetched, created):
        assert response.status_code == 503, response.text
        assert response.json() == {"detail": "Database unavailable, try again shortly"}
        assert "s3cret" not in response.text


# --- the list -------------------------------------------------------------------------------


def test_list_pages_through_every_recipe_by_id(client: TestClient, anonymous: TestClient) -> None:
    ids = [create_recipe(client, label=f"Stew {n}")["id"] for n in range(5)]

    first = anonymous.get("/recipes/", params={"limit": 2})
    second = anonymous.get(
        "/recipes/", params={"limit": 2, "after_id": first.json()["next_after_id"]}
    )
    last = anonymous.get(
        "/recipes/", params={"limit": 2, "after_id": second.json()["next_after_id"]}
    )

    pages = [first.json(), second.json(), last.json()]
    assert [[r["id"] for r in page["results"]] for page in pages] == [ids[:2], ids[2:4], ids[4:]]
    assert [page["next_after_id"] for page in pages] == [ids[1], ids[3], None]
    assert pages[0]["results"][0] == client.get(f"/recipe/{ids[0]}").json()


def test_list_defaults_to_ten_from_the_start(client: TestClient) -> None:
    ids = [create_recipe(client, label=f"Stew {n}")["id"] for n in range(11)]

    page = client.get("/recipes/").json()

    assert [r["id"] for r in page["results"]] == ids[:10]
    assert page["next_after_id"] == ids[9]


def test_list_pages_are_stable_under_inserts_and_deletes(client: TestClient) -> None:
    """Keyset pagination: rows added or removed before the cursor shift nothing after it."""
    ids = [create_recipe(client, label=f"Stew {n}")["id"] for n in range(4)]
    first = client.get("/recipes/", params={"limit": 2}).json()

    client.delete(f"/recipe/{ids[0]}")
    added = create_recipe(client, label="Added meanwhile")["id"]
    rest = client.get("/recipes/", params={"after_id": first["next_after_id"]}).json()

    assert [r["id"] for r in rest["results"]] == [ids[2], ids[3], added]
    assert rest["next_after_id"] is None


def test_list_of_an_empty_database_is_empty(client: TestClient) -> None:
    assert client.get("/recipes/").json() == {"results": [], "next_after_id": None}


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"after_id": -1}, {"after_id": 2**31}],
    ids=str,
)
def test_list_rejects_limits_and_cursors_out_of_range(
    client: TestClient, params: dict[str, int | str]
) -> None:
    response = client.get("/recipes/", params=params)

    assert response.status_code == 422, response.text
