"""Settings for an app under test: nothing read from a .env file in the working directory."""

from typing import Any

from app.core.config import Settings


def settings_for(database_url: str, **overrides: Any) -> Settings:
    return Settings(DATABASE_URL=database_url, _env_file=None, **overrides)
