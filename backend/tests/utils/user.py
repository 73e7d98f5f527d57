"""Users for tests: payloads for the API, and accounts made directly in the database with a
real token, so that most tests spend no time hashing passwords."""

import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, insert

from app.core.config import normalise_database_url
from app.core.security import TokenSigner, hash_password
from app.models import User
from tests.utils import created

PASSWORD = "correct horse battery staple"


def random_email() -> str:
    return f"cook-{uuid.uuid4().hex[:12]}@example.com"


def user_payload(**overrides: Any) -> dict[str, Any]:
    """A valid POST /user/ body; `overrides` replace or add fields."""
    payload: dict[str, Any] = {
        "email": random_email(),
        "password": PASSWORD,
        "first_name": "Ada",
        "surname": "Lovelace",
    }
    payload.update(overrides)
    return payload


def create_user(client: TestClient, **overrides: Any) -> dict[str, Any]:
    """POST a user through the API; returns the 201's body."""
    return created(client.post("/user/", json=user_payload(**overrides)))


@lru_cache
def password_hash() -> str:
    """The hash of PASSWORD, made once per test session."""
    return hash_password(PASSWORD)


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    headers: dict[str, str]  # a valid bearer token for it


def bearer(app: FastAPI, user_id: int) -> dict[str, str]:
    signer: TokenSigner = app.state.tokens
    return {"Authorization": f"Bearer {signer.issue(user_id)}"}


def insert_user(
    database_url: str,
    *,
    email: str | None = None,
    superuser: bool = False,
    with_password: bool = False,
) -> tuple[int, str]:
    """A user inserted directly: (id, email). `with_password` gives it PASSWORD, so that it can
    log in."""
    email = email or random_email()
    values = {
        "email": email,
        "is_superuser": superuser,
        "hashed_password": password_hash() if with_password else None,
    }
    engine = create_engine(normalise_database_url(database_url))
    try:
        with engine.begin() as connection:
            table = User.metadata.tables[User.__tablename__]
            user_id = connection.execute(insert(table).returning(table.c.id), values).scalar_one()
    finally:
        engine.dispose()
    return user_id, email


def account(app: FastAPI, database_url: str, **options: Any) -> Account:
    """A user in the database, with a token signed by this app (no password hashed)."""
    user_id, email = insert_user(database_url, **options)
    return Account(user_id, email, bearer(app, user_id))


def served_account(base_url: str, database_url: str, superuser: bool = False) -> Account:
    """A user in the database, logged in through the running server's own login endpoint."""
    user_id, email = insert_user(database_url, superuser=superuser, with_password=True)
    response = httpx.post(
        f"{base_url}/login/access-token",
        data={"username": email, "password": PASSWORD},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    return Account(user_id, email, headers)
