"""Property-based fuzzing of every operation in the app's own OpenAPI schema, on both databases.

Schemathesis generates valid and invalid requests (lone surrogates, NUL bytes, huge integers,
odd paths) from the schema the app publishes and checks that none of them gets a 5xx and that
every response matches that schema. A fixed seed makes a failure reproducible.

The schema is loaded eagerly (`from_dict` on the document `/openapi.json` serves) rather than
through `schemathesis.pytest.from_fixture`, whose lazy loader sets `Node._nodeid`, which
pytest 9.2 no longer has.
"""

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from app.core.config import Settings
from app.initial_data import init as seed_database
from app.main import create_app
from tests.utils.settings import settings_for

SEED = 20_240_604
MAX_EXAMPLES = 50

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        # No example database: every run generates the same cases from the seed alone.
        "generation": {"max-examples": MAX_EXAMPLES, "mode": "all", "database": "none"},
    }
)
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    negative_data_rejection,
]

# The schema is the one the app serves; each test sends the generated requests to an app of its
# own on each database (`app=` below), so the document needs no database of its own.
_document_app = create_app(settings_for("sqlite://"))
schema = schemathesis.openapi.from_dict(_document_app.openapi(), config=CONFIG)
schema.app = _document_app


@pytest.fixture
def served_app(app: FastAPI, settings: Settings) -> Iterator[FastAPI]:
    # The seed (user 1, recipes 1-3) gives generated ids and submitter_ids rows to hit, so the
    # success paths are fuzzed too, not only the 404s and 422s.
    seed_database(settings)
    yield app
    # Schemathesis keeps an app's lifespan running until the process ends; release the pool
    # here so the next test can empty the tables.
    engine = getattr(app.state, "engine", None)
    if engine is not None:
        engine.dispose()


@schema.parametrize()
# One app and database per operation and database kind, shared by its examples on purpose: rows
# that earlier examples created are there for later ones to read, change and delete.
# Each login and registration hashes a password with Argon2: seconds per operation.
@pytest.mark.slow
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_generated_request_gets_a_server_error_or_breaks_the_schema(
    case: schemathesis.Case[Any], served_app: FastAPI
) -> None:
    case.call_and_validate(app=served_app, checks=CHECKS)
