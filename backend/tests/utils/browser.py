"""Headless Chromium (Debian's `chromium`) for tests that look at a page as a browser shows it."""

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bench.servers import PROJECT_ROOT

# Screenshots the tests keep for a person to look at (ignored by git).
ARTIFACTS = PROJECT_ROOT / "test-artifacts"

# Root-safe and quiet: no sandbox (CI runs as root), no GPU, and none of the browser's own
# background traffic (updates, sync, field trials).
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def find_chromium() -> str:
    """The browser's path; a skip without one, a failure with REQUIRE_CHROMIUM=1."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    reason = "Chromium not found: `apt-get install chromium` (Debian) to run the browser tests"
    if os.environ.get("REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"{reason} (REQUIRE_CHROMIUM=1)")
    pytest.skip(reason)


@dataclass
class Rendering:
    url: str
    dom: str
    # Every URL the page itself asked for (document, scripts, styles, fetches, images), in order.
    page_requests: list[str]
    screenshot: Path

    def requests_elsewhere(self) -> list[str]:
        """The page's requests to anything but the origin it was loaded from."""
        origin = _origin(self.url)
        return [
            url
            for url in self.page_requests
            if urlsplit(url).scheme not in ("data", "blob") and _origin(url) != origin
        ]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def render(
    chromium: str,
    url: str,
    screenshot: Path,
    work_dir: Path,
    *,
    virtual_time_ms: int = 15_000,
    window: tuple[int, int] = (1280, 1600),
) -> Rendering:
    """`url` loaded in a fresh profile with every host but its own unresolvable, as on a machine
    without internet; the DOM once scripts have run, a screenshot, and the page's requests."""
    host = urlsplit(url).hostname
    profile = work_dir / "profile"
    net_log = work_dir / "net-log.json"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.unlink(missing_ok=True)
    command = [
        chromium,
        *HEADLESS_FLAGS,
        f"--user-data-dir={profile}",
        f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {host}",
        f"--log-net-log={net_log}",
        f"--virtual-time-budget={virtual_time_ms}",
        f"--window-size={window[0]},{window[1]}",
        f"--screenshot={screenshot}",
        "--dump-dom",
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, (
        f"chromium exited {result.returncode} on {url}:\n{result.stderr[-3000:]}"
    )
    return Rendering(url, result.stdout, page_requests(net_log, url), screenshot)


def page_requests(net_log: Path, page_url: str) -> list[str]:
    """The URLs of the requests made for the page at `page_url`, read from Chromium's net log.

    The page's requests are the document itself and every load its origin initiated (scripts,
    styles, images, fetches; a load a stylesheet starts follows a request for that stylesheet).
    The browser's own traffic (updates, accounts, autofill) names no initiator.
    """
    try:
        log: dict[str, Any] = json.loads(net_log.read_text())
    except (OSError, ValueError) as exc:
        raise AssertionError(f"no readable net log at {net_log}: {exc}") from exc
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    origin = _origin(page_url)
    urls = []
    for event in log["events"]:
        params = event.get("params") or {}
        if event["type"] != start_job or "url" not in params:
            continue
        if params.get("initiator") == origin or params.get("request_type") == "main frame":
            urls.append(str(params["url"]))
    return urls
