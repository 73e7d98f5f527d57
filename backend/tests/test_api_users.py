"""POST /user/, GET /user/me, GET and PATCH /user/{id} on SQLite and PostgreSQL.

Who may do what is in test_auth.py; here, what the endpoints store and return.
"""

import pytest
from fastapi.testclient import TestClient

from tests.utils.user import Account, create_user, user_payload

PUBLIC_FIELDS = {"id", "email", "first_name", "surname", "is_superuser"}


def test_create_user_returns_201_with_the_public_fields_only(anonymous: TestClient) -> None:
    payload = user_payload(email="ada@example.com")

    response = anonymous.post("/user/", json=payload)

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == PUBLIC_FIELDS, body
    assert body == {
        "id": body["id"],
        "email": "ada@example.com",
        "first_name": payload["first_name"],
        "surname": payload["surname"],
        "is_superuser": False,
    }
    assert payload["password"] not in response.text


def test_create_user_needs_only_an_email_and_a_password(anonymous: TestClient) -> None:
    response = anonymous.post(
        "/user/", json={"email": "cook2@example.com", "password": "long enough"}
    )

    assert response.status_code == 201, response.text
    assert (response.json()["first_name"], response.json()["surname"]) == (None, None)


def test_get_me_returns_the_caller(client: TestClient, cook: Account) -> None:
    response = client.get("/user/me")

    assert response.status_code == 200, response.text
    assert (response.json()["id"], response.json()["email"]) == (cook.id, cook.email)


def test_get_user_returns_what_was_created(anonymous: TestClient, superuser: Account) -> None:
    created = create_user(anonymous)

    response = anonymous.get(f"/user/{created['id']}", headers=superuser.headers)

    assert response.status_code == 200, response.text
    assert response.json() == created


def test_get_unknown_user_is_404_for_a_superuser(anonymous: TestClient, superuser: Account) -> None:
    response = anonymous.get("/user/999", headers=superuser.headers)

    assert response.status_code == 404, response.text
    assert response.json() == {"detail": "User with ID 999 not found"}


def test_patch_user_changes_only_the_given_fields(client: TestClient, cook: Account) -> None:
    response = client.patch(f"/user/{cook.id}", json={"first_name": "Cookie"})

    assert response.status_code == 200, response.text
    assert response.json()["first_name"] == "Cookie"
    assert response.json()["email"] == cook.email
    assert client.get("/user/me").json() == response.json()


@pytest.mark.parametrize(
    "changes",
    [{"password": "short"}, {"password": None}, {"email": "new@example.com"}, {"id": 3}],
    ids=["short-password", "null-password", "email", "id"],
)
def test_patch_user_rejects_invalid_changes(
    client: TestClient, cook: Account, changes: dict[str, object]
) -> None:
    response = client.patch(f"/user/{cook.id}", json=changes)

    assert response.status_code == 422, response.text


@pytest.mark.parametrize("is_superuser", [True, False])
def test_create_user_refuses_is_superuser_field(
    anonymous: TestClient, superuser: Account, is_superuser: bool
) -> None:
    """The API rejects the field outright (extra="forbid") rather than silently ignoring it."""
    response = anonymous.post(
        "/user/", json=user_payload(email="new.boss@example.com", is_superuser=is_superuser)
    )

    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert [(error["loc"], error["type"]) for error in errors] == [
        (["body", "is_superuser"], "extra_forbidden")
    ], errors
    # Nothing was stored: the address is still free, and the user made with it is no superuser.
    retry = anonymous.post("/user/", json=user_payload(email="new.boss@example.com"))
    assert retry.status_code == 201, retry.text
    assert retry.json()["is_superuser"] is False, retry.text


def test_create_user_stores_email_lower_cased(anonymous: TestClient) -> None:
    response = anonymous.post("/user/", json=user_payload(email="Ada.Lovelace@Example.COM"))

    assert response.status_code == 201, response.text
    assert response.json()["email"] == "ada.lovelace@example.com", response.text


@pytest.mark.parametrize("second", ["ada@example.com", "ADA@EXAMPLE.COM", "Ada@Example.com"])
def test_create_user_with_taken_email_in_any_case_is_409(
    anonymous: TestClient, superuser: Account, second: str
) -> None:
    first = create_user(anonymous, email="Ada@example.com")

    response = anonymous.post("/user/", json=user_payload(email=second, first_name="Impostor"))

    assert response.status_code == 409, response.text
    assert response.json() == {"detail": "A user with email ada@example.com already exists"}
    next_id = anonymous.get(f"/user/{first['id'] + 1}", headers=superuser.headers)
    assert next_id.status_code == 404, next_id.text


@pytest.mark.parametrize(
    "email",
    ["not-an-email", "ada@", "@example.com", "ada@@example.com", "ada example@example.com", ""],
)
def test_create_user_rejects_invalid_email(anonymous: TestClient, email: str) -> None:
    response = anonymous.post("/user/", json=user_payload(email=email))

    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [["body", "email"]]


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"first_name": "Ada", "password": "long enough"},
        {"email": None, "password": "long enough"},
        {"email": "ada@example.com"},
        {"email": "ada@example.com", "password": "seven c"},
        {"email": "ada@example.com", "password": "x" * 129},
        {"email": "ada@example.com", "password": "nul\x00byte pass"},
        {"email": "ada@example.com", "password": "long enough", "first_name": "x" * 257},
        {"email": "ada@example.com", "password": "long enough", "surname": "nul\x00byte"},
        {"email": "a" * 250 + "@example.com", "password": "long enough"},
    ],
    ids=[
        "empty",
        "no-email",
        "null-email",
        "no-password",
        "short-password",
        "long-password",
        "nul-in-password",
        "long-name",
        "nul-in-surname",
        "long-email",
    ],
)
def test_create_user_rejects_invalid_payload(
    anonymous: TestClient, payload: dict[str, object]
) -> None:
    response = anonymous.post("/user/", json=payload)

    assert response.status_code == 422, response.text


@pytest.mark.parametrize("password", ["seven c", "x" * 129, "secret\x00word"])
def test_a_rejected_password_is_not_echoed_back(anonymous: TestClient, password: str) -> None:
    response = anonymous.post("/user/", json=user_payload(password=password))

    assert response.status_code == 422, response.text
    assert password not in response.text, response.text
    assert password.encode("unicode_escape").decode() not in response.text, response.text


def test_emails_that_differ_only_by_an_accent_are_different_users(anonymous: TestClient) -> None:
    """Only case is folded (the API lower-cases); an accent makes another address on every
    database, MariaDB's accent-insensitive default collations included."""
    plain = anonymous.post("/user/", json=user_payload(email="jose@example.com"))
    accented = anonymous.post("/user/", json=user_payload(email="josé@example.com"))

    assert plain.status_code == 201, plain.text
    assert accented.status_code == 201, accented.text
    assert accented.json()["email"] == "josé@example.com"
