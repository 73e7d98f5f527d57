"""Prestart step 3: seed the database, once, in one transaction (all of it or nothing)."""

import logging
import sys
import time

from app.core.config import Settings, get_settings
from app.core.logging import configure_logging, step_fields
from app.db.locks import prestart_lock
from app.db.seed import seed_initial_data
from app.db.session import create_db_engine
from app.recipe_data import RECIPES

logger = logging.getLogger("app.initial_data")


class MissingSuperuserPassword(Exception):
    """Production creates no superuser that cannot log in."""


def init(settings: Settings) -> int:
    def superuser_password_hash() -> str | None:
        if settings.FIRST_SUPERUSER_PASSWORD is None:
            if settings.ENVIRONMENT == "production":
                raise MissingSuperuserPassword
            return None
        # Imported here: a database seeded already (every prestart but the first) needs no
        # password hashing, so the job skips loading it.
        from app.core.security import hash_password

        return hash_password(settings.FIRST_SUPERUSER_PASSWORD.get_secret_value())

    # No statement timeout: waiting for another job's prestart lock may take as long as its
    # migration does.
    engine = create_db_engine(
        settings.model_copy(update={"DB_STATEMENT_TIMEOUT_MS": 0}), pooled=False
    )
    try:
        with engine.connect() as connection:
            waiting = time.perf_counter()
            # Held until the seed's transaction has committed: a concurrent job then finds it.
            with prestart_lock(connection), connection.begin():
                lock_wait_ms = round((time.perf_counter() - waiting) * 1000, 1)
                logger.info(
                    "prestart lock taken after %.0f ms",
                    lock_wait_ms,
                    extra={"lock_wait_ms": lock_wait_ms},
                )
                return seed_initial_data(
                    connection, settings.FIRST_SUPERUSER, superuser_password_hash, RECIPES
                )
    finally:
        engine.dispose()


def main() -> int:
    settings = get_settings().for_prestart()
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    started = time.perf_counter()
    try:
        added = init(settings)
    except MissingSuperuserPassword:
        logger.error(
            "FIRST_SUPERUSER_PASSWORD is required in production to create the first superuser "
            "(%s); nothing was seeded",
            settings.FIRST_SUPERUSER,
            extra=step_fields("seed", "refused", started),
        )
        return 1
    except Exception:
        logger.exception("seed failed", extra=step_fields("seed", "failed", started))
        return 1
    done = step_fields("seed", "ok", started, rows_added=added)
    if added:
        logger.info("initial data inserted (%d rows)", added, extra=done)
    else:
        logger.info("initial data: already seeded, nothing to do", extra=done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
