"""Alembic run in-process on a URL of the test's choosing."""

from alembic import command
from alembic.config import Config

from app.db.migrations import alembic_config


def _config_for(url: str) -> Config:
    config = alembic_config()
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    return config


def migrate(url: str, revision: str = "head") -> None:
    command.upgrade(_config_for(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(_config_for(url), revision)
