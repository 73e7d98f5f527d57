"""Every table, imported here so that `Base.metadata` knows them all (Alembic reads it)."""

from app.models.recipe import Recipe
from app.models.user import User

__all__ = ["Recipe", "User"]
