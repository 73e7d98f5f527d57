"""Settings read from the environment and an optional `.env` file."""

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, computed_field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url


def normalise_database_url(url: str) -> str:
    """Map the `postgres://` scheme that hosting providers hand out to SQLAlchemy's psycopg2 one."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url.removeprefix(prefix)
    return url


def mask_password(url: str | URL) -> str:
    """The URL as it may appear in logs and responses: password replaced by `***`."""
    return make_url(url).render_as_string(hide_password=True)


# The password .env.example ships with: fine on a laptop, refused in production.
PLACEHOLDER_PASSWORD = "change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    ENVIRONMENT: Literal["development", "production"] = "development"

    # Database: DATABASE_URL wins; else the URL is assembled from POSTGRES_* (as compose sets them).
    DATABASE_URL: str | None = None
    POSTGRES_SERVER: str | None = None
    POSTGRES_PORT: int = 5432
    POSTGRES_USER: str = "postgres"
    POSTGRES_PASSWORD: str = ""
    POSTGRES_DB: str = "app"
    # The prestart steps (wait, migrate, seed) connect here when set: a direct URL to the database,
    # never through a transaction-mode pooler. The app keeps DATABASE_URL.
    MIGRATION_DATABASE_URL: str | None = None

    # Connection pool of each worker (PostgreSQL only; SQLite uses one connection per thread).
    DB_POOL_SIZE: int = Field(default=5, ge=1)
    DB_MAX_OVERFLOW: int = Field(default=5, ge=0)
    DB_POOL_RECYCLE: int = Field(default=1800, description="seconds before a connection is renewed")
    DB_POOL_TIMEOUT: float = Field(
        default=5.0, gt=0, description="seconds to wait for a free connection"
    )
    DB_CONNECT_TIMEOUT: int = Field(default=5, ge=1, description="seconds to open a connection")
    DB_STATEMENT_TIMEOUT_MS: int = Field(default=5000, ge=0, description="0 disables")
    SQLITE_BUSY_TIMEOUT_MS: int = Field(default=5000, ge=0)
    # App instances (pods, hosts) sharing the database, each with its own workers and pools.
    APP_REPLICAS: int = Field(default=1, ge=1)

    FIRST_SUPERUSER: str = "admin@recipeapi.com"

    PRESTART_MAX_WAIT: float = Field(default=300, ge=0)
    PRESTART_RETRY_INTERVAL: float = Field(default=1, gt=0)

    LOG_LEVEL: Literal["critical", "error", "warning", "info", "debug"] = "info"

    # HTTP
    DOCS_ENABLED: bool = True
    CORS_ORIGINS: Annotated[list[str], NoDecode] = Field(default_factory=list)
    MAX_BODY_SIZE: int = Field(default=64 * 1024, ge=1024, description="bytes per request body")

    # Serving (read by gunicorn.conf.py)
    HOST: str = "0.0.0.0"
    PORT: int = 8001
    WEB_CONCURRENCY: int | None = Field(default=None, ge=1)
    GUNICORN_TIMEOUT: int = 30
    GUNICORN_GRACEFUL_TIMEOUT: int = 20
    GUNICORN_KEEPALIVE: int = 5
    FORWARDED_ALLOW_IPS: str = "127.0.0.1"

    @field_validator("LOG_LEVEL", mode="before")
    @classmethod
    def _lowercase_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("CORS_ORIGINS", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        # `a,b` in the environment is friendlier than a JSON list.
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_placeholder_password(self) -> "Settings":
        if self.ENVIRONMENT == "production" and self.POSTGRES_PASSWORD == PLACEHOLDER_PASSWORD:
            raise ValueError(
                "POSTGRES_PASSWORD is the placeholder from .env.example; set a real password"
            )
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def database_url(self) -> str:
        if self.DATABASE_URL:
            return normalise_database_url(self.DATABASE_URL)
        if self.POSTGRES_SERVER:
            return URL.create(
                "postgresql+psycopg2",
                username=self.POSTGRES_USER,
                password=self.POSTGRES_PASSWORD or None,
                host=self.POSTGRES_SERVER,
                port=self.POSTGRES_PORT,
                database=self.POSTGRES_DB,
            ).render_as_string(hide_password=False)
        return "sqlite:///./example.db"

    @property
    def migration_database_url(self) -> str:
        """Where the prestart steps connect: MIGRATION_DATABASE_URL, else the app's database."""
        if self.MIGRATION_DATABASE_URL:
            return normalise_database_url(self.MIGRATION_DATABASE_URL)
        return self.database_url

    def for_prestart(self) -> "Settings":
        """These settings with the database the prestart steps use as the one to connect to."""
        return self.model_copy(update={"DATABASE_URL": self.migration_database_url})


@lru_cache
def get_settings() -> Settings:
    return Settings()
