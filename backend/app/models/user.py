from typing import TYPE_CHECKING

from sqlalchemy import String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base

if TYPE_CHECKING:
    from app.models.recipe import Recipe


class User(Base):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str | None] = mapped_column(String(256))
    surname: Mapped[str | None] = mapped_column(String(256))
    # Stored lower-cased by the API, so the unique constraint is case-insensitive in effect.
    email: Mapped[str] = mapped_column(String(256), unique=True)
    is_superuser: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Argon2 hash (app/core/security.py); NULL for users who cannot log in until a superuser
    # sets a password (those created before passwords existed).
    hashed_password: Mapped[str | None] = mapped_column(String(256))

    recipes: Mapped[list["Recipe"]] = relationship(back_populates="submitter", lazy="raise")
