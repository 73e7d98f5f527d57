"""Initial data: the first superuser and the tutorial recipes, inserted once per database.

The `seed` table records that they went in. Every later prestart finds the record and touches
nothing, so a starter recipe that users deleted or renamed stays deleted or renamed.
"""

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select

from app.models import Recipe, Seed, User

logger = logging.getLogger(__name__)

INITIAL = "initial"

seed_table = Seed.metadata.tables[Seed.__tablename__]
user_table = User.metadata.tables[User.__tablename__]
recipe_table = Recipe.metadata.tables[Recipe.__tablename__]


def seed_initial_data(
    connection: Connection,
    superuser_email: str,
    superuser_password_hash: Callable[[], str | None],
    recipes: Iterable[Mapping[str, str]],
) -> int:
    """Insert the starter data in the caller's transaction, unless this database has had it;
    returns how many rows were added.

    The caller holds the prestart lock (`app/db/locks.py`), so a concurrent seed waits, then
    finds the record. `superuser_password_hash` is called only when the superuser is created.
    """
    email = superuser_email.lower()
    seeded = connection.execute(select(seed_table).where(seed_table.c.name == INITIAL)).first()
    if seeded is not None:
        if seeded.superuser_email != email:
            logger.warning(
                "FIRST_SUPERUSER is %s, but this database was seeded on %s with superuser %s; "
                "the seed runs once, so nothing changed: create or promote %s by hand",
                email,
                seeded.seeded_at,
                seeded.superuser_email or "(none)",
                email,
            )
        return 0
    added = 0
    superuser_id = connection.execute(
        select(user_table.c.id).where(user_table.c.email == email)
    ).scalar()
    if superuser_id is None:
        password_hash = superuser_password_hash()
        superuser_id = connection.execute(
            insert(user_table).returning(user_table.c.id),
            {"email": email, "is_superuser": True, "hashed_password": password_hash},
        ).scalar_one()
        added += 1
        logger.info("created superuser %s", email)
        if password_hash is None:
            logger.warning(
                "FIRST_SUPERUSER_PASSWORD is not set: superuser %s cannot log in until a "
                "password is set",
                email,
            )
    rows = [{**recipe, "submitter_id": superuser_id} for recipe in recipes]
    if rows:
        connection.execute(insert(recipe_table), rows)
        added += len(rows)
    connection.execute(
        insert(seed_table),
        {"name": INITIAL, "superuser_email": email, "seeded_at": datetime.now(UTC)},
    )
    return added
