"""Prestart step 3: seed the database, once, in one transaction (all of it or nothing)."""

import logging
import sys

from app.core.config import Settings, get_settings
from app.core.logging import configure_logging
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
        with engine.connect() as connection, prestart_lock(connection), connection.begin():
            return seed_initial_data(
                connection, settings.FIRST_SUPERUSER, superuser_password_hash, RECIPES
            )
    finally:
        engine.dispose()


def main() -> int:
    settings = get_settings().for_prestart()
    configure_logging(settings.LOG_LEVEL)
    try:
        added = init(settings)
    except MissingSuperuserPassword:
        logger.error(
            "FIRST_SUPERUSER_PASSWORD is required in production to create the first superuser "
            "(%s); nothing was seeded",
            settings.FIRST_SUPERUSER,
        )
        return 1
    if added:
        logger.info("initial data inserted (%d rows)", added)
    else:
        logger.info("initial data: already seeded, nothing to do")
    return 0


if __name__ == "__main__":
    sys.exit(main())
