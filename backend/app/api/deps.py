"""Dependencies shared by the routes."""

from typing import Annotated

from fastapi import Depends, Request

from app.core.config import Settings
from app.db.database import Database


async def get_database(request: Request) -> Database:
    """The worker's database: a route does its one unit of work with `await db.read(...)` or
    `await db.write(...)`.

    `async` although it awaits nothing: FastAPI would send a plain `def` to a thread.
    """
    database: Database = request.app.state.database
    return database


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


DatabaseDep = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
