"""Settings read from the environment and an optional `.env` file."""

import os
import re
import secrets
import sys
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

# Schemes without a driver, as hosting providers hand them out, and the driver each gets.
DRIVERS = {
    "postgres": "postgresql+psycopg2",
    "postgresql": "postgresql+psycopg2",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}


def normalise_database_url(url: str) -> str:
    """`postgres://`, `postgresql://`, `mysql://` and `mariadb://` with their driver spelt out."""
    scheme, separator, rest = url.partition("://")
    if separator and scheme in DRIVERS:
        return f"{DRIVERS[scheme]}://{rest}"
    return url


def mask_password(url: str | URL) -> str:
    """The URL as it may appear in logs and responses: password replaced by `***`."""
    return make_url(url).render_as_string(hide_password=True)


# The placeholders .env.example ships with: fine on a laptop, refused in production.
PLACEHOLDER_PASSWORD = "change-me"
PLACEHOLDER_SECRET_KEY = "change-me-to-a-random-string-of-at-least-32-bytes"
MIN_SECRET_KEY_BYTES = 32
ENV_FILE = ".env"

# A development server without SECRET_KEY signs its tokens with a key of its own, made when the
# process starts: tokens then end with the server. gunicorn.conf.py hands one key to all its
# workers through the environment, so that a token from one worker is good at the others.
_DEVELOPMENT_KEY = secrets.token_urlsafe(MIN_SECRET_KEY_BYTES)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=ENV_FILE, extra="ignore", frozen=True)

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

    # Authentication
    SECRET_KEY: SecretStr | None = None
    ACCESS_TOKEN_EXPIRE_MINUTES: int = Field(default=60, ge=1)
    USERS_OPEN_REGISTRATION: bool | None = None
    LOGIN_MAX_FAILURES: int = Field(default=5, ge=1)
    LOGIN_MAX_FAILURES_PER_CLIENT: int = Field(default=20, ge=1)
    LOGIN_FAILURE_WINDOW_SECONDS: int = Field(default=900, ge=1)

    FIRST_SUPERUSER: str = "admin@recipeapi.com"
    FIRST_SUPERUSER_PASSWORD: SecretStr | None = None

    PRESTART_MAX_WAIT: float = Field(default=300, ge=0)
    PRESTART_RETRY_INTERVAL: float = Field(default=1, gt=0)

    LOG_LEVEL: Literal["critical", "error", "warning", "info", "debug"] = "info"
    # One JSON object per line for log collectors; scripts/dev.sh asks for text.
    LOG_FORMAT: Literal["json", "text"] = "json"
    # Prometheus metrics at /metrics (keep that path off the public host: docs/operations.md).
    METRICS_ENABLED: bool = True

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

    @field_validator("LOG_LEVEL", "LOG_FORMAT", mode="before")
    @classmethod
    def _lowercase(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("CORS_ORIGINS", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        # `a,b` in the environment is friendlier than a JSON list.
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_secrets_in_production(self) -> "Settings":
        if self.ENVIRONMENT != "production":
            return self
        # The passwords of the URLs in use: POSTGRES_PASSWORD only when the URL is made of
        # POSTGRES_* (docker-compose.mariadb.yml sets DATABASE_URL and leaves it unused).
        for name, url in self._database_url_settings():
            if make_url(url).password == PLACEHOLDER_PASSWORD:
                raise ValueError(
                    f"{name} holds the placeholder password from .env.example; set a real one"
                )
        key = self.SECRET_KEY.get_secret_value() if self.SECRET_KEY else ""
        if not key:
            raise ValueError("SECRET_KEY is required in production")
        if key == PLACEHOLDER_SECRET_KEY:
            raise ValueError("SECRET_KEY is the placeholder from .env.example; set a random one")
        if len(key.encode()) < MIN_SECRET_KEY_BYTES:
            raise ValueError(f"SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes long")
        # Required by the seed alone, which checks it when it creates the superuser: the app's
        # pods need not hold it.
        password = self.FIRST_SUPERUSER_PASSWORD
        if password is not None and password.get_secret_value() == PLACEHOLDER_PASSWORD:
            raise ValueError(
                "FIRST_SUPERUSER_PASSWORD is the placeholder from .env.example; set a real one"
            )
        return self

    def _database_url_settings(self) -> list[tuple[str, str]]:
        """The URLs in use, each with the setting that holds its password."""
        if self.DATABASE_URL:
            urls = [("DATABASE_URL", self.DATABASE_URL)]
        else:
            urls = [("POSTGRES_PASSWORD", self.database_url)]
        if self.MIGRATION_DATABASE_URL:
            urls.append(("MIGRATION_DATABASE_URL", self.MIGRATION_DATABASE_URL))
        return urls

    @property
    def signing_key(self) -> str:
        """The key tokens are signed with: SECRET_KEY, or in development the process's own."""
        if self.SECRET_KEY and self.SECRET_KEY.get_secret_value():
            return self.SECRET_KEY.get_secret_value()
        return _DEVELOPMENT_KEY

    @property
    def open_registration(self) -> bool:
        """USERS_OPEN_REGISTRATION, or by default: open in development, closed in production."""
        if self.USERS_OPEN_REGISTRATION is None:
            return self.ENVIRONMENT == "development"
        return self.USERS_OPEN_REGISTRATION

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
    """The settings, read once; a bad value ends the process with one line saying which."""
    try:
        return Settings()
    except ValidationError as exc:
        for line in describe_errors(exc):
            print(f"configuration error: {line}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


# Values that must never be printed, not even when they are wrong.
_SECRET_NAME = re.compile(r"PASSWORD|SECRET")


def _source_of(name: str) -> str:
    if name in os.environ:
        return "the environment"
    env_file = Path(ENV_FILE)
    if env_file.is_file() and re.search(
        rf"^\s*(export\s+)?{name}\s*=", env_file.read_text(errors="replace"), re.MULTILINE
    ):
        return f"{env_file.resolve()}"
    return "the defaults"


def describe_errors(exc: ValidationError) -> list[str]:
    """One line per bad setting: its name, the value (never a secret's), what is wrong with it,
    and where it was read from."""
    lines = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        if error["loc"]:
            name = str(error["loc"][0])
            value = "***" if _SECRET_NAME.search(name) else repr(error["input"])[:80]
            lines.append(f"{name}={value} (read from {_source_of(name)}): {message}")
            continue
        # A rule across settings: its message starts with the setting it is about.
        named = re.match(r"[A-Z][A-Z0-9_]+", message)
        source = f" (read from {_source_of(named.group())})" if named else ""
        lines.append(f"{message}{source}")
    return lines
