"""/docs and /redoc work without internet access: their assets are shipped with the app, and no
page the app serves names another host.

In-process: the pages' references, the assets, the OAuth2 hooks, DOCS_ENABLED=false. In headless
Chromium against the real server (slow): both UIs render every operation of /openapi.json while
every host but the server's is unresolvable, and the page requests nothing elsewhere.
"""

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api.docs import ASSETS_DIR, ASSETS_PATH
from app.main import create_app
from bench.databases import sqlite_url
from bench.servers import Server, serving_stack
from tests.utils.browser import ARTIFACTS, Rendering, find_chromium, render
from tests.utils.migrations import migrate
from tests.utils.recipe import create_recipe
from tests.utils.settings import settings_for

OAUTH2_REDIRECT = "/docs/oauth2-redirect"
PAGES = ["/", "/docs", "/redoc", OAUTH2_REDIRECT]
SHIPPED_SCRIPTS = {
    "swagger-ui": "swagger-ui-bundle.js",
    "redoc": "redoc.standalone.js",
}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""")
SCRIPT_URL = re.compile(r"""https?://[^\s'"`<>)]+""")


class _References(HTMLParser):
    """What a page makes a browser load or contact: `src` and `href` (except `<a href>`, a link
    the reader may follow, such as a recipe's source), `url()` and `@import` in styles, and any
    http(s) URL written in an inline script."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._inside: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._inside = tag if tag in ("style", "script") else None
        for name, value in attrs:
            if value is None:
                continue
            if name == "src" or (name == "href" and tag != "a"):
                self.urls.append(value)
            elif name == "style":
                self.urls.extend(css_references(value))

    def handle_endtag(self, tag: str) -> None:
        self._inside = None

    def handle_data(self, data: str) -> None:
        if self._inside == "style":
            self.urls.extend(css_references(data))
        elif self._inside == "script":
            self.urls.extend(SCRIPT_URL.findall(data))


def css_references(css: str) -> list[str]:
    return [first or second for first, second in CSS_URL.findall(css)]


def page_references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    parser.close()
    return parser.urls


def elsewhere(references: list[str], own_origin: str) -> list[str]:
    """The references that name a host other than `own_origin`'s (protocol-relative included)."""
    own = urlsplit(own_origin).netloc
    found = []
    for reference in references:
        parts = urlsplit(reference)
        if parts.scheme in ("data", "blob"):
            continue
        if parts.netloc and parts.netloc != own:
            found.append(reference)
    return found


# --- In-process ------------------------------------------------------------------------------


def test_no_served_page_references_another_host(client: TestClient) -> None:
    # A recipe whose source is elsewhere: the home page links to it, which loads nothing.
    create_recipe(client, url="https://example.com/vesuvio")

    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        assert response.headers["content-type"].startswith("text/html"), (path, response.headers)
        references = page_references(response.text)
        assert elsewhere(references, str(client.base_url)) == [], f"{path}:\n{response.text}"


def test_docs_pages_load_their_assets_from_the_app(client: TestClient) -> None:
    expected_types = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    for page in ("/docs", "/redoc"):
        references = page_references(client.get(page).text)
        assets = [ref for ref in references if ref.startswith(f"{ASSETS_PATH}/")]
        assert len(assets) >= 2, f"{page} loads no shipped script: {references}"
        for asset in assets:
            response = client.get(asset)
            assert response.status_code == 200, f"{page} -> {asset}: {response.status_code}"
            content_type = response.headers["content-type"]
            expected = expected_types[Path(asset).suffix]
            assert content_type.startswith(expected), f"{asset}: {content_type}"
            shipped = ASSETS_DIR / asset.removeprefix(f"{ASSETS_PATH}/")
            assert response.content == shipped.read_bytes(), f"{asset} is not {shipped}"
            if asset.endswith(".css"):
                found = elsewhere(css_references(response.text), str(client.base_url))
                assert found == [], f"{asset} loads from elsewhere: {found}"


def test_redoc_page_lets_the_browser_load_images_only_from_the_app(client: TestClient) -> None:
    # ReDoc's side menu asks its vendor's CDN for a logo; the policy stops that request.
    response = client.get("/redoc")

    policy = response.headers.get("content-security-policy", "")
    assert re.fullmatch(r"img-src 'self'( (data|blob):)*", policy), response.headers


def test_swagger_ui_keeps_fastapis_oauth2_hooks(app: FastAPI) -> None:
    # As a password-flow login would configure it: the settings reach Swagger UI's initOAuth.
    app.swagger_ui_init_oauth = {"clientId": "recipe-docs", "scopes": "recipes"}

    with TestClient(app) as client:
        page = client.get("/docs").text
        redirect = client.get(OAUTH2_REDIRECT)

    assert 'ui.initOAuth({"clientId": "recipe-docs", "scopes": "recipes"})' in page, page
    assert f"oauth2RedirectUrl: window.location.origin + '{OAUTH2_REDIRECT}'" in page, page
    assert redirect.status_code == 200, redirect.text
    assert "window.opener.swaggerUIRedirectOauth2" in redirect.text, redirect.text


def test_docs_pages_follow_the_root_path_behind_a_proxy(app: FastAPI) -> None:
    with TestClient(app, root_path="/api") as client:
        docs = client.get("/docs").text
        redoc = client.get("/redoc").text

    assert "url: '/api/openapi.json'" in docs, docs
    assert f'src="/api{ASSETS_PATH}/swagger-ui/swagger-ui-bundle.js"' in docs, docs
    assert f"window.location.origin + '/api{OAUTH2_REDIRECT}'" in docs, docs
    assert '<redoc spec-url="/api/openapi.json">' in redoc, redoc
    assert f'src="/api{ASSETS_PATH}/redoc/redoc.standalone.js"' in redoc, redoc


def test_docs_disabled_removes_pages_and_assets(database_url: str) -> None:
    app = create_app(settings_for(database_url, DOCS_ENABLED=False))

    with TestClient(app) as client:
        home = client.get("/").text
        statuses = {
            path: client.get(path).status_code
            for path in [
                "/docs",
                "/redoc",
                "/openapi.json",
                OAUTH2_REDIRECT,
                f"{ASSETS_PATH}/swagger-ui/swagger-ui-bundle.js",
                f"{ASSETS_PATH}/swagger-ui/swagger-ui.css",
                f"{ASSETS_PATH}/redoc/redoc.standalone.js",
            ]
        }

    assert set(statuses.values()) == {404}, statuses
    assert "/docs" not in home, home


def test_shipped_assets_are_the_versions_their_readme_names() -> None:
    readme = (ASSETS_DIR / "README.md").read_text()
    versions = dict(re.findall(r"^\| `([\w-]+)/` \| `[\w-]+` \| (\d+\.\d+\.\d+) \|", readme, re.M))
    assert set(versions) == set(SHIPPED_SCRIPTS), versions
    for folder, script in SHIPPED_SCRIPTS.items():
        assert (ASSETS_DIR / folder / "LICENSE").is_file(), f"{folder}/ ships no LICENSE"
        text = (ASSETS_DIR / folder / script).read_text()
        assert f'"{versions[folder]}"' in text, f"{folder}/{script} is not {versions[folder]}"


# --- Headless Chromium against the real server ------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    return find_chromium()


@pytest.fixture(scope="module")
def docs_server(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = sqlite_url(tmp_path_factory.mktemp("docs") / "docs.db")
    migrate(url)
    with serving_stack(url, workers=1) as server:
        yield server


def openapi_document(server: Server) -> dict[str, Any]:
    response = httpx.get(f"{server.base_url}/openapi.json", timeout=10)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def operations(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(METHOD, path) -> operationId, for every operation the document describes."""
    return {
        (method.upper(), path): operation["operationId"]
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


class _SwaggerOperations(HTMLParser):
    """(METHOD, path) of each operation block Swagger UI rendered."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []
        self._method: str | None = None
        self._reading_method = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = (values.get("class") or "").split()
        if "opblock-summary-method" in classes:
            self._reading_method = True
        elif "opblock-summary-path" in classes and self._method:
            self.found.append((self._method, values.get("data-path") or ""))
            self._method = None

    def handle_data(self, data: str) -> None:
        if self._reading_method:
            self._method = data.strip()
            self._reading_method = False


def swagger_operations(dom: str) -> list[tuple[str, str]]:
    parser = _SwaggerOperations()
    parser.feed(dom)
    parser.close()
    return parser.found


def redoc_operations(dom: str) -> list[str]:
    """The operationIds of the sections ReDoc rendered."""
    return re.findall(r'data-section-id="operation/([^"]+)"', dom)


def shown(rendering: Rendering) -> str:
    return f"screenshot: {rendering.screenshot}"


def assert_rendered_offline(rendering: Rendering, script: str) -> None:
    assert rendering.screenshot.read_bytes().startswith(b"\x89PNG"), shown(rendering)
    assert any(url.endswith(f"{ASSETS_PATH}/{script}") for url in rendering.page_requests), (
        f"the page never loaded {script}: {rendering.page_requests}; {shown(rendering)}"
    )
    assert rendering.requests_elsewhere() == [], (
        f"the page asked other hosts: {rendering.requests_elsewhere()}; {shown(rendering)}"
    )


@pytest.mark.slow
def test_swagger_ui_renders_every_operation_offline(
    chromium: str, docs_server: Server, tmp_path: Path
) -> None:
    expected = operations(openapi_document(docs_server))

    rendering = render(
        chromium, f"{docs_server.base_url}/docs", ARTIFACTS / "docs-swagger-ui.png", tmp_path
    )

    rendered = swagger_operations(rendering.dom)
    assert sorted(rendered) == sorted(expected), (
        f"rendered {sorted(rendered)}, expected {sorted(expected)}; {shown(rendering)}"
    )
    assert "Recipe API" in rendering.dom, shown(rendering)
    assert_rendered_offline(rendering, "swagger-ui/swagger-ui-bundle.js")


@pytest.mark.slow
def test_redoc_renders_every_operation_offline(
    chromium: str, docs_server: Server, tmp_path: Path
) -> None:
    expected = operations(openapi_document(docs_server))

    rendering = render(
        chromium, f"{docs_server.base_url}/redoc", ARTIFACTS / "docs-redoc.png", tmp_path
    )

    rendered = redoc_operations(rendering.dom)
    assert sorted(rendered) == sorted(expected.values()), (
        f"rendered {sorted(rendered)}, expected {sorted(expected.values())}; {shown(rendering)}"
    )
    assert_rendered_offline(rendering, "redoc/redoc.standalone.js")


def test_page_reference_scan_sees_every_kind_of_reference() -> None:
    page = """<html><head>
        <link rel="stylesheet" href="https://cdn.example/ui.css">
        <style>@import "https://fonts.example/a.css"; b { background: url(//img.example/b) }</style>
        <script src="https://cdn.example/ui.js"></script>
        <script>load('https://spec.example/openapi.json')</script>
        </head><body style="background: url('http://img.example/c.png')">
        <a href="https://example.com/vesuvio">source</a><img src="/local.png">
        </body></html>"""

    found = elsewhere(page_references(page), "http://testserver")

    assert sorted(found) == sorted(
        [
            "https://cdn.example/ui.css",
            "https://fonts.example/a.css",
            "//img.example/b",
            "https://cdn.example/ui.js",
            "https://spec.example/openapi.json",
            "http://img.example/c.png",
        ]
    ), found
