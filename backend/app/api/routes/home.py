from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.api.deps import SessionDep
from app.crud.recipe import latest_recipes

# Starlette's Jinja2Templates autoescapes .html templates.
templates = Jinja2Templates(directory=Path(__file__).resolve().parents[2] / "templates")
router = APIRouter(tags=["pages"])


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep) -> HTMLResponse:
    """The ten newest recipes as a page."""
    return templates.TemplateResponse(
        request,
        "index.html",
        {"recipes": latest_recipes(session, limit=10), "docs_url": request.app.docs_url},
    )
