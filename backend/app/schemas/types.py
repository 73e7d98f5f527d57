"""Field types shared by the request schemas."""

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

# Matches the varchar(256) columns, so the database never truncates or rejects what we accepted.
MAX_TEXT_LENGTH = 256
# The primary keys are 32-bit integers; a larger id can name no row and would overflow the query.
MAX_ID = 2_147_483_647
# Argon2 takes any length; a bound keeps one request from costing arbitrary CPU.
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128


def reject_unstorable_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL, and no database can store lone UTF-16 surrogates."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text") from exc
    return value


def require_visible_character(value: str) -> str:
    """Blank, or made only of invisible characters (spaces, zero-width ones): not a label."""
    if not any(character.isprintable() and not character.isspace() for character in value):
        raise ValueError("must contain a visible character")
    return value


def _not_null(value: object) -> object:
    if value is None:
        raise ValueError("cannot be null")
    return value


# For fields a partial update may leave out but not set to null: `Annotated[X | None, NotNull]`.
NotNull = AfterValidator(_not_null)

Text = Annotated[
    str,
    StringConstraints(max_length=MAX_TEXT_LENGTH),
    AfterValidator(reject_unstorable_text),
]
# Stripped of surrounding white space first; what is left must show something.
Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT_LENGTH),
    AfterValidator(reject_unstorable_text),
    AfterValidator(require_visible_character),
]
# Ids in a JSON body: a JSON integer only (no true, "1" or 1.0).
DbId = Annotated[int, Field(ge=1, le=MAX_ID, strict=True)]
Password = Annotated[
    str,
    StringConstraints(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH),
    AfterValidator(reject_unstorable_text),
]
