"""Users for tests: one valid payload, changed only in what a test is about."""

import uuid
from typing import Any

from fastapi.testclient import TestClient

from tests.utils import created


def random_email() -> str:
    return f"cook-{uuid.uuid4().hex[:12]}@example.com"


def user_payload(**overrides: Any) -> dict[str, Any]:
    """A valid POST /user/ body; `overrides` replace or add fields."""
    payload: dict[str, Any] = {"email": random_email(), "first_name": "Ada", "surname": "Lovelace"}
    payload.update(overrides)
    return payload


def create_user(client: TestClient, **overrides: Any) -> dict[str, Any]:
    """POST a user through the API; returns the 201's body."""
    return created(client.post("/user/", json=user_payload(**overrides)))
