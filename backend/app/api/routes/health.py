import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from app.db.migrations import current_revision, head_revision, known_revisions
from app.schemas.health import Health, Readiness

router = APIRouter(tags=["health"])
logger = logging.getLogger(__name__)


@router.get("/health", response_model=Health)
async def liveness() -> Health:
    """The process answers; the database is not touched, so an outage never restarts workers."""
    return Health(status="ok")


@router.get("/health/ready", response_model=Readiness, responses={503: {"model": Readiness}})
def readiness(request: Request) -> JSONResponse:
    """Ready when the database answers and its schema is at this release's newest migration, or
    past it: a newer release migrated it during a rolling update. Migrations expand before they
    contract (docs/kubernetes.md), so this release's code works on that schema, and turning
    unready would take the old pods out of service before the new ones are ready."""
    engine: Engine = request.app.state.engine
    head = head_revision()
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            revision = current_revision(connection)
    except SQLAlchemyError as exc:
        logger.warning("readiness: database unreachable (%s)", exc.__class__.__name__)
        body = Readiness(status="unavailable", head=head, detail="database unreachable")
        return JSONResponse(body.model_dump(), status_code=503)
    if revision is not None and revision not in known_revisions():
        detail = f"database at revision {revision}, newer than this release's {head}"
        body = Readiness(status="ok", revision=revision, head=head, detail=detail)
        return JSONResponse(body.model_dump())
    if revision != head:
        detail = f"database at revision {revision}, expected {head}: run the migrations"
        body = Readiness(status="unavailable", revision=revision, head=head, detail=detail)
        return JSONResponse(body.model_dump(), status_code=503)
    return JSONResponse(Readiness(status="ok", revision=revision, head=head).model_dump())
