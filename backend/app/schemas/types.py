"""Field types shared by the request schemas."""

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

# Matches the varchar(256) columns, so the database never truncates or rejects what we accepted.
MAX_TEXT_LENGTH = 256
# The primary keys are 32-bit integers; a larger id can name no row and would overflow the query.
MAX_ID = 2_147_483_647


def reject_unstorable_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL, and no database can store lone UTF-16 surrogates."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text") from exc
    return value


Text = Annotated[
    str,
    StringConstraints(max_length=MAX_TEXT_LENGTH),
    AfterValidator(reject_unstorable_text),
]
RequiredText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_TEXT_LENGTH),
    AfterValidator(reject_unstorable_text),
]
DbId = Annotated[int, Field(ge=1, le=MAX_ID)]
