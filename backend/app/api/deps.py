"""What the routes take from the app."""

from fastapi import Request

from app.db.database import Database


def database(request: Request) -> Database:
    """The worker's database, built in the lifespan: a route does its one unit of work with
    `await database(request).read(...)` or `.write(...)`.

    A plain call rather than a `Depends`: FastAPI's dependency resolution costs measurably more
    (docs/performance.md) for what is an attribute lookup.
    """
    db: Database = request.app.state.database
    return db
