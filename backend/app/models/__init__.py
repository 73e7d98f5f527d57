"""Every table, imported here so that `Base.metadata` knows them all (Alembic reads it)."""

from app.models.login_failure import LoginFailure
from app.models.recipe import Recipe
from app.models.seed import Seed
from app.models.user import User

__all__ = ["LoginFailure", "Recipe", "Seed", "User"]
