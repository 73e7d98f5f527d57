"""The declarative base every table derives from."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, MetaData, TypeDecorator
from sqlalchemy.orm import DeclarativeBase

# Deterministic constraint names, so migrations name what they drop and stay portable between
# SQLite (batch mode recreates tables by name) and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def only_on(*dialects: str) -> dict[str, Any]:
    """`info=` for a schema object that its migration creates on these databases only."""
    return {"only_on": dialects}


def autogenerate_filter(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Alembic's `include_object` for `dialect`: objects marked `only_on` other databases are
    neither expected there nor reported missing, so autogenerate stays clean on each database.
    """

    def include_object(
        obj: Any, _name: str | None, _type: str, _reflected: bool, _compare_to: Any
    ) -> bool:
        dialects = getattr(obj, "info", {}).get("only_on")
        return dialects is None or dialect in dialects

    return include_object


class UtcDateTime(TypeDecorator[datetime]):
    """A moment in UTC on every database: `timestamp with time zone` on PostgreSQL, a plain
    datetime holding UTC where the database keeps no offset (SQLite, MariaDB). Aware datetimes
    go in and come out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UtcDateTime needs an aware datetime")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_mysql(dialect_name: str) -> bool:
    """MariaDB or MySQL: SQLAlchemy names the dialect after the URL's scheme."""
    return dialect_name in ("mysql", "mariadb")


def _normalised_default(text: str) -> str:
    value = text.strip().strip("()").strip("'\"").lower()
    return {"false": "0", "true": "1"}.get(value, value)


def compare_server_default(
    _context: Any,
    _inspected_column: Any,
    _metadata_column: Any,
    inspected_default: str | None,
    _metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    """Alembic's `compare_server_default`: a boolean default reads back as `0` on MariaDB and
    `false` elsewhere; both mean the same, so autogenerate stays clean on every database.
    Anything else is compared the usual way (None)."""
    if inspected_default is None or rendered_metadata_default is None:
        return None
    if _normalised_default(inspected_default) == _normalised_default(rendered_metadata_default):
        return False
    return None


def mysql_table_options(dialect: Any) -> dict[str, Any]:
    """`op.create_table` options for MariaDB and MySQL (other databases ignore them): utf8mb4
    whatever the server's default, and text compared byte for byte without padding, so that
    accents, case and trailing spaces count as on PostgreSQL (MariaDB's utf8mb4_nopad_bin,
    MySQL 8's utf8mb4_0900_bin). Case-insensitive where the API says so is done by the API."""
    collation = "utf8mb4_nopad_bin" if getattr(dialect, "is_mariadb", False) else "utf8mb4_0900_bin"
    # The same options under both prefixes: SQLAlchemy reads `mariadb_` for mariadb:// URLs.
    return {
        f"{prefix}_{option}": value
        for prefix in ("mysql", "mariadb")
        for option, value in (("charset", "utf8mb4"), ("collate", collation))
    }
