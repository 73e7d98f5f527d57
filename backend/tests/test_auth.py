"""Who may write: bearer tokens, each authorisation rule with its 401/403 body and headers,
registration open or closed, and logins (one answer for every failure, rate-limited in the
database). Each test runs on SQLite and PostgreSQL."""

import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, delete

from app.core.config import Settings
from app.core.security import TokenSigner
from app.main import create_app
from app.models import User
from tests.utils.recipe import create_recipe, recipe_payload
from tests.utils.settings import settings_for
from tests.utils.user import PASSWORD, Account, account, user_payload

NOT_AUTHENTICATED = {"detail": "Not authenticated"}
BAD_TOKEN = {"detail": "Could not validate credentials"}
MAY_NOT_CHANGE = {"detail": "Only the recipe's submitter or a superuser may change or delete it"}
ONLY_SUPERUSERS_ASSIGN = {
    "detail": "Only a superuser may submit or assign a recipe for another user"
}
NOT_YOURS = {"detail": "Only the user themself or a superuser may see or change a user"}
LOGIN_FAILED = {"detail": "Incorrect email or password"}


def assert_401(response: Any, body: dict[str, str]) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == body
    assert response.headers["www-authenticate"] == "Bearer", response.headers


def assert_403(response: Any, body: dict[str, str]) -> None:
    assert response.status_code == 403, response.text
    assert response.json() == body


def login(client: TestClient, username: str, password: str) -> Any:
    return client.post(
        "/login/access-token",
        data={"username": username, "password": password},
        headers={"Authorization": ""},
    )


# --- tokens --------------------------------------------------------------------------------


WRITES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/recipe/", recipe_payload()),
    ("PATCH", "/recipe/{id}", {"label": "Changed"}),
    ("DELETE", "/recipe/{id}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=["post", "patch", "delete"])
def test_writes_without_a_token_are_401_with_www_authenticate(
    client: TestClient, anonymous: TestClient, method: str, path: str, body: Any
) -> None:
    recipe = create_recipe(client)

    response = anonymous.request(method, path.format(id=recipe["id"]), json=body)

    assert_401(response, NOT_AUTHENTICATED)
    assert client.get(f"/recipe/{recipe['id']}").json() == recipe


def forged(app: FastAPI, account: Account) -> str:
    return TokenSigner("another key that is not the server's at all", timedelta(hours=1)).issue(
        account.id
    )


def expired(app: FastAPI, account: Account) -> str:
    settings: Settings = app.state.settings
    return TokenSigner(settings.signing_key, timedelta(seconds=-1)).issue(account.id)


def garbage(_app: FastAPI, _account: Account) -> str:
    return "not.a.token"


@pytest.mark.parametrize(
    "make_token", [forged, expired, garbage], ids=["forged", "expired", "malformed"]
)
@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=["post", "patch", "delete"])
def test_writes_with_a_bad_token_are_401_with_www_authenticate(
    app: FastAPI,
    client: TestClient,
    anonymous: TestClient,
    cook: Account,
    make_token: Callable[[FastAPI, Account], str],
    method: str,
    path: str,
    body: Any,
) -> None:
    recipe = create_recipe(client)
    headers = {"Authorization": f"Bearer {make_token(app, cook)}"}

    response = anonymous.request(method, path.format(id=recipe["id"]), json=body, headers=headers)

    assert_401(response, BAD_TOKEN)
    assert client.get(f"/recipe/{recipe['id']}").json() == recipe


def test_a_token_of_a_deleted_user_is_401(
    app: FastAPI, anonymous: TestClient, database_url: str
) -> None:
    gone = account(app, database_url)
    engine = create_engine(database_url)
    with engine.begin() as connection:
        users = User.metadata.tables["user"]
        connection.execute(delete(users).where(users.c.id == gone.id))
    engine.dispose()

    created = anonymous.post("/recipe/", json=recipe_payload(), headers=gone.headers)
    me = anonymous.get("/user/me", headers=gone.headers)

    assert_401(created, BAD_TOKEN)
    assert_401(me, BAD_TOKEN)


def test_reads_of_recipes_stay_public(client: TestClient, anonymous: TestClient) -> None:
    recipe = create_recipe(client, label="Public stew")

    assert anonymous.get(f"/recipe/{recipe['id']}").status_code == 200
    assert anonymous.get("/search/", params={"keyword": "public"}).json()["results"] == [recipe]
    assert anonymous.get("/recipes/").json()["results"] == [recipe]
    assert anonymous.get("/").status_code == 200


# --- recipes -------------------------------------------------------------------------------


def test_post_records_the_caller_as_submitter(client: TestClient, cook: Account) -> None:
    created = create_recipe(client, submitter_id=None)
    without_field = {k: v for k, v in recipe_payload().items() if k != "submitter_id"}
    second = client.post("/recipe/", json=without_field)
    own_id = create_recipe(client, submitter_id=cook.id)

    assert created["submitter_id"] == cook.id
    assert second.status_code == 201, second.text
    assert second.json()["submitter_id"] == cook.id
    assert own_id["submitter_id"] == cook.id


def test_post_for_another_user_is_403_unless_superuser(
    client: TestClient, anonymous: TestClient, cook: Account, superuser: Account
) -> None:
    refused = client.post("/recipe/", json=recipe_payload(submitter_id=superuser.id))
    assigned = anonymous.post(
        "/recipe/", json=recipe_payload(submitter_id=cook.id), headers=superuser.headers
    )
    unknown = anonymous.post(
        "/recipe/", json=recipe_payload(submitter_id=4242), headers=superuser.headers
    )

    assert_403(refused, ONLY_SUPERUSERS_ASSIGN)
    assert assigned.status_code == 201, assigned.text
    assert assigned.json()["submitter_id"] == cook.id
    assert unknown.status_code == 422, unknown.text
    assert [e["loc"] for e in unknown.json()["detail"]] == [["body", "submitter_id"]]
    assert len(anonymous.get("/recipes/").json()["results"]) == 1


@pytest.mark.parametrize(
    ("method", "body"), [("PATCH", {"label": "Mine now"}), ("DELETE", None)], ids=str
)
def test_only_the_submitter_or_a_superuser_may_change_or_delete_a_recipe(
    app: FastAPI,
    client: TestClient,
    anonymous: TestClient,
    database_url: str,
    superuser: Account,
    method: str,
    body: Any,
) -> None:
    other = account(app, database_url)
    first = create_recipe(client, label="First")
    second = create_recipe(client, label="Second")

    refused = anonymous.request(method, f"/recipe/{first['id']}", json=body, headers=other.headers)
    by_submitter = client.request(method, f"/recipe/{first['id']}", json=body)
    by_superuser = anonymous.request(
        method, f"/recipe/{second['id']}", json=body, headers=superuser.headers
    )

    assert_403(refused, MAY_NOT_CHANGE)
    assert by_submitter.status_code in (200, 204), by_submitter.text
    assert by_superuser.status_code in (200, 204), by_superuser.text


def test_changing_an_unknown_recipe_is_404_for_anyone_with_a_token(
    app: FastAPI, anonymous: TestClient, database_url: str
) -> None:
    other = account(app, database_url)

    patched = anonymous.patch("/recipe/999", json={"label": "x"}, headers=other.headers)
    deleted = anonymous.delete("/recipe/999", headers=other.headers)

    for response in (patched, deleted):
        assert response.status_code == 404, response.text
        assert response.json() == {"detail": "Recipe with ID 999 not found"}


def test_an_empty_patch_by_someone_else_is_403(
    app: FastAPI, client: TestClient, anonymous: TestClient, database_url: str
) -> None:
    recipe = create_recipe(client)
    other = account(app, database_url)

    response = anonymous.patch(f"/recipe/{recipe['id']}", json={}, headers=other.headers)

    assert_403(response, MAY_NOT_CHANGE)


def test_handing_a_recipe_to_another_submitter_is_for_superusers_only(
    client: TestClient, anonymous: TestClient, cook: Account, superuser: Account
) -> None:
    recipe = create_recipe(client)

    given_away = client.patch(f"/recipe/{recipe['id']}", json={"submitter_id": superuser.id})
    orphaned = client.patch(f"/recipe/{recipe['id']}", json={"submitter_id": None})
    kept = client.patch(f"/recipe/{recipe['id']}", json={"submitter_id": cook.id})
    reassigned = anonymous.patch(
        f"/recipe/{recipe['id']}", json={"submitter_id": superuser.id}, headers=superuser.headers
    )

    assert_403(given_away, ONLY_SUPERUSERS_ASSIGN)
    assert_403(orphaned, ONLY_SUPERUSERS_ASSIGN)
    assert kept.status_code == 200, kept.text
    assert reassigned.status_code == 200, reassigned.text
    assert reassigned.json()["submitter_id"] == superuser.id


# --- users ---------------------------------------------------------------------------------


def test_users_see_and_change_themselves_only(
    app: FastAPI, client: TestClient, anonymous: TestClient, cook: Account, database_url: str
) -> None:
    other = account(app, database_url)

    own = client.get(f"/user/{cook.id}")
    others = client.get(f"/user/{other.id}")
    missing = client.get("/user/999")
    patched = client.patch(f"/user/{other.id}", json={"first_name": "Mallory"})
    nobody = anonymous.get(f"/user/{cook.id}")
    nobody_me = anonymous.get("/user/me")

    assert own.status_code == 200, own.text
    assert_403(others, NOT_YOURS)
    assert_403(missing, NOT_YOURS)  # a regular user learns nothing about other ids
    assert_403(patched, NOT_YOURS)
    assert_401(nobody, NOT_AUTHENTICATED)
    assert_401(nobody_me, NOT_AUTHENTICATED)


def test_a_superuser_sees_and_changes_anyone(
    anonymous: TestClient, cook: Account, superuser: Account
) -> None:
    seen = anonymous.get(f"/user/{cook.id}", headers=superuser.headers)
    renamed = anonymous.patch(
        f"/user/{cook.id}", json={"surname": "Renamed"}, headers=superuser.headers
    )

    assert seen.status_code == 200, seen.text
    assert seen.json()["email"] == cook.email
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["surname"] == "Renamed"


@pytest.mark.parametrize(
    "closed",
    [{"USERS_OPEN_REGISTRATION": False}, {"ENVIRONMENT": "production"}],
    ids=["setting", "production-default"],
)
def test_closed_registration_lets_only_superusers_create_users(
    app: FastAPI, database_url: str, superuser: Account, cook: Account, closed: dict[str, Any]
) -> None:
    settings = dict(closed)
    if settings.get("ENVIRONMENT") == "production":
        settings = {
            **settings,
            "SECRET_KEY": "k" * 32,
            "FIRST_SUPERUSER_PASSWORD": "first superuser password",
        }
    closed_app = create_app(settings_for(database_url, **settings))
    with TestClient(closed_app) as registration_closed:
        signer: TokenSigner = closed_app.state.tokens
        as_superuser = {"Authorization": f"Bearer {signer.issue(superuser.id)}"}
        as_cook = {"Authorization": f"Bearer {signer.issue(cook.id)}"}

        anonymous = registration_closed.post("/user/", json=user_payload())
        regular = registration_closed.post("/user/", json=user_payload(), headers=as_cook)
        allowed = registration_closed.post("/user/", json=user_payload(), headers=as_superuser)

    assert_401(anonymous, NOT_AUTHENTICATED)
    assert_403(regular, {"detail": "Registration is closed: only a superuser may create users"})
    assert allowed.status_code == 201, allowed.text


def test_registration_is_open_by_default_in_development(anonymous: TestClient) -> None:
    response = anonymous.post("/user/", json=user_payload())

    assert response.status_code == 201, response.text


# --- logging in ----------------------------------------------------------------------------


def test_login_returns_a_bearer_token_that_authenticates(
    app: FastAPI, anonymous: TestClient, database_url: str
) -> None:
    chef = account(app, database_url, email="chef@example.com", with_password=True)

    response = login(anonymous, "CHEF@example.com", PASSWORD)

    assert response.status_code == 200, response.text
    token = response.json()
    assert set(token) == {"access_token", "token_type"}
    assert token["token_type"] == "bearer"
    me = anonymous.get("/user/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status_code == 200, me.text
    assert me.json()["id"] == chef.id


@pytest.mark.slow  # several Argon2 hashes, each slow by design
def test_a_registered_user_logs_in_with_the_password_it_registered(anonymous: TestClient) -> None:
    created = anonymous.post("/user/", json=user_payload(email="new@example.com"))
    assert created.status_code == 201, created.text

    response = login(anonymous, "new@example.com", PASSWORD)

    assert response.status_code == 200, response.text


@pytest.mark.slow  # several Argon2 hashes, each slow by design
def test_every_failed_login_gets_the_same_answer(
    app: FastAPI, anonymous: TestClient, database_url: str
) -> None:
    account(app, database_url, email="known@example.com", with_password=True)
    account(app, database_url, email="nopassword@example.com")

    wrong_password = login(anonymous, "known@example.com", "not the password")
    unknown_user = login(anonymous, "unknown@example.com", PASSWORD)
    no_password = login(anonymous, "nopassword@example.com", PASSWORD)

    for response in (wrong_password, unknown_user, no_password):
        assert response.status_code == 400, response.text
        assert response.json() == LOGIN_FAILED


@pytest.mark.slow  # several Argon2 hashes, each slow by design
def test_an_unknown_account_takes_as_long_as_a_wrong_password(
    app: FastAPI, anonymous: TestClient, database_url: str
) -> None:
    """No timing oracle: both verify a password hash. Without that, an unknown account was
    answered in a millisecond, a known one in the time of an Argon2 hash."""
    account(app, database_url, email="known@example.com", with_password=True)

    def seconds(username: str) -> float:
        started = time.perf_counter()
        assert login(anonymous, username, "not the password").status_code == 400
        return time.perf_counter() - started

    # Interleaved, so that whatever else the machine does hits both alike.
    pairs = [(seconds("known@example.com"), seconds("unknown@example.com")) for _ in range(4)]
    wrong_password = statistics.median(known for known, _ in pairs)
    unknown_user = statistics.median(unknown for _, unknown in pairs)

    assert unknown_user > wrong_password / 2, (unknown_user, wrong_password)


@pytest.mark.parametrize(
    "form",
    [
        {"username": "known@example.com"},
        {"password": PASSWORD},
        {"username": "known@example.com", "password": PASSWORD, "grant_type": "client"},
        {"username": "known\x00@example.com", "password": PASSWORD},
        {"username": "k" * 257, "password": PASSWORD},
    ],
    ids=["no-password", "no-username", "wrong-grant", "nul", "long-username"],
)
def test_a_malformed_login_form_is_422(anonymous: TestClient, form: dict[str, str]) -> None:
    response = anonymous.post("/login/access-token", data=form)

    assert response.status_code == 422, response.text


def limited_client(database_url: str, **settings: Any) -> TestClient:
    values = {
        "LOGIN_MAX_FAILURES": 3,
        "LOGIN_MAX_FAILURES_PER_CLIENT": 5,
        "LOGIN_FAILURE_WINDOW_SECONDS": 600,
        **settings,
    }
    return TestClient(create_app(settings_for(database_url, **values)))


@pytest.mark.slow  # several Argon2 hashes, each slow by design
def test_failed_logins_are_limited_per_account_even_with_the_right_password(
    app: FastAPI, database_url: str
) -> None:
    account(app, database_url, email="known@example.com", with_password=True)
    with limited_client(database_url) as limited:
        failures = [login(limited, "known@example.com", "wrong") for _ in range(3)]
        blocked = login(limited, "known@example.com", PASSWORD)
        other_account = login(limited, "other@example.com", "wrong")

    assert [r.status_code for r in failures] == [400, 400, 400]
    assert blocked.status_code == 429, blocked.text
    assert blocked.json()["detail"].startswith("Too many failed logins; try again in")
    assert 1 <= int(blocked.headers["retry-after"]) <= 600, blocked.headers
    assert other_account.status_code == 400, other_account.text


@pytest.mark.slow  # several Argon2 hashes, each slow by design
def test_failed_logins_are_limited_per_client_across_accounts(
    app: FastAPI, database_url: str
) -> None:
    account(app, database_url, email="known@example.com", with_password=True)
    with limited_client(database_url) as limited:
        failures = [login(limited, f"user{n}@example.com", "wrong") for n in range(5)]
        blocked = login(limited, "known@example.com", PASSWORD)

    assert {r.status_code for r in failures} == {400}
    assert blocked.status_code == 429, blocked.text


@pytest.mark.slow  # several Argon2 hashes, each slow by design
def test_the_limit_holds_across_app_instances_sharing_the_database(
    app: FastAPI, database_url: str
) -> None:
    """Two workers (or replicas) are two apps on one database: the failures add up."""
    account(app, database_url, email="known@example.com", with_password=True)
    with limited_client(database_url) as first, limited_client(database_url) as second:
        login(first, "known@example.com", "wrong")
        login(second, "known@example.com", "wrong")
        login(first, "known@example.com", "wrong")
        blocked = login(second, "known@example.com", PASSWORD)

    assert blocked.status_code == 429, blocked.text


@pytest.mark.slow  # several Argon2 hashes, each slow by design
def test_a_successful_login_forgives_the_accounts_failures(app: FastAPI, database_url: str) -> None:
    account(app, database_url, email="known@example.com", with_password=True)
    with limited_client(database_url) as limited:
        login(limited, "known@example.com", "wrong")
        login(limited, "known@example.com", "wrong")
        assert login(limited, "known@example.com", PASSWORD).status_code == 200
        login(limited, "known@example.com", "wrong")
        login(limited, "known@example.com", "wrong")
        again = login(limited, "known@example.com", PASSWORD)

    assert again.status_code == 200, again.text


@pytest.mark.slow  # several Argon2 hashes, each slow by design
def test_a_user_without_a_password_logs_in_once_a_superuser_sets_one(
    app: FastAPI, anonymous: TestClient, database_url: str, superuser: Account
) -> None:
    legacy = account(app, database_url, email="legacy@example.com")
    assert login(anonymous, "legacy@example.com", "a new password").status_code == 400

    response = anonymous.patch(
        f"/user/{legacy.id}", json={"password": "a new password"}, headers=superuser.headers
    )

    assert response.status_code == 200, response.text
    assert login(anonymous, "legacy@example.com", "a new password").status_code == 200


@pytest.mark.slow  # several Argon2 hashes, each slow by design
def test_passwords_never_reach_the_log(
    app: FastAPI, anonymous: TestClient, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    anonymous.post("/user/", json=user_payload(email="logged@example.com"))
    login(anonymous, "logged@example.com", PASSWORD)
    login(anonymous, "logged@example.com", "a wrong password")

    assert PASSWORD not in caplog.text
    assert "a wrong password" not in caplog.text


def test_the_login_form_and_bearer_scheme_are_in_the_openapi_document(
    anonymous: TestClient,
) -> None:
    document = anonymous.get("/openapi.json").json()

    schemes = document["components"]["securitySchemes"]
    assert schemes == {
        "OAuth2PasswordBearer": {
            "type": "oauth2",
            "flows": {"password": {"scopes": {}, "tokenUrl": "/login/access-token"}},
        }
    }
    post = document["paths"]["/recipe/"]["post"]
    assert post["security"] == [{"OAuth2PasswordBearer": []}]
    assert {"401", "403"} <= set(post["responses"])
    assert "security" not in document["paths"]["/recipe/{recipe_id}"]["get"]


def test_settings_refuse_unsafe_secrets_in_production() -> None:
    base: dict[str, Any] = {
        "ENVIRONMENT": "production",
        "FIRST_SUPERUSER_PASSWORD": "a real password",
    }
    for secret_key, problem in [
        (None, "SECRET_KEY is required in production"),
        ("change-me-to-a-random-string-of-at-least-32-bytes", "placeholder"),
        ("too short", "at least 32 bytes"),
    ]:
        with pytest.raises(ValueError, match=problem):
            Settings(_env_file=None, **base, SECRET_KEY=secret_key)
    with pytest.raises(ValueError, match="FIRST_SUPERUSER_PASSWORD is the placeholder"):
        Settings(**{**base, "FIRST_SUPERUSER_PASSWORD": "change-me"}, SECRET_KEY="k" * 32)
    accepted = Settings(_env_file=None, **base, SECRET_KEY="k" * 32)
    assert accepted.signing_key == "k" * 32


def test_a_remembered_token_still_expires(
    app: FastAPI, anonymous: TestClient, cook: Account
) -> None:
    """The worker remembers a verified token, but checks its expiry on every use."""
    settings: Settings = app.state.settings
    # `exp` is in whole seconds, rounded down: 3 s of lifetime leave the first request at least 2.
    signer = TokenSigner(settings.signing_key, timedelta(seconds=3))
    token = signer.issue(cook.id)
    expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]
    app.state.tokens = signer
    headers = {"Authorization": f"Bearer {token}"}

    first = anonymous.get("/user/me", headers=headers)
    time.sleep(max(0.0, expires_at - time.time()) + 0.2)
    later = anonymous.get("/user/me", headers=headers)

    assert first.status_code == 200, first.text
    assert_401(later, BAD_TOKEN)
