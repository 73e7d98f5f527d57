"""Prestart step 3: seed the database, in one transaction (all of it or nothing)."""

import logging

from app.core.config import Settings, get_settings
from app.core.logging import configure_logging
from app.db.seed import seed_initial_data
from app.db.session import create_db_engine, create_session_factory
from app.recipe_data import RECIPES

logger = logging.getLogger("app.initial_data")


def init(settings: Settings) -> int:
    # No statement timeout: waiting for another job's prestart lock may take as long as its
    # migration does.
    engine = create_db_engine(
        settings.model_copy(update={"DB_STATEMENT_TIMEOUT_MS": 0}), pooled=False
    )
    try:
        with create_session_factory(engine).begin() as session:
            return seed_initial_data(session, settings.FIRST_SUPERUSER, RECIPES)
    finally:
        engine.dispose()


def main() -> None:
    settings = get_settings().for_prestart()
    configure_logging(settings.LOG_LEVEL)
    added = init(settings)
    logger.info("initial data in place (%d rows added)", added)


if __name__ == "__main__":
    main()
