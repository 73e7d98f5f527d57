"""The compose stack on a real Docker engine, run the way docs/docker.md runs it.

Runs when a Docker engine answers with Compose v2.24 or newer; skipped with the reason
otherwise, a failure with REQUIRE_DOCKER=1. Nothing here depends on where the engine runs.

Each test works on a copy of the checkout (its files as a clone has them, plus the `.env` a user
makes from `.env.example` and a `.git`, which the images must not carry) under a compose project
name of its own, and takes that project down with its volumes when it ends, passed or failed.
Builds share the engine's build cache, so only the first one installs the dependencies. The
HTTP checks run inside the project's network, through `docker compose exec` or a one-off
container of the app image, so the copy publishes no port (PORTS_FILE): a server already on 8001
does not stop the tests.
"""

import json
import os
import re
import shutil
import subprocess
import time
import tomllib
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app.core.config import Settings
from app.db.migrations import PROJECT_ROOT, head_revision

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# A first build on a new machine downloads and installs every dependency.
BUILD_TIMEOUT = 1200
COMMAND_TIMEOUT = 300
PASSWORD = "compose-test-password"
RUNTIME_IMAGE = "recipe-api:latest"
# Docker reports sizes in SI units: 250 MB as `docker images` shows it.
MAX_RUNTIME_IMAGE_BYTES = 250 * 1000 * 1000
DATABASE_UNAVAILABLE = {"detail": "Database unavailable, try again shortly"}
# Read only by test_fails_on_purpose_when_switched_on.
FAIL_SWITCH = "RECIPE_API_FAIL_ON_PURPOSE"

DEV_FILES = ("docker-compose.yml", "docker-compose.override.yml")
PRODUCTION_FILES = ("docker-compose.yml",)
MARIADB_FILES = ("docker-compose.yml", "docker-compose.mariadb.yml")
MARIADB_PASSWORD = "compose-mariadb-password"
TEST_FILES = ("docker-compose.test.yml",)
PORTS_FILE = "ports.test.yml"
PORTS_OVERRIDE = """\
# Written by backend/tests/test_compose.py into its copy of the checkout: the tests reach the app
# inside the project's network, so it publishes no port (8001 may be taken on this machine).
services:
  app:
    ports: !reset []
"""

# What a clone does not have: local environments, caches, databases, benchmark results, .env.
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "__pycache__",
    "*.py[cod]",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "*.db",
    "*.db-shm",
    "*.db-wal",
    ".env",
    "results",
)


# --- The engine ------------------------------------------------------------------------------


def engine_problem() -> str | None:
    """Why the tests cannot run here, or None."""
    if shutil.which("docker") is None:
        return "no docker CLI on PATH"
    try:
        server = run_command(["docker", "version", "--format", "{{.Server.Version}}"], timeout=30)
        compose = run_command(["docker", "compose", "version", "--short"], timeout=30)
    except subprocess.TimeoutExpired as exc:
        return f"the Docker engine does not answer: {exc}"
    if server.returncode != 0:
        return f"no Docker engine answers: {server.stderr.strip()[-300:]}"
    version = re.match(r"v?(\d+)\.(\d+)", compose.stdout.strip())
    if compose.returncode != 0 or version is None:
        return f"Docker Compose v2 is missing: {compose.stderr.strip()[-300:]}"
    if (int(version[1]), int(version[2])) < (2, 24):
        return f"Docker Compose {compose.stdout.strip()} is older than 2.24"
    return None


@pytest.fixture(scope="session")
def docker_engine() -> None:
    problem = engine_problem()
    if problem is None:
        return
    if os.environ.get("REQUIRE_DOCKER") == "1":
        pytest.fail(f"{problem} (REQUIRE_DOCKER=1)")
    pytest.skip(problem)


def run_command(
    command: list[str],
    *,
    cwd: Path | None = None,
    timeout: float = COMMAND_TIMEOUT,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        env=compose_environment(),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def compose_environment() -> dict[str, str]:
    """This process's environment without what would change the stacks: compose's own variables
    and the app's settings (compose interpolates the shell's values over .env's)."""
    settings = set(Settings.model_fields)
    return {
        name: value
        for name, value in os.environ.items()
        if name not in settings and not name.startswith("COMPOSE_")
    }


def shown(result: subprocess.CompletedProcess[str], tail: int = 4000) -> str:
    command = " ".join(result.args)
    return (
        f"$ {command}\nexit {result.returncode}\n--- stdout\n{result.stdout[-tail:]}"
        f"\n--- stderr\n{result.stderr[-tail:]}"
    )


def docker(*args: str, timeout: float = COMMAND_TIMEOUT) -> str:
    result = run_command(["docker", *args], timeout=timeout)
    assert result.returncode == 0, shown(result)
    return result.stdout


def inspect(object_id: str) -> dict[str, Any]:
    (details,) = json.loads(docker("inspect", object_id))
    assert isinstance(details, dict)
    return details


def image_id(reference: str) -> str | None:
    result = run_command(["docker", "image", "inspect", "--format", "{{.Id}}", reference])
    return result.stdout.strip() if result.returncode == 0 else None


def dangling_images() -> set[str]:
    return set(docker("images", "--quiet", "--no-trunc", "--filter", "dangling=true").split())


# --- A checkout and its compose projects ---------------------------------------------------


@pytest.fixture
def checkout(tmp_path: Path, docker_engine: None) -> Path:
    """The working tree as a user has it after `cp .env.example .env` and setting the password."""
    root = tmp_path / "recipe-api"
    shutil.copytree(PROJECT_ROOT, root, ignore=NOT_IN_A_CLONE, symlinks=True)
    example = (root / ".env.example").read_text()
    dot_env = re.sub(r"(?m)^POSTGRES_PASSWORD=.*$", f"POSTGRES_PASSWORD={PASSWORD}", example)
    assert PASSWORD in dot_env
    (root / ".env").write_text(dot_env)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / PORTS_FILE).write_text(PORTS_OVERRIDE)
    return root


def set_env(root: Path, **settings: str) -> None:
    """Change settings in the checkout's .env, as a user edits it."""
    path = root / ".env"
    text = path.read_text()
    for name, value in settings.items():
        text, found = re.subn(rf"(?m)^#? ?{name}=.*$", f"{name}={value}", text)
        if not found:
            text += f"{name}={value}\n"
    path.write_text(text)


@dataclass
class Stack:
    """One compose project on a copy of the checkout, with the compose files a user names."""

    root: Path
    project: str
    files: tuple[str, ...]
    own_images: bool = False

    def compose(
        self,
        *args: str,
        timeout: float = COMMAND_TIMEOUT,
        input: str | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        result = run_command([*self.command(), *args], cwd=self.root, timeout=timeout, input=input)
        if check:
            assert result.returncode == 0, shown(result)
        return result

    def command(self) -> list[str]:
        files = [option for name in self.files for option in ("--file", name)]
        return ["docker", "compose", "--project-name", self.project, *files]

    def popen(self, *args: str) -> "subprocess.Popen[str]":
        """A compose command left running, its stdin and stdout piped."""
        return subprocess.Popen(
            [*self.command(), *args],
            cwd=self.root,
            env=compose_environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def up(self, *services: str, build: bool = False) -> None:
        options = ["--build"] if build else []
        self.compose("up", *options, "--detach", "--wait", *services, timeout=BUILD_TIMEOUT)

    def container(self, service: str) -> dict[str, Any]:
        ids = self.compose("ps", "--all", "--quiet", service).stdout.split()
        assert len(ids) == 1, f"{service}: containers {ids}"
        return inspect(ids[0])

    def exec_python(self, service: str, code: str, *args: str, input: str | None = None) -> str:
        """Python run in the service's running container."""
        return self.compose("exec", "-T", service, "python", "-c", code, *args, input=input).stdout

    def psql(self, sql: str) -> list[list[str]]:
        """Rows of a query in the db container, as its own user on its own database."""
        script = 'exec psql -v ON_ERROR_STOP=1 -qAt -F "|" -U "$POSTGRES_USER" -d "$POSTGRES_DB"'
        output = self.compose("exec", "-T", "db", "sh", "-c", script, input=sql).stdout
        return [line.split("|") for line in output.splitlines()]

    def mariadb(self, sql: str) -> list[list[str]]:
        """Rows of a query in the db container of docker-compose.mariadb.yml, as the app's user."""
        script = (
            'MYSQL_PWD="$MARIADB_PASSWORD" exec mariadb --batch --skip-column-names'
            ' -u "$MARIADB_USER" -D "$MARIADB_DATABASE"'
        )
        output = self.compose("exec", "-T", "db", "sh", "-c", script, input=sql).stdout
        return [line.split("\t") for line in output.splitlines()]

    def events(self, since: float) -> list[dict[str, Any]]:
        """The engine's container events of this project, oldest first."""
        output = docker(
            "events",
            "--since",
            f"{since:.0f}",
            "--until",
            f"{time.time() + 1:.0f}",
            "--filter",
            f"label=com.docker.compose.project={self.project}",
            "--filter",
            "type=container",
            "--format",
            "{{json .}}",
        )
        return [json.loads(line) for line in output.splitlines() if line.strip()]

    def down(self) -> None:
        """Containers, networks and volumes removed, and with `own_images` the images built
        under the project's name (recipe-api:latest stays, as after a user's `down`)."""
        images = ["--rmi", "local"] if self.own_images else []
        result = self.compose("down", "--volumes", "--remove-orphans", *images, check=False)
        if result.returncode != 0:
            # The files no longer load (a test removed .env): by the project's name alone.
            command = ["docker", "compose", "--project-name", self.project, "down", "--volumes"]
            assert run_command(command, cwd=self.root.parent).returncode == 0, shown(result)

    def resources_left(self) -> list[str]:
        label = f"label=com.docker.compose.project={self.project}"
        containers = docker("container", "ls", "--all", "--quiet", "--filter", label).split()
        volumes = docker("volume", "ls", "--quiet", "--filter", label).split()
        networks = docker("network", "ls", "--quiet", "--filter", label).split()
        return containers + volumes + networks


@pytest.fixture
def stacks(checkout: Path) -> Iterator[Callable[..., Stack]]:
    """Makes compose projects on the checkout; each is taken down with its volumes at the end,
    whatever became of the test."""
    made: list[Stack] = []

    def make(name: str, files: tuple[str, ...], own_images: bool = False) -> Stack:
        stack = Stack(checkout, f"recipe-{name}-{uuid.uuid4().hex[:8]}", files, own_images)
        made.append(stack)
        return stack

    yield make
    for stack in reversed(made):
        stack.down()
        assert stack.resources_left() == [], f"{stack.project} left resources behind"
    remove_images_replaced_by_tests()


TEST_PROJECT = re.compile(r"recipe-[a-z]+-[0-9a-f]{8}")


def remove_images_replaced_by_tests() -> None:
    """Compose labels an image with the project that built it, so each test's build gives
    recipe-api:latest a new id and leaves the one before dangling: remove those (when unused)."""
    dangling = docker(
        "images",
        "--quiet",
        "--no-trunc",
        "--filter",
        "dangling=true",
        "--filter",
        "label=com.docker.compose.project",
    ).split()
    if not dangling:
        return
    for image in json.loads(docker("image", "inspect", *dangling)):
        project = (image["Config"].get("Labels") or {}).get("com.docker.compose.project", "")
        if TEST_PROJECT.fullmatch(project):
            run_command(["docker", "image", "rm", image["Id"]])


# --- HTTP inside the project's network -------------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    json: Any = None
    body: str | None = None  # sent as it is, instead of `json`
    headers: dict[str, str] = field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        headers = dict(self.headers)
        body = self.body
        if self.json is not None:
            body = json.dumps(self.json)
            headers.setdefault("Content-Type", "application/json")
        return {"method": self.method, "path": self.path, "body": body, "headers": headers}


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # names in lower case
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


# Runs in a container of the app image (standard library only): the calls read from stdin, one
# after the other, the replies printed as JSON.
HTTP_CLIENT = """
import json, sys, urllib.error, urllib.request
replies = []
for call in json.load(sys.stdin):
    data = None if call["body"] is None else call["body"].encode()
    request = urllib.request.Request(
        sys.argv[1] + call["path"], data=data, method=call["method"], headers=call["headers"]
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, headers, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, body = error.code, error.headers, error.read()
    replies.append({
        "status": status,
        "headers": {name.lower(): value for name, value in headers.items()},
        "text": body.decode("utf-8", "replace"),
    })
json.dump(replies, sys.stdout)
"""


def http(stack: Stack, *calls: Call) -> list[Reply]:
    """The calls made from inside the app container, in order."""
    output = stack.exec_python(
        "app",
        HTTP_CLIENT,
        "http://127.0.0.1:8001",
        input=json.dumps([call.wire() for call in calls]),
    )
    return [Reply(**reply) for reply in json.loads(output)]


# The seed's superuser, with the password .env.example gives it (FIRST_SUPERUSER_PASSWORD).
ADMIN_LOGIN = "username=admin%40recipeapi.com&password=change-me"


def admin(stack: Stack) -> dict[str, str]:
    """Headers with the seed's superuser's token, from the stack's login endpoint."""
    (login,) = http(
        stack,
        Call(
            "POST",
            "/login/access-token",
            body=ADMIN_LOGIN,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
    )
    token = expect(login, 200, "POST /login/access-token").json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def new_recipe(label: str, auth: dict[str, str], **fields: Any) -> Call:
    payload = {"label": label, "source": None, "url": None, **fields}
    return Call("POST", "/recipe/", json=payload, headers=auth)


def new_user(email: str) -> Call:
    payload = {"email": email, "password": "long enough", "first_name": "Ada", "surname": "Byron"}
    return Call("POST", "/user/", json=payload)


def expect(reply: Reply, status: int, what: str) -> Reply:
    assert reply.status == status, f"{what}: {reply.status} {reply.text[:500]}"
    return reply


# --- up --------------------------------------------------------------------------------------


def first_event(events: list[dict[str, Any]], service: str, action: str) -> dict[str, Any]:
    for event in events:
        attributes = event["Actor"]["Attributes"]
        if attributes.get("com.docker.compose.service") == service and event["Action"] == action:
            return event
    actions = [
        (e["Actor"]["Attributes"].get("com.docker.compose.service"), e["Action"]) for e in events
    ]
    raise AssertionError(f"no {action!r} event for {service}: {actions}")


def test_up_builds_once_starts_db_prestart_app_in_order_and_every_endpoint_answers(
    stacks: Callable[..., Stack],
) -> None:
    stack = stacks("up", (*DEV_FILES, PORTS_FILE))
    dangling_before, latest_before = dangling_images(), image_id(RUNTIME_IMAGE)
    started = time.time()
    stack.up(build=True)

    # One image built: nothing left dangling but the image it replaced, if the code changed.
    left_dangling = dangling_images() - dangling_before - {latest_before}
    assert left_dangling == set(), f"up --build left images dangling: {left_dangling}"

    events = stack.events(since=started - 60)
    db_healthy = first_event(events, "db", "health_status: healthy")
    prestart_started = first_event(events, "prestart", "start")
    prestart_died = first_event(events, "prestart", "die")
    app_started = first_event(events, "app", "start")
    app_healthy = first_event(events, "app", "health_status: healthy")
    order = [db_healthy, prestart_started, prestart_died, app_started, app_healthy]
    times = [event["timeNano"] for event in order]
    assert times == sorted(times), [
        (e["Actor"]["Attributes"]["com.docker.compose.service"], e["Action"])
        for e in sorted(order, key=lambda e: e["timeNano"])
    ]
    assert prestart_died["Actor"]["Attributes"]["exitCode"] == "0"
    assert stack.container("prestart")["State"]["ExitCode"] == 0
    assert stack.container("app")["State"]["Health"]["Status"] == "healthy"

    check_every_endpoint(stack)


def check_every_endpoint(stack: Stack) -> None:
    """The README's table of endpoints, each answering as documented."""
    big = "x" * (Settings.model_fields["MAX_BODY_SIZE"].default + 1)
    auth = admin(stack)
    (
        home,
        recipe,
        missing,
        out_of_range,
        search,
        short_keyword,
        too_many,
        created,
        bad_url,
        unknown_submitter,
        too_large,
        user,
        same_email,
        bad_email,
        health,
        ready,
        docs,
        redoc,
        openapi,
    ) = http(
        stack,
        Call("GET", "/"),
        Call("GET", "/recipe/1"),
        Call("GET", "/recipe/2147483647"),
        Call("GET", "/recipe/0"),
        Call("GET", "/search/?keyword=CHICKEN&max_results=2"),
        Call("GET", "/search/?keyword=ch"),
        Call("GET", "/search/?keyword=chicken&max_results=101"),
        new_recipe("Compose stew", auth, source="the test", url="https://example.com/stew"),
        new_recipe("Bad url", auth, url="ftp://example.com/stew"),
        new_recipe("Nobody's", auth, submitter_id=2147483647),
        Call("POST", "/recipe/", body=big, headers={"Content-Type": "application/json", **auth}),
        new_user("Cook@Example.com"),
        new_user("COOK@example.com"),
        new_user("not an address"),
        Call("GET", "/health"),
        Call("GET", "/health/ready"),
        Call("GET", "/docs"),
        Call("GET", "/redoc"),
        Call("GET", "/openapi.json"),
    )
    assert "Chicken Vesuvio" in expect(home, 200, "GET /").text
    assert home.headers["content-type"].startswith("text/html")
    assert set(expect(recipe, 200, "GET /recipe/1").json()) == {
        "id",
        "label",
        "source",
        "url",
        "submitter_id",
    }
    assert expect(missing, 404, "missing recipe").json() == {
        "detail": "Recipe with ID 2147483647 not found"
    }
    expect(out_of_range, 422, "recipe id 0")
    results = expect(search, 200, "search").json()["results"]
    assert 1 <= len(results) <= 2, results
    assert all("chicken" in found["label"].lower() for found in results), results
    assert [found["id"] for found in results] == sorted(found["id"] for found in results)
    expect(short_keyword, 422, "2-character keyword")
    expect(too_many, 422, "max_results 101")
    stored = expect(created, 201, "POST /recipe/").json()
    assert (stored["label"], stored["url"]) == ("Compose stew", "https://example.com/stew")
    expect(bad_url, 422, "ftp url")
    expect(unknown_submitter, 422, "unknown submitter")
    expect(too_large, 413, "body over MAX_BODY_SIZE")
    registered = expect(user, 201, "POST /user/").json()
    assert (registered["email"], registered["is_superuser"]) == ("cook@example.com", False)
    expect(same_email, 409, "the same email in other case")
    expect(bad_email, 422, "invalid email")
    assert expect(health, 200, "/health").json() == {"status": "ok"}
    assert expect(ready, 200, "/health/ready").json()["revision"] == head_revision()
    assert expect(docs, 200, "/docs").headers["content-type"].startswith("text/html")
    assert expect(redoc, 200, "/redoc").headers["content-type"].startswith("text/html")
    assert "/recipe/{recipe_id}" in expect(openapi, 200, "/openapi.json").json()["paths"]

    recipe_path, user_path = f"/recipe/{stored['id']}", f"/user/{registered['id']}"
    changed, patch_missing, got_user, user_missing, deleted, deleted_again, gone = http(
        stack,
        Call("PATCH", recipe_path, json={"label": "Compose stew, slower"}, headers=auth),
        Call("PATCH", "/recipe/2147483647", json={"label": "nothing"}, headers=auth),
        Call("GET", user_path, headers=auth),
        Call("GET", "/user/2147483647", headers=auth),
        Call("DELETE", recipe_path, headers=auth),
        Call("DELETE", recipe_path, headers=auth),
        Call("GET", recipe_path),
    )
    assert expect(changed, 200, "PATCH").json() == {**stored, "label": "Compose stew, slower"}
    expect(patch_missing, 404, "PATCH a missing recipe")
    assert expect(got_user, 200, "GET /user/{id}").json() == registered
    expect(user_missing, 404, "missing user")
    expect(deleted, 204, "DELETE")
    expect(deleted_again, 404, "DELETE again")
    expect(gone, 404, "GET after DELETE")


# --- On MariaDB ------------------------------------------------------------------------------


def test_mariadb_variant_needs_its_password_then_runs_the_same_stack_on_mariadb(
    checkout: Path, stacks: Callable[..., Stack]
) -> None:
    stack = stacks("mariadb", (*MARIADB_FILES, PORTS_FILE))
    refused = stack.compose("up", "--detach", check=False)
    assert refused.returncode != 0, shown(refused)
    assert "MARIADB_PASSWORD is required" in refused.stderr, shown(refused)
    assert stack.compose("ps", "--all", "--quiet").stdout == "", "a refused up created containers"

    set_env(checkout, MARIADB_PASSWORD=MARIADB_PASSWORD)
    stack.up(build=True)
    assert stack.container("db")["Config"]["Image"] == "mariadb:11"
    assert stack.container("prestart")["State"]["ExitCode"] == 0
    check_every_endpoint(stack)

    # The tables are MariaDB's, in the collation the migrations ask for, at the head revision;
    # prestart run again changes nothing (the seed ran once).
    state = """
        SELECT version_num FROM alembic_version;
        SELECT TABLE_NAME, TABLE_COLLATION FROM information_schema.TABLES
          WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('recipe', 'user') ORDER BY 1;
        SELECT count(*) FROM `user`;
        SELECT count(*) FROM recipe;
    """
    before = stack.mariadb(state)
    assert before[:3] == [
        [head_revision()],
        ["recipe", "utf8mb4_nopad_bin"],
        ["user", "utf8mb4_nopad_bin"],
    ], before
    again = stack.compose("run", "--rm", "prestart", check=False)
    assert again.returncode == 0, shown(again)
    assert stack.mariadb(state) == before


# --- Without .env ----------------------------------------------------------------------------


def test_without_env_ps_logs_and_down_work_and_up_refuses_naming_the_password(
    checkout: Path, stacks: Callable[..., Stack]
) -> None:
    stack = stacks("noenv", (*DEV_FILES, PORTS_FILE))
    stack.up("db")
    (checkout / ".env").unlink()

    listed = stack.compose("ps", "--all", "--quiet")
    assert len(listed.stdout.split()) == 1, shown(listed)
    stack.compose("logs", "db")
    stack.compose("down", "--volumes")
    assert stack.compose("ps", "--all", "--quiet").stdout == ""

    for refused in (
        stack.compose("up", "--detach", check=False),
        stack.compose("run", "--rm", "prestart", check=False),
    ):
        assert refused.returncode != 0, shown(refused)
        assert "POSTGRES_PASSWORD is required" in refused.stderr, shown(refused)
    assert stack.compose("ps", "--all", "--quiet").stdout == "", "a refused up created containers"
    volumes = docker(
        "volume", "ls", "--quiet", "--filter", f"label=com.docker.compose.project={stack.project}"
    )
    assert volumes == "", f"a refused up created volumes: {volumes}"


# --- The ops job -----------------------------------------------------------------------------


def database_state(stack: Stack) -> list[list[str]]:
    """The schema's revision, columns and indexes, and a digest of every row."""
    return stack.psql(
        """
        SELECT string_agg(version_num, ',') FROM alembic_version;
        SELECT md5(string_agg(table_name || '.' || column_name || ' ' || data_type, ','
                              ORDER BY table_name, column_name))
          FROM information_schema.columns WHERE table_schema = 'public';
        SELECT md5(string_agg(indexdef, ',' ORDER BY indexdef)) FROM pg_indexes
          WHERE schemaname = 'public';
        SELECT count(*), md5(string_agg(r::text, ',' ORDER BY r.id)) FROM recipe r;
        SELECT count(*), md5(string_agg(u::text, ',' ORDER BY u.id)) FROM "user" u;
        """
    )


FAILING_REVISION = '''\
"""A migration that fails (written by the tests)."""

from alembic import op

revision = "9f_fails"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE half_done (id integer)")
    op.execute("SELECT no_such_column FROM no_such_table")


def downgrade() -> None:
    op.execute("DROP TABLE half_done")
'''


def test_prestart_job_changes_nothing_when_run_again_prints_sql_and_reports_failure(
    checkout: Path, stacks: Callable[..., Stack]
) -> None:
    stack = stacks("ops", (*PRODUCTION_FILES, PORTS_FILE))
    stack.compose("build", timeout=BUILD_TIMEOUT)

    # The DDL for review, with no database: nothing else of the project starts.
    offline = stack.compose(
        "run", "--rm", "--no-deps", "-T", "prestart", "alembic", "upgrade", "head", "--sql"
    )
    assert "CREATE TABLE recipe" in offline.stdout, shown(offline)
    assert f"'{head_revision()}'" in offline.stdout, shown(offline)
    assert stack.compose("ps", "--all", "--quiet").stdout == ""

    stack.up()
    before = database_state(stack)
    assert before[0] == [head_revision()], before
    for attempt in (1, 2):
        again = stack.compose("run", "--rm", "prestart", check=False)
        assert again.returncode == 0, shown(again)
        assert database_state(stack) == before, f"prestart run {attempt} changed the database"

    broken = checkout / "failing_revision.py"
    broken.write_text(FAILING_REVISION.format(head=head_revision()))
    mount = f"{broken}:/app/alembic/versions/9f_fails.py:ro"
    failed = stack.compose("run", "--rm", "--volume", mount, "prestart", check=False)
    assert failed.returncode == 1, shown(failed)
    assert "no_such_table" in failed.stdout + failed.stderr, shown(failed)
    assert database_state(stack) == before, "a failed migration left changes behind"
    assert stack.psql("SELECT to_regclass('half_done')") == [[""]]


# --- Data across stop, down and down -v ------------------------------------------------------


def test_data_survives_stop_and_down_and_only_down_volumes_removes_it(
    stacks: Callable[..., Stack],
) -> None:
    stack = stacks("data", (*DEV_FILES, PORTS_FILE))
    stack.up(build=True)
    (created,) = http(stack, new_recipe("Kept across restarts", admin(stack)))
    recipe = expect(created, 201, "POST /recipe/").json()

    stack.compose("stop")
    stack.up()
    (kept,) = http(stack, Call("GET", f"/recipe/{recipe['id']}"))
    assert expect(kept, 200, "after stop and up").json() == recipe

    query = f"SELECT label FROM recipe WHERE id = {recipe['id']}"
    stack.compose("down")
    stack.up("db")
    assert stack.psql(query) == [[recipe["label"]]], "down lost the data"

    stack.compose("down", "--volumes")
    stack.up("db")
    assert stack.psql("SELECT to_regclass('recipe')") == [[""]], "down -v kept the database"


# --- A database restart while requests flow ---------------------------------------------------

# Runs in the app container: THREADS clients alternating POST /recipe/ and GET /recipe/1. Prints
# "flowing" once writes are acknowledged; after stdin closes, goes on until the last RECOVERED
# answers were all 2xx (at most 60 s more); then prints what happened, as JSON.
# The start of the scripts below: `call` sends a request as the seed's superuser.
CLIENT_CALL = """
def token():
    request = urllib.request.Request(
        base + "/login/access-token", data=ADMIN_LOGIN.encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["access_token"]

auth = {"Content-Type": "application/json", "Authorization": "Bearer " + token()}

def call(method, path, payload=None):
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers=auth)
""".replace("ADMIN_LOGIN", repr(ADMIN_LOGIN))
FLOW_CLIENT = (
    """
import collections, json, sys, threading, time, urllib.error, urllib.request
base, threads, recovered = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
lock = threading.Lock()
outcomes, unavailable, acknowledged = [], collections.Counter(), []
stop = threading.Event()

"""
    + CLIENT_CALL
    + """
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()
    except OSError as error:
        return type(error).__name__, {}, b""

def client(n):
    i = 0
    while not stop.is_set():
        i += 1
        label = f"flow {n}-{i}"
        if i % 2:
            payload = {"label": label, "source": None, "url": None}
            status, headers, body = call("POST", "/recipe/", payload)
        else:
            status, headers, body = call("GET", "/recipe/1")
        with lock:
            outcomes.append(status)
            if status == 201:
                acknowledged.append([json.loads(body)["id"], label])
            elif status == 503:
                unavailable[json.dumps([body.decode(), headers.get("Retry-After")])] += 1

workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
for worker in workers:
    worker.start()
while len(acknowledged) < 20:
    time.sleep(0.05)
print("flowing", flush=True)
sys.stdin.read()
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    with lock:
        tail = outcomes[-recovered:]
        seen_503 = 503 in outcomes
    if seen_503 and len(tail) == recovered and all(s in (200, 201) for s in tail):
        break
    time.sleep(0.1)
stop.set()
for worker in workers:
    worker.join()
last_503 = max((i for i, s in enumerate(outcomes) if s == 503), default=-1)
json.dump({
    "outcomes": collections.Counter(map(str, outcomes)),
    "unavailable": unavailable,
    "acknowledged": acknowledged,
    "answered_after_last_503": sum(1 for s in outcomes[last_503 + 1:] if s in (200, 201)),
}, sys.stdout)
"""
)


def test_db_restart_while_requests_flow_gives_503_then_service_without_app_restart(
    stacks: Callable[..., Stack],
) -> None:
    stack = stacks("restart", (*PRODUCTION_FILES, PORTS_FILE))
    stack.up(build=True)
    app_before = stack.container("app")

    flow = stack.popen(
        "exec", "-T", "app", "python", "-c", FLOW_CLIENT, "http://127.0.0.1:8001", "4", "40"
    )
    try:
        assert flow.stdout is not None
        assert flow.stdin is not None
        assert flow.stdout.readline().strip() == "flowing", flow.communicate(timeout=30)
        stack.compose("restart", "db")
        output, errors = flow.communicate(timeout=120)  # closes stdin: the client winds down
    finally:
        if flow.poll() is None:
            flow.kill()
    assert flow.returncode == 0, errors
    report = json.loads(output)

    outcomes = report["outcomes"]
    assert outcomes.get("503", 0) > 0, f"no 503 while the database restarted: {outcomes}"
    assert set(outcomes) <= {"200", "201", "503"}, f"other answers than 2xx and 503: {outcomes}"
    bodies = [json.loads(answer) for answer in report["unavailable"]]
    assert all(json.loads(body) == DATABASE_UNAVAILABLE for body, _ in bodies), bodies
    assert all(retry_after == "1" for _, retry_after in bodies), bodies
    assert report["answered_after_last_503"] >= 40, f"no service after the restart: {outcomes}"

    app_after = stack.container("app")
    assert app_after["State"]["StartedAt"] == app_before["State"]["StartedAt"], "app restarted"
    assert app_after["RestartCount"] == app_before["RestartCount"], "app restarted"

    stored = {
        (int(id_), label)
        for id_, label in stack.psql("SELECT id, label FROM recipe WHERE label LIKE 'flow %'")
    }
    acknowledged = {(id_, label) for id_, label in report["acknowledged"]}
    lost = acknowledged - stored
    assert not lost, (
        f"{len(lost)} of {len(acknowledged)} acknowledged writes lost: {sorted(lost)[:10]}"
    )


# --- Stopping the app with requests in flight -------------------------------------------------

# Runs in a one-off container of the app image: READS GETs and WRITES POSTs at once, each waiting
# for its answer; prints the outcomes as JSON.
IN_FLIGHT_CLIENT = (
    """
import json, sys, threading, urllib.error, urllib.request
base, reads, writes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
outcomes = []

"""
    + CLIENT_CALL
    + """
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            outcomes.append(response.status)
    except urllib.error.HTTPError as error:
        outcomes.append(error.code)
    except OSError as error:
        outcomes.append(type(error).__name__)

calls = [("GET", "/recipe/1", None)] * reads + [
    ("POST", "/recipe/", {"label": f"in flight {n}", "source": None, "url": None})
    for n in range(writes)
]
threads = [threading.Thread(target=call, args=c) for c in calls]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
json.dump(outcomes, sys.stdout)
"""
)
IN_FLIGHT_READS, IN_FLIGHT_WRITES = 4, 2
# How long the requests stay in flight after `docker compose stop app` begins.
HELD_AFTER_STOP = 3.0


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.2)


def waiting_requests(stack: Stack) -> int:
    ((count,),) = stack.psql(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = 'recipe-api' AND wait_event_type = 'Lock'"
    )
    return int(count)


def test_stop_app_lets_requests_in_flight_finish_and_exits_0_within_the_grace_period(
    checkout: Path, stacks: Callable[..., Stack]
) -> None:
    # The requests wait on a lock the test holds: no statement timeout, room in the pool for all.
    set_env(checkout, DB_STATEMENT_TIMEOUT_MS="60000", DB_POOL_SIZE="10")
    stack = stacks("stop", (*PRODUCTION_FILES, PORTS_FILE))
    stack.up(build=True)
    config = json.loads(stack.compose("config", "--format", "json").stdout)
    grace = int(config["services"]["app"]["stop_grace_period"].removesuffix("s"))

    locker = stack.popen(
        "exec", "-T", "db", "sh", "-c", 'exec psql -qAt -U "$POSTGRES_USER" -d "$POSTGRES_DB"'
    )
    client: subprocess.Popen[str] | None = None
    stopping: subprocess.Popen[str] | None = None
    try:
        assert locker.stdin is not None
        assert locker.stdout is not None
        locker.stdin.write(
            "BEGIN;\nLOCK TABLE recipe IN ACCESS EXCLUSIVE MODE;\nSELECT 'locked';\n"
        )
        locker.stdin.flush()
        assert locker.stdout.readline().strip() == "locked", locker.communicate(timeout=30)

        client = stack.popen(
            "run",
            "--rm",
            "--no-deps",
            "-T",
            "prestart",
            "python",
            "-c",
            IN_FLIGHT_CLIENT,
            "http://app:8001",
            str(IN_FLIGHT_READS),
            str(IN_FLIGHT_WRITES),
        )
        in_flight = IN_FLIGHT_READS + IN_FLIGHT_WRITES
        wait_for(lambda: waiting_requests(stack) >= in_flight, 60, "requests waiting on the lock")

        stopping = stack.popen("stop", "app")
        stop_began = time.monotonic()
        time.sleep(HELD_AFTER_STOP)
        stopped_early = stopping.poll() is not None
        locker.stdin.write("COMMIT;\n")
        locker.stdin.flush()
        stop_output = stopping.communicate(timeout=grace + 30)
        stopped_after = time.monotonic() - stop_began
        client_output, client_errors = client.communicate(timeout=60)
        locker.communicate(timeout=30)
    finally:
        for process in (locker, client, stopping):
            if process is not None and process.poll() is None:
                process.kill()

    assert not stopped_early, f"the app stopped with requests in flight: {stop_output}"
    assert stopping.returncode == 0, stop_output
    assert client.returncode == 0, client_errors
    outcomes = Counter(json.loads(client_output))
    assert outcomes == Counter({200: IN_FLIGHT_READS, 201: IN_FLIGHT_WRITES}), outcomes
    state = stack.container("app")["State"]
    assert (state["ExitCode"], state["OOMKilled"]) == (0, False), state
    assert HELD_AFTER_STOP <= stopped_after < grace, f"stopped after {stopped_after:.1f}s"
    assert stack.psql("SELECT count(*) FROM recipe WHERE label LIKE 'in flight %'") == [
        [str(IN_FLIGHT_WRITES)]
    ]


# --- Production mode -------------------------------------------------------------------------

# Runs in the app container: every process, with its parent, user ids and command line.
PROCESSES = """
import json, os, sys
processes = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            command = cmdline.read().replace(b"\\0", b" ").decode().strip()
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
    except OSError:
        continue
    processes.append({"pid": int(pid), "ppid": int(fields["PPid"]),
                      "uids": fields["Uid"].split(), "command": command})
json.dump(processes, sys.stdout)
"""


def test_production_mode_runs_gunicorn_workers_as_uid_10001_and_the_image_healthcheck_passes(
    checkout: Path, stacks: Callable[..., Stack]
) -> None:
    set_env(checkout, WEB_CONCURRENCY="3")
    stack = stacks("prod", (*PRODUCTION_FILES, PORTS_FILE))
    stack.up(build=True)

    app = stack.container("app")
    assert app["Config"]["User"] == "10001:10001"
    processes = json.loads(stack.exec_python("app", PROCESSES))
    master = next(p for p in processes if p["pid"] == 1)
    assert "gunicorn" in master["command"], processes
    workers = [p for p in processes if p["ppid"] == 1 and "gunicorn" in p["command"]]
    assert len(workers) == 3, processes
    assert {uid for p in processes for uid in p["uids"]} == {"10001"}, processes

    # The image run on its own, as an orchestrator without compose's healthcheck would: its own
    # HEALTHCHECK (probed every 2 s instead of 30, to keep the test short) turns healthy.
    network = next(iter(app["NetworkSettings"]["Networks"]))
    name = f"{stack.project}-image"
    docker(
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        network,
        "--env-file",
        str(checkout / ".env"),
        "--env",
        "POSTGRES_SERVER=db",
        "--health-interval",
        "2s",
        RUNTIME_IMAGE,
    )
    try:
        wait_for(
            lambda: inspect(name)["State"]["Health"]["Status"] == "healthy",
            60,
            "the image's HEALTHCHECK",
        )
        details = inspect(name)
        assert "/health'" in " ".join(details["Config"]["Healthcheck"]["Test"])
        assert details["State"]["Status"] == "running"
    finally:
        docker("rm", "--force", "--volumes", name)


# --- docker-compose.test.yml ------------------------------------------------------------------

LOCAL_STATE = """
import json, os, sys
json.dump(sorted(os.path.join(root, name) for root, dirs, files in os.walk("/app")
                 for name in dirs + files if name in (".env", ".git")), sys.stdout)
"""


def test_test_compose_file_passes_the_suite_in_containers_and_a_failing_test_fails_it(
    stacks: Callable[..., Stack],
) -> None:
    """In the containers, the suite's fast part (`-m "not slow"`, the same command with an
    argument); the whole suite takes minutes more and is run by hand (docs/docker.md)."""
    stack = stacks("suite", TEST_FILES, own_images=True)
    passed = stack.compose(
        "run",
        "--rm",
        "--build",
        "tests",
        "./scripts/test.sh",
        "-m",
        "not slow",
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert passed.returncode == 0, shown(passed)
    summary = passed.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary), summary
    assert not re.search(r"failed|error", summary), summary

    failing = stack.compose(
        "run",
        "--rm",
        "--env",
        f"{FAIL_SWITCH}=1",
        "tests",
        "./scripts/test.sh",
        f"backend/tests/test_compose.py::{test_fails_on_purpose_when_switched_on.__name__}",
        check=False,
    )
    assert failing.returncode == 1, shown(failing)
    assert "1 failed" in failing.stdout.strip().splitlines()[-1], shown(failing)

    # The test image copies the whole build context: .dockerignore keeps these out.
    local_state = stack.compose(
        "run", "--rm", "--no-deps", "-T", "tests", "python", "-c", LOCAL_STATE
    )
    assert json.loads(local_state.stdout) == [], local_state.stdout


def test_fails_on_purpose_when_switched_on() -> None:
    """Passes unless FAIL_SWITCH is 1, so that a run can prove that a failing test fails the
    command running the suite (the test above switches it on in the test container)."""
    assert os.environ.get(FAIL_SWITCH) != "1", f"failing on purpose ({FAIL_SWITCH}=1)"


# --- The image -------------------------------------------------------------------------------

# Runs in the runtime image: build tools on PATH, installed distributions, local files.
IMAGE_CONTENTS = """
import importlib.metadata, json, os, shutil, sys
json.dump({
    "tools": [t for t in ("cc", "gcc", "g++", "c++", "clang", "make", "ld") if shutil.which(t)],
    "distributions": [d.metadata["Name"] for d in importlib.metadata.distributions()],
    "local_state": sorted(os.path.join(root, name) for root, dirs, files in os.walk("/app")
                          for name in dirs + files if name in (".env", ".git")),
    "uid": os.getuid(),
}, sys.stdout)
"""


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dev_dependencies() -> set[str]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["optional-dependencies"]["dev"]
    return {normalised(re.split(r"[\[<>=!~; ]", requirement)[0]) for requirement in requirements}


def build_runtime_image(checkout: Path, tag: str) -> dict[str, Any]:
    """The Dockerfile's runtime target built by compose as `up --build` does, under a tag of
    its own (so that the stack's recipe-api:latest is not replaced)."""
    build = "build:\n      context: .\n      target: runtime"
    (checkout / "image.test.yml").write_text(
        f"services:\n  image:\n    image: {tag}\n    {build}\n"
    )
    Stack(checkout, f"recipe-image-{uuid.uuid4().hex[:8]}", ("image.test.yml",)).compose(
        "build", timeout=BUILD_TIMEOUT
    )
    return inspect(tag)


def test_image_is_lean_and_a_code_change_rebuilds_only_the_code_layers(
    checkout: Path,
) -> None:
    name = f"recipe-api-image-test:{uuid.uuid4().hex[:8]}"
    before, after = f"{name}-before", f"{name}-after"
    try:
        image = build_runtime_image(checkout, before)
        main = checkout / "backend" / "app" / "main.py"
        main.write_text(main.read_text() + "\n# a code-only change\n")
        changed = build_runtime_image(checkout, after)

        assert image["Size"] <= MAX_RUNTIME_IMAGE_BYTES, f"{image['Size'] / 1e6:.0f} MB"
        contents = json.loads(docker("run", "--rm", before, "python", "-c", IMAGE_CONTENTS))
        assert contents["tools"] == [], contents["tools"]
        assert contents["local_state"] == [], contents["local_state"]
        assert contents["uid"] == 10001
        installed = {normalised(name) for name in contents["distributions"]}
        assert {"fastapi", "gunicorn", "sqlalchemy"} <= installed, installed
        assert installed & dev_dependencies() == set()
    finally:
        for tag in (before, after):
            run_command(["docker", "image", "rm", "--force", tag])

    layers, changed_layers = image["RootFS"]["Layers"], changed["RootFS"]["Layers"]
    assert len(layers) == len(changed_layers), (layers, changed_layers)
    differing = [i for i, (a, b) in enumerate(zip(layers, changed_layers, strict=True)) if a != b]
    # `COPY backend/app/` and its bytecode: everything before them, the dependencies included,
    # comes from the cache.
    assert differing == [len(layers) - 2, len(layers) - 1], (
        f"layers rebuilt: {differing} of {len(layers)}"
    )
