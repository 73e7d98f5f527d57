"""Test data and helpers; the processes, databases and traffic they share with the benchmark
live in `bench/`."""

from typing import Any

import httpx2


def created(response: httpx2.Response) -> dict[str, Any]:
    """The body of a 201, or a failure that shows what came back instead."""
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
