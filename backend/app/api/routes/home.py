from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.api.deps import database
from app.api.errors import DATABASE_UNAVAILABLE_RESPONSE
from app.crud.recipe import latest_recipes

# Starlette's Jinja2Templates autoescapes .html templates.
templates = Jinja2Templates(directory=Path(__file__).resolve().parents[2] / "templates")
router = APIRouter(tags=["pages"], responses=DATABASE_UNAVAILABLE_RESPONSE)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> HTMLResponse:
    """The ten newest recipes as a page."""
    recipes = await database(request).read(latest_recipes, 10)
    return templates.TemplateResponse(
        request, "index.html", {"recipes": recipes, "docs_url": request.app.docs_url}
    )
