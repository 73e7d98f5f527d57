"""POST /user/ and GET /user/{id} on SQLite and PostgreSQL."""

import pytest
from fastapi.testclient import TestClient


def test_create_user_returns_201_with_the_public_fields(client: TestClient) -> None:
    response = client.post(
        "/user/", json={"email": "ada@example.com", "first_name": "Ada", "surname": "Lovelace"}
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert isinstance(body["id"], int), body
    assert body == {
        "id": body["id"],
        "email": "ada@example.com",
        "first_name": "Ada",
        "surname": "Lovelace",
        "is_superuser": False,
    }


def test_create_user_needs_only_an_email(client: TestClient) -> None:
    response = client.post("/user/", json={"email": "cook@example.com"})

    assert response.status_code == 201, response.text
    assert response.json()["first_name"] is None, response.text
    assert response.json()["surname"] is None, response.text


def test_get_user_returns_what_was_created(client: TestClient) -> None:
    created = client.post("/user/", json={"email": "ada@example.com", "first_name": "Ada"}).json()

    response = client.get(f"/user/{created['id']}")

    assert response.status_code == 200, response.text
    assert response.json() == created


def test_get_unknown_user_is_404(client: TestClient) -> None:
    response = client.get("/user/999")

    assert response.status_code == 404, response.text
    assert response.json() == {"detail": "User with ID 999 not found"}


@pytest.mark.parametrize("is_superuser", [True, False])
def test_create_user_refuses_is_superuser_field(client: TestClient, is_superuser: bool) -> None:
    """The API rejects the field outright (extra="forbid") rather than silently ignoring it."""
    response = client.post(
        "/user/", json={"email": "boss@example.com", "is_superuser": is_superuser}
    )

    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert [(error["loc"], error["type"]) for error in errors] == [
        (["body", "is_superuser"], "extra_forbidden")
    ], errors
    # Nothing was stored: the address is still free, and the user made with it is no superuser.
    retry = client.post("/user/", json={"email": "boss@example.com"})
    assert retry.status_code == 201, retry.text
    assert retry.json()["is_superuser"] is False, retry.text


def test_create_user_stores_email_lower_cased(client: TestClient) -> None:
    response = client.post("/user/", json={"email": "Ada.Lovelace@Example.COM"})

    assert response.status_code == 201, response.text
    assert response.json()["email"] == "ada.lovelace@example.com", response.text


@pytest.mark.parametrize("second", ["ada@example.com", "ADA@EXAMPLE.COM", "Ada@Example.com"])
def test_create_user_with_taken_email_in_any_case_is_409(client: TestClient, second: str) -> None:
    first = client.post("/user/", json={"email": "Ada@example.com"})
    assert first.status_code == 201, first.text

    response = client.post("/user/", json={"email": second, "first_name": "Impostor"})

    assert response.status_code == 409, response.text
    assert "already exists" in response.json()["detail"], response.text
    assert client.get(f"/user/{first.json()['id'] + 1}").status_code == 404


@pytest.mark.parametrize(
    "email",
    ["not-an-email", "ada@", "@example.com", "ada@@example.com", "ada example@example.com", ""],
)
def test_create_user_rejects_invalid_email(client: TestClient, email: str) -> None:
    response = client.post("/user/", json={"email": email})

    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [["body", "email"]]


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"first_name": "Ada"},
        {"email": None},
        {"email": "ada@example.com", "first_name": "x" * 257},
        {"email": "ada@example.com", "surname": "nul\x00byte"},
        {"email": "a" * 250 + "@example.com"},
    ],
    ids=["empty", "no-email", "null-email", "long-name", "nul-in-surname", "long-email"],
)
def test_create_user_rejects_invalid_payload(
    client: TestClient, payload: dict[str, object]
) -> None:
    response = client.post("/user/", json=payload)

    assert response.status_code == 422, response.text
