"""Data created through the API outlives the app: a restarted app, or a restarted dev server."""

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.db.migrations import PROJECT_ROOT
from app.main import create_app
from bench.databases import sqlite_url
from bench.servers import SCRIPTS, clean_env, free_port, http_status, wait_until
from tests.utils.recipe import recipe_payload
from tests.utils.user import PASSWORD, Account, user_payload

RECIPE = recipe_payload(label="Survives Restarts Stew")
ADMIN_PASSWORD = "the first superuser's password"


def test_data_created_through_the_api_survives_an_app_restart(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        user = client.post("/user/", json=user_payload(email="keeper@example.com"))
        assert user.status_code == 201, user.text
        token = client.post(
            "/login/access-token", data={"username": "keeper@example.com", "password": PASSWORD}
        )
        assert token.status_code == 200, token.text
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        created = client.post("/recipe/", json=RECIPE)
        assert created.status_code == 201, created.text
        updated = client.patch(f"/recipe/{created.json()['id']}", json={"source": "Edited"})
        assert updated.status_code == 200, updated.text
        doomed = client.post("/recipe/", json={**RECIPE, "label": "Doomed"})
        assert client.delete(f"/recipe/{doomed.json()['id']}").status_code == 204

    # Another app on the same database and signing key: the same token and the same data.
    with TestClient(create_app(settings), headers=dict(client.headers)) as client:
        stored_user = client.get("/user/me")
        stored_recipe = client.get(f"/recipe/{created.json()['id']}")
        stored_doomed = client.get(f"/recipe/{doomed.json()['id']}")
        everything = client.get("/search/").json()["results"]

    assert stored_user.status_code == 200, stored_user.text
    assert stored_user.json() == user.json()
    assert stored_recipe.status_code == 200, stored_recipe.text
    assert stored_recipe.json() == updated.json()
    assert stored_doomed.status_code == 404, stored_doomed.text
    assert everything == [updated.json()]


def test_an_id_is_never_reused_after_a_restart(settings: Settings, cook: Account) -> None:
    with TestClient(create_app(settings), headers=cook.headers) as client:
        first = client.post("/recipe/", json=RECIPE).json()

    with TestClient(create_app(settings), headers=cook.headers) as client:
        second = client.post("/recipe/", json=RECIPE)

    assert second.status_code == 201, second.text
    assert second.json()["id"] > first["id"], (first, second.json())


@contextmanager
def dev_server(database_url: str, port: int, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`scripts/dev.sh` in its own process group, waited for until ready; Ctrl-C'd on exit."""
    env = clean_env(
        DATABASE_URL=database_url, PORT=str(port), FIRST_SUPERUSER_PASSWORD=ADMIN_PASSWORD
    )
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(SCRIPTS / "dev.sh")],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        ready = f"http://127.0.0.1:{port}/health/ready"
        assert wait_until(lambda: http_status(ready) == 200, timeout=60), (
            f"{ready} not 200 within 60s\n--- dev.sh log ---\n{log_path.read_text()}"
        )
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
                raise AssertionError(
                    f"dev.sh ignored Ctrl-C for 20s\n--- log ---\n{log_path.read_text()}"
                ) from None


def chicken_labels(base_url: str) -> list[str]:
    response = httpx.get(f"{base_url}/search/", params={"keyword": "chicken"}, timeout=10)
    assert response.status_code == 200, response.text
    return [recipe["label"] for recipe in response.json()["results"]]


@pytest.mark.slow
def test_dev_server_keeps_recipes_and_users_changes_across_ctrl_c_and_restart(
    tmp_path: Path,
) -> None:
    database_url = sqlite_url(tmp_path / "dev.db")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "dev.log"

    with dev_server(database_url, port, log_path) as first_run:
        seeded = chicken_labels(base_url)
        token = httpx.post(
            f"{base_url}/login/access-token",
            data={"username": "admin@recipeapi.com", "password": ADMIN_PASSWORD},
            timeout=30,
        )
        assert token.status_code == 200, token.text
        admin = {"Authorization": f"Bearer {token.json()['access_token']}"}
        with httpx.Client(base_url=base_url, headers=admin, timeout=10) as client:
            response = client.post("/recipe/", json=RECIPE)
            assert response.status_code == 201, response.text
            created: dict[str, Any] = response.json()
            # What users do to the starter recipes must survive the next prestart.
            assert client.delete("/recipe/1").status_code == 204
            renamed = client.patch("/recipe/2", json={"label": "Chicken Paprikash (my version)"})
            assert renamed.status_code == 200, renamed.text
    assert first_run.returncode is not None
    assert seeded == ["Chicken Vesuvio", "Chicken Paprikash"], seeded

    with dev_server(database_url, port, log_path):
        stored = httpx.get(f"{base_url}/recipe/{created['id']}", timeout=10)
        after_restart = chicken_labels(base_url)

    assert stored.status_code == 200, f"{stored.text}\n--- log ---\n{log_path.read_text()}"
    assert stored.json() == created
    assert after_restart == ["Chicken Paprikash (my version)"], log_path.read_text()
    assert "initial data: already seeded, nothing to do" in log_path.read_text()
