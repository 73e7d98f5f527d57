"""Dependencies shared by the routes."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.core.config import Settings


def get_session(request: Request) -> Iterator[Session]:
    """One session and one transaction per request: committed here when the route returns,
    rolled back on any exception. CRUD functions flush and never commit.

    Used with scope="function", so the commit happens before the response is sent: a client
    never sees a 201 for a write that was not committed.
    """
    with request.app.state.session_factory() as session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        else:
            session.commit()


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
