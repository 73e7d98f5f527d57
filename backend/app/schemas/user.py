from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field

from app.schemas.types import MAX_TEXT_LENGTH, NotNull, Password, Text


def _lowercase(value: str) -> str:
    return value.lower()


# Lower-cased on the way in: addresses are compared case-insensitively by the unique constraint.
Email = Annotated[EmailStr, Field(max_length=MAX_TEXT_LENGTH), AfterValidator(_lowercase)]


class UserCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "cook@example.com",
                    "password": "a long passphrase",
                    "first_name": "Ada",
                    "surname": "Lovelace",
                }
            ]
        },
    )

    email: Email
    password: Password
    first_name: Text | None = None
    surname: Text | None = None


class UserUpdate(BaseModel):
    """Partial update: only the fields present in the payload change."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"password": "a new long passphrase"}]}
    )

    first_name: Text | None = None
    surname: Text | None = None
    password: Annotated[Password | None, NotNull] = None


class User(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 1,
                    "email": "cook@example.com",
                    "first_name": "Ada",
                    "surname": "Lovelace",
                    "is_superuser": False,
                }
            ]
        },
    )

    id: int
    email: str
    first_name: str | None
    surname: str | None
    is_superuser: bool


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
