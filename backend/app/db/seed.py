"""Initial data: the first superuser and the tutorial recipes, each created only if missing."""

import logging
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.locks import lock_for_prestart
from app.models import Recipe, User

logger = logging.getLogger(__name__)


def seed_initial_data(
    session: Session, superuser_email: str, recipes: Iterable[Mapping[str, str]]
) -> int:
    """Add what is missing in the caller's transaction; returns how many rows were added.

    Holding the prestart lock makes a concurrent seed wait, then find everything present.
    """
    lock_for_prestart(session.connection())
    added = 0
    email = superuser_email.lower()
    superuser = session.scalar(select(User).where(User.email == email))
    if superuser is None:
        superuser = User(email=email, is_superuser=True)
        session.add(superuser)
        session.flush()
        added += 1
        logger.info("created superuser %s", email)
    for data in recipes:
        exists = session.scalar(
            select(Recipe.id).where(
                Recipe.label == data["label"], Recipe.url.is_not_distinct_from(data["url"])
            )
        )
        if exists is None:
            session.add(Recipe(**data, submitter_id=superuser.id))
            added += 1
    session.flush()
    return added
