"""Swagger UI and ReDoc on assets shipped with the app, so the docs work without internet access.

FastAPI's own pages load their scripts, styles, favicon and fonts from third-party hosts. These are
the same pages (FastAPI's HTML, `swagger_ui_parameters`, `swagger_ui_init_oauth` and the OAuth2
redirect page all as FastAPI serves them), pointed at `app/docs_assets/` instead.
"""

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_DIR = Path(__file__).resolve().parents[1] / "docs_assets"
ASSETS_PATH = "/docs/assets"

# ReDoc 2's side menu shows its vendor's logo from the vendor's CDN, and hides the image when it
# fails to load. This policy keeps the browser from asking: images come from the app or inline.
REDOC_CONTENT_SECURITY_POLICY = "img-src 'self' data: blob:"

# Swagger UI's default validator is a third-party service; the BaseLayout FastAPI uses shows no
# validator badge, and null keeps it off whatever layout `swagger_ui_parameters` picks.
SWAGGER_UI_OFFLINE_PARAMETERS: dict[str, Any] = {"validatorUrl": None}


def _root_path(request: Request) -> str:
    """The prefix a proxy serves the app under (`--root-path`), as FastAPI's pages use it."""
    root_path: str = request.scope.get("root_path", "").rstrip("/")
    return root_path


def serve_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Swagger UI at `docs_url`, ReDoc at `redoc_url`, their assets under `ASSETS_PATH`.

    The app must be built with `docs_url=None, redoc_url=None` (so that FastAPI adds none of its
    own pages) and an `openapi_url`. Both URLs are then set on the app, where the home page reads
    them.
    """
    openapi_url = app.openapi_url
    if openapi_url is None:
        raise ValueError("the docs need the OpenAPI document: set openapi_url")
    if app.docs_url is not None or app.redoc_url is not None:
        raise ValueError("build the app with docs_url=None and redoc_url=None")

    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    async def swagger_ui_html(request: Request) -> HTMLResponse:
        root = _root_path(request)
        redirect_url = app.swagger_ui_oauth2_redirect_url
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/swagger-ui/favicon-32x32.png",
            oauth2_redirect_url=root + redirect_url if redirect_url else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters={
                **SWAGGER_UI_OFFLINE_PARAMETERS,
                **(app.swagger_ui_parameters or {}),
            },
        )

    async def swagger_ui_oauth2_redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc_html(request: Request) -> HTMLResponse:
        root = _root_path(request)
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = REDOC_CONTENT_SECURITY_POLICY
        return page

    app.add_route(docs_url, swagger_ui_html, include_in_schema=False)
    if app.swagger_ui_oauth2_redirect_url:
        app.add_route(
            app.swagger_ui_oauth2_redirect_url, swagger_ui_oauth2_redirect, include_in_schema=False
        )
    app.add_route(redoc_url, redoc_html, include_in_schema=False)
    app.docs_url = docs_url
    app.redoc_url = redoc_url
