"""The container files, checked without a Docker engine (test_compose.py runs them on one).

Linters: hadolint on the Dockerfile, shellcheck and `bash -n` on the scripts, the compose files
against the Compose Specification's JSON schema (the copy vendored in check-jsonschema, pinned by
the dev lock; Debian's docker-compose 1.29 predates `depends_on: {restart: true}`). Then the
files against each other: settings and .env.example, the paths and commands the Dockerfile and
compose files name, the secrets they must not carry, the shutdown timings.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.db.migrations import PROJECT_ROOT
from bench.servers import SCRIPTS, VENV_BIN, clean_env, run_command

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
COMPOSE = PROJECT_ROOT / "docker-compose.yml"
COMPOSE_OVERRIDE = PROJECT_ROOT / "docker-compose.override.yml"
COMPOSE_TEST = PROJECT_ROOT / "docker-compose.test.yml"
COMPOSE_MARIADB = PROJECT_ROOT / "docker-compose.mariadb.yml"
COMPOSE_FILES = [COMPOSE, COMPOSE_OVERRIDE, COMPOSE_TEST, COMPOSE_MARIADB]
COMPOSE_REQUIRED_ENV = PROJECT_ROOT / "docker-compose.required.env"
COMPOSE_MARIADB_ENV = PROJECT_ROOT / "docker-compose.mariadb.env"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
SHELL_SCRIPTS = [*sorted(SCRIPTS.glob("*.sh")), PROJECT_ROOT / ".ci" / "run"]


def tool(name: str) -> str:
    """A linter from the dev lock; missing is a skip on a laptop and a failure in CI."""
    candidate = VENV_BIN / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if found:
        return found
    message = f"{name} not found: install the dev lock (scripts/install.sh requirements-dev.txt)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true)")
    pytest.skip(message)


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- Dockerfile ------------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args_of(self, keyword: str) -> list[str]:
        return [args for instruction, args in self.instructions if instruction == keyword]


def dockerfile_stages() -> list[Stage]:
    """FROM ... AS name blocks with their instructions (continuations joined, comments out)."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        if (pending + line).strip():
            logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        instruction, _, args = line.strip().partition(" ")
        instruction, args = instruction.upper(), args.strip()
        if instruction == "FROM":
            base, _, name = args.partition(" AS ")
            stages.append(Stage(name.strip(), base.strip()))
        elif stages:
            stages[-1].instructions.append((instruction, args))
    return stages


def stage(name: str) -> Stage:
    return next(s for s in dockerfile_stages() if s.name == name)


def inherited(name: str, keyword: str) -> list[str]:
    """An instruction's values in a stage and the stages it is built FROM, base first."""
    by_name = {s.name: s for s in dockerfile_stages()}
    chain = [by_name[name]]
    while chain[-1].base in by_name:
        chain.append(by_name[chain[-1].base])
    return [value for s in reversed(chain) for value in s.args_of(keyword)]


def test_dockerfile_passes_hadolint_without_warnings() -> None:
    result = run(tool("hadolint"), "--no-color", str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_runtime_image_is_the_default_target_and_runs_as_a_fixed_non_root_user() -> None:
    stages = dockerfile_stages()
    assert stages[-1].name == "runtime", [s.name for s in stages]
    for name in ("runtime", "test"):
        users = inherited(name, "USER")
        assert users, f"stage {name} sets no USER"
        uid, _, gid = users[-1].partition(":")
        assert uid.isdigit(), f"stage {name} runs as {users[-1]!r}: give a numeric UID"
        assert int(uid) > 0, f"stage {name} runs as root"
        assert gid == "" or int(gid) > 0, users[-1]
    created = " ".join(inherited("runtime", "RUN"))
    assert re.search(r"useradd .*--uid (\d+)", created), "the user is created with a fixed --uid"


def test_runtime_image_serves_as_the_spec_says() -> None:
    env = " ".join(inherited("runtime", "ENV"))
    assert "PYTHONUNBUFFERED=1" in env
    path = re.search(r"PATH=(\S+)", env)
    assert path is not None, env
    assert path.group(1).startswith("/app/.venv/bin:"), env
    assert inherited("runtime", "EXPOSE") == [str(Settings.model_fields["PORT"].default)]
    assert inherited("runtime", "CMD")[-1] == '["scripts/start.sh"]'
    assert inherited("runtime", "WORKDIR")[-1] == "/app"


def copy_sources(stage_name: str | None = None) -> list[tuple[list[str], str]]:
    """(sources, destination) of the COPY instructions that take files from the build context."""
    copies = []
    for s in dockerfile_stages():
        if stage_name is not None and s.name != stage_name:
            continue
        for args in s.args_of("COPY"):
            if "--from=" not in args:
                words = [w for w in shlex.split(args) if not w.startswith("--")]
                copies.append((words[:-1], words[-1]))
    return copies


def test_runtime_image_keeps_the_repository_layout() -> None:
    """migrations.py finds alembic.ini from its own path; scripts cd to their parent."""
    copied = []
    for sources, destination in copy_sources("runtime"):
        for source in sources:
            assert destination in {"./", source}, f"COPY {source} {destination}"
            copied.append(source.rstrip("/"))
    needed = ["alembic.ini", "gunicorn.conf.py", "alembic", "scripts", "backend/app"]
    assert sorted(needed) == sorted(copied)


def healthcheck_code(command: str) -> str:
    """The Python source a `CMD ["python", "-c", CODE]` health check runs."""
    exec_form = json.loads(command.removeprefix("CMD").strip())
    assert exec_form[:2] == ["python", "-c"], exec_form
    code: str = exec_form[2]
    return code


def dockerfile_healthcheck() -> str:
    (check,) = inherited("runtime", "HEALTHCHECK")
    options, _, command = check.partition("CMD")
    assert "--start-period" in options, check
    return healthcheck_code("CMD" + command)


def test_dockerfile_healthcheck_probes_health_with_python_only() -> None:
    code = dockerfile_healthcheck()
    compile(code, "HEALTHCHECK", "exec")
    assert "/health'" in code, code
    instructions = [args for s in dockerfile_stages() for _, args in s.instructions]
    assert [args for args in instructions if re.search(r"\b(curl|wget)\b", args)] == []


def test_test_target_adds_the_dev_lock() -> None:
    copied_venvs = [args for args in inherited("test", "COPY") if "/app/.venv" in args]
    assert copied_venvs == ["--from=builder-dev /app/.venv /app/.venv"], copied_venvs
    installs = " ".join(inherited("builder-dev", "RUN"))
    assert "requirements-dev.txt" in installs, installs
    runtime = " ".join(inherited("runtime", "RUN") + inherited("runtime", "COPY"))
    assert "requirements-dev.txt" not in runtime


def test_every_path_the_dockerfile_names_exists() -> None:
    copied = [source for sources, _ in copy_sources() for source in sources]
    assert copied
    for source in copied:
        assert (PROJECT_ROOT / source).exists(), f"COPY names {source}, missing from the repo"
    run_and_cmd = [*inherited("builder-dev", "RUN"), *json.loads(inherited("runtime", "CMD")[-1])]
    for script in re.findall(r"scripts/[\w.-]+\.sh", " ".join(run_and_cmd)):
        assert os.access(PROJECT_ROOT / script, os.X_OK), f"{script} is not executable"


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(re-include?, pattern) pairs in Docker's syntax: `*` within a directory, `**` across."""
    rules = []
    for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = re.escape(line.removeprefix("!").strip("/"))
        pattern = pattern.replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*")
        pattern = pattern.replace(r"\?", "[^/]").replace(r"\[", "[").replace(r"\]", "]")
        rules.append((negated, re.compile(pattern)))
    return rules


def dockerignored(path: str) -> bool:
    """Excluded from the build context: the last rule matching the path or a parent wins."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for negated, pattern in dockerignore_rules():
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            ignored = not negated
    return ignored


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "example.db",
        "data/x.db-wal",
        "x.db-writers",
        ".env",
        ".env.prod",
    ],
)
def test_dockerignore_keeps_local_state_and_secrets_out(path: str) -> None:
    assert dockerignored(path), f"{path} would be sent to the build"


def test_dockerignore_keeps_what_the_images_copy() -> None:
    needed = [source.rstrip("/") for sources, _ in copy_sources() for source in sources]
    assert [path for path in needed if dockerignored(path)] == []
    # The test image copies the whole context: what the suite reads must be in it.
    needed = [
        "scripts/start.sh",
        "alembic/env.py",
        "backend/app/main.py",
        "backend/tests/conftest.py",
        ".env.example",
        "Dockerfile",
        "docker-compose.yml",
        "pyproject.toml",
    ]
    assert [path for path in needed if dockerignored(path)] == []


# --- Shell scripts ---------------------------------------------------------------------------


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_script_parses_and_is_executable(script: Path) -> None:
    result = run("bash", "-n", str(script))
    assert result.returncode == 0, result.stderr
    assert os.access(script, os.X_OK), f"{script} is not executable"
    assert script.read_text().startswith("#!/usr/bin/env bash\n")


def test_scripts_pass_shellcheck() -> None:
    result = run(tool("shellcheck"), "--norc", *map(str, SHELL_SCRIPTS))
    assert result.returncode == 0, result.stdout + result.stderr


# --- Compose files ---------------------------------------------------------------------------


# Compose's merge tags: how a file combines with the ones before it, not part of its content.
MERGE_TAG = re.compile(r"!(override|reset)\b ?")


class ComposeLoader(yaml.SafeLoader):  # type: ignore[misc]
    """YAML as compose reads one file: a `!override` or `!reset` value is the value itself."""


def untagged(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)


ComposeLoader.add_constructor("!override", untagged)
ComposeLoader.add_constructor("!reset", untagged)


def compose(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(path.read_text(), Loader=ComposeLoader)
    return loaded


def test_compose_files_match_the_compose_specification(tmp_path: Path) -> None:
    # The schema's YAML reader knows no merge tags: each file is checked without them.
    untagged = []
    for path in COMPOSE_FILES:
        copy = tmp_path / path.name
        copy.write_text(MERGE_TAG.sub("", path.read_text()))
        untagged.append(str(copy))
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", *untagged)
    assert result.returncode == 0, result.stdout + result.stderr


INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}`; `$$` is a literal `$`."""

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        current = env.get(name)
        missing = current is None or (op is not None and op.startswith(":") and current == "")
        if op and op.endswith("?") and missing:
            raise LookupError(f"{name}: {arg}")
        if op and op.endswith("-") and missing:
            return arg
        return current or ""

    return INTERPOLATION.sub(replace, value.replace("$$", "\0")).replace("\0", "$")


def interpolated(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolated(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolated(value, env) for key, value in node.items()}
    return node


def env_file_values(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY\b")
# The mariadb image's switches, named like secrets: "1" or nothing.
IMAGE_SWITCHES = {"MARIADB_ALLOW_EMPTY_ROOT_PASSWORD", "MARIADB_RANDOM_ROOT_PASSWORD"}


def test_compose_requires_postgres_password_and_has_no_secret_defaults() -> None:
    required = COMPOSE_REQUIRED_ENV.read_text()
    references = re.findall(r"\$\{POSTGRES_PASSWORD[^}]*\}", required)
    assert references, "docker-compose.required.env passes POSTGRES_PASSWORD on"
    assert all(ref.startswith("${POSTGRES_PASSWORD:?") for ref in references), references
    with pytest.raises(LookupError, match="POSTGRES_PASSWORD"):
        interpolated(env_file_values(COMPOSE_REQUIRED_ENV), {})
    for name, service in compose(COMPOSE)["services"].items():
        assert COMPOSE_REQUIRED_ENV.name in service["env_file"], f"{name} lacks the password"
    # Compose interpolates the compose files for every command: a required variable there would
    # stop `ps`, `logs` and `down` too. The required env file is read only to create containers.
    for path in COMPOSE_FILES:
        assert not re.search(r"\$\{\w+:?\?", path.read_text()), f"{path.name} requires a variable"
    for path in COMPOSE_FILES:
        for name, service in compose(path)["services"].items():
            for key, value in (service.get("environment") or {}).items():
                if SECRET_NAME.search(key) and key not in IMAGE_SWITCHES:
                    assert str(value).startswith(f"${{{key}:?"), f"{path.name}: {name}.{key}"
    for name in ("ENV", "ARG"):
        for args in inherited("runtime", name) + inherited("test", name):
            assert not SECRET_NAME.search(args), args


def test_compose_mariadb_variant_requires_its_password_in_place_of_postgres() -> None:
    with pytest.raises(LookupError, match="MARIADB_PASSWORD"):
        interpolated(env_file_values(COMPOSE_MARIADB_ENV), {})
    # Every service reads the MariaDB env file instead of docker-compose.required.env, so that
    # POSTGRES_PASSWORD is not asked for.
    services = compose(COMPOSE_MARIADB)["services"]
    assert set(services) == set(compose(COMPOSE)["services"])
    for name, service in services.items():
        files = [f if isinstance(f, str) else f["path"] for f in service["env_file"]]
        assert COMPOSE_MARIADB_ENV.name in files, name
        assert COMPOSE_REQUIRED_ENV.name not in files, name
    assert re.search(r"(?m)^ {4}env_file: !override$", COMPOSE_MARIADB.read_text())


def test_compose_mariadb_variant_gives_the_app_the_database_db_creates() -> None:
    dot_env = {**env_file_values(ENV_EXAMPLE), "MARIADB_PASSWORD": "a-real-password"}
    services = interpolated(compose(COMPOSE_MARIADB), dot_env)["services"]
    variant_env = interpolated(env_file_values(COMPOSE_MARIADB_ENV), dot_env)
    base_app = interpolated(compose(COMPOSE), dot_env)["services"]["app"]["environment"]
    # The app container: .env, then the variant's env file, `environment` over them.
    settings = Settings(_env_file=None, **{**dot_env, **variant_env, **base_app})
    url = make_url(settings.database_url)
    db = {**variant_env, **services["db"]["environment"]}
    assert (url.drivername, url.host, url.port) == ("mysql+pymysql", "db", 3306)
    assert (url.username, url.password, url.database) == (
        db["MARIADB_USER"],
        db["MARIADB_PASSWORD"],
        db["MARIADB_DATABASE"],
    )
    assert re.fullmatch(r"mariadb:\d+(\.\d+)?", services["db"]["image"])
    assert services["db"]["healthcheck"]["test"][:2] == ["CMD", "healthcheck.sh"]
    assert services["db"]["volumes"] == ["mariadb-data:/var/lib/mysql"]


def compose_healthcheck_code(service: Mapping[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], test
    code: str = test[3]
    compile(code, "healthcheck", "exec")
    return code


def test_compose_runs_with_only_the_env_example_copied() -> None:
    dot_env = env_file_values(ENV_EXAMPLE)
    config = interpolated(compose(COMPOSE), dot_env)
    required = interpolated(env_file_values(COMPOSE_REQUIRED_ENV), dot_env)
    # What the app container sees: the env_files (.env, then the required one), `environment`
    # over them.
    container_env = {**dot_env, **required, **config["services"]["app"]["environment"]}
    assert container_env["POSTGRES_PASSWORD"] == dot_env["POSTGRES_PASSWORD"]
    settings = Settings(_env_file=None, **container_env)
    assert settings.database_url.startswith("postgresql+psycopg2://"), settings.database_url
    assert settings.WEB_CONCURRENCY is not None, "a container's CPU count lies: set workers"


def test_compose_stack_is_db_prestart_app() -> None:
    services = compose(COMPOSE)["services"]
    assert set(services) == {"db", "prestart", "app"}
    db, prestart, app = services["db"], services["prestart"], services["app"]

    assert re.fullmatch(r"postgres:\d+(-\w+)?", db["image"]), db["image"]
    data_volume = db["volumes"][0].split(":")[0]
    assert data_volume in compose(COMPOSE)["volumes"], "the database lives in a named volume"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert "start_period" in db["healthcheck"]

    assert prestart["command"] == ["scripts/prestart.sh"]
    assert prestart["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert prestart["restart"] == "no"

    assert app["command"] == ["scripts/start.sh"]
    # Without `restart: true`: `docker compose restart db` leaves the app serving.
    assert app["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "prestart": {"condition": "service_completed_successfully"},
    }
    assert [port.split(":")[-1] for port in app["ports"]] == ["8001"]
    assert "/health/ready'" in compose_healthcheck_code(app)

    # One environment block, one image: prestart migrates the database the app serves.
    shared = {k: v for k, v in app["environment"].items() if k != "WEB_CONCURRENCY"}
    assert shared == prestart["environment"]
    assert "WEB_CONCURRENCY" in app["environment"]
    for key in ("image", "env_file"):
        assert app[key] == prestart[key], key
    # One service builds the image, so `up --build` builds it once; the other never pulls it.
    assert prestart["build"]["target"] == "runtime"
    assert "build" not in app
    assert app["pull_policy"] == "never"


def test_compose_stop_grace_period_outlasts_gunicorn_graceful_timeout() -> None:
    grace = compose(COMPOSE)["services"]["app"]["stop_grace_period"]
    match = re.fullmatch(r"(\d+)s", grace)
    assert match, f"stop_grace_period {grace!r}: write it in seconds"
    graceful_timeouts = {
        Settings.model_fields["GUNICORN_GRACEFUL_TIMEOUT"].default,
        int(env_file_values(ENV_EXAMPLE)["GUNICORN_GRACEFUL_TIMEOUT"]),
    }
    assert all(int(match[1]) > timeout for timeout in graceful_timeouts), graceful_timeouts


def test_test_stack_runs_the_suite_against_a_throwaway_database() -> None:
    services = compose(COMPOSE_TEST)["services"]
    assert services["db"]["tmpfs"] == ["/var/lib/postgresql/data"]
    assert "volumes" not in services["db"]
    tests = services["tests"]
    assert tests["build"]["target"] == "test"
    assert tests["command"] == ["./scripts/test.sh"]
    assert tests["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "mariadb": {"condition": "service_healthy"},
    }
    assert services["mariadb"]["tmpfs"] == ["/var/lib/mysql"]
    assert "volumes" not in services["mariadb"]
    environment = tests["environment"]
    assert (environment["REQUIRE_POSTGRES"], environment["REQUIRE_MYSQL"]) == ("1", "1")
    assert make_url(environment["TEST_DATABASE_URL"]).host == "db", environment
    assert make_url(environment["TEST_MYSQL_URL"]).host == "mariadb", environment


def test_override_adds_development_reload_to_existing_services() -> None:
    base, override = compose(COMPOSE)["services"], compose(COMPOSE_OVERRIDE)["services"]
    assert set(override) <= set(base)
    command = override["app"]["command"]
    assert "--reload" in command, command
    assert command[0] in {"uvicorn", "gunicorn"}, command
    assert (VENV_BIN / command[0]).exists(), f"{command[0]} is not in the locked dependencies"
    mounts = [volume.split(":")[:2] for volume in override["app"]["volumes"]]
    assert ["./backend", "/app/backend"] in mounts, mounts


def test_every_command_and_path_the_compose_files_name_exists() -> None:
    stages = {s.name for s in dockerfile_stages()}
    for path in COMPOSE_FILES:
        for name, service in compose(path)["services"].items():
            where = f"{path.name}: {name}"
            if "build" in service:
                assert (PROJECT_ROOT / service["build"]["context"] / "Dockerfile").exists()
                assert service["build"]["target"] in stages, where
            command = service.get("command")
            if command and command[0].endswith(".sh"):
                script = PROJECT_ROOT / command[0]
                assert os.access(script, os.X_OK), f"{where} runs {command[0]}: not executable"
            for volume in service.get("volumes", []):
                source = volume.split(":")[0]
                if source.startswith("."):
                    assert (PROJECT_ROOT / source).exists(), f"{where} mounts {source}"
            for env_file in service.get("env_file", []):
                if isinstance(env_file, dict):
                    # Optional, so that a missing .env ends on POSTGRES_PASSWORD's own message.
                    assert env_file == {"path": ".env", "required": False}, where
                else:
                    assert (PROJECT_ROOT / env_file).is_file(), f"{where} reads {env_file}"
    assert ENV_EXAMPLE.exists(), "`cp .env.example .env` is the one step before compose up"
    # What scripts/start.sh and prestart.sh need beside themselves, at the image's layout.
    for needed in ("gunicorn.conf.py", "alembic.ini", "alembic/env.py", "backend/app/main.py"):
        assert (PROJECT_ROOT / needed).exists(), needed


# --- Settings and .env.example ---------------------------------------------------------------

ASSIGNMENT = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=")


def env_example_names() -> list[str]:
    return [m[1] for line in ENV_EXAMPLE.read_text().splitlines() if (m := ASSIGNMENT.match(line))]


def compose_variables() -> set[str]:
    """The variables compose interpolates from .env into the compose and env files."""
    files = [*COMPOSE_FILES, COMPOSE_REQUIRED_ENV, COMPOSE_MARIADB_ENV]
    return {match["name"] for path in files for match in INTERPOLATION.finditer(path.read_text())}


def test_env_example_lists_every_setting_and_only_settings_and_compose_variables() -> None:
    names = env_example_names()
    fields = set(Settings.model_fields)
    assert sorted(fields - set(names)) == [], "settings missing from .env.example"
    unread = set(names) - fields - compose_variables()
    assert sorted(unread) == [], "variables in .env.example that nothing reads"
    assert sorted(compose_variables() - set(names)) == [], "compose variables .env.example lacks"
    assert len(names) == len(set(names)), "a variable appears twice"


def test_env_example_comments_every_setting() -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    for index, line in enumerate(lines):
        if ASSIGNMENT.match(line):
            above = lines[index - 1]
            assert above.startswith("# "), f"no comment above {line}"
            assert not ASSIGNMENT.match(above), f"no comment above {line}"


def test_env_example_loads_and_refuses_its_placeholder_in_production() -> None:
    settings = Settings(_env_file=ENV_EXAMPLE)
    assert settings.database_url.startswith("sqlite"), "a copied .env keeps dev.sh on SQLite"
    with pytest.raises(ValueError, match="placeholder"):
        Settings(_env_file=ENV_EXAMPLE, ENVIRONMENT="production")


# --- gunicorn.conf.py ------------------------------------------------------------------------

GUNICORN_PROBE = """
import json, runpy
from gunicorn.config import Config
ns = runpy.run_path("gunicorn.conf.py")
known = Config().settings
public = {k: v for k, v in ns.items() if not k.startswith("_") and not callable(v)
          and type(v).__name__ != "module"}
print(json.dumps({"unknown": sorted(set(public) - set(known)),
                  "values": {k: v for k, v in public.items() if k in known}}))
"""


def gunicorn_config(**settings: str) -> dict[str, Any]:
    """gunicorn.conf.py evaluated in a clean process, as `scripts/start.sh` runs it."""
    env = clean_env(**settings)
    for name in ("WEB_CONCURRENCY", "HOST", "PORT"):
        if name not in settings:
            env.pop(name, None)
    result = run_command([str(VENV_BIN / "python"), "-c", GUNICORN_PROBE], env, timeout=60)
    assert result.returncode == 0, result.stderr
    probed: dict[str, Any] = json.loads(result.stdout)
    return probed


def test_gunicorn_config_sets_only_gunicorn_settings_from_the_app_settings() -> None:
    probed = gunicorn_config(
        WEB_CONCURRENCY="3", GUNICORN_GRACEFUL_TIMEOUT="7", FORWARDED_ALLOW_IPS="10.0.0.1"
    )
    assert probed["unknown"] == [], "gunicorn ignores these names silently"
    values = probed["values"]
    assert values["worker_class"] == "uvicorn_worker.UvicornWorker"
    assert values["bind"] == "0.0.0.0:8001"
    assert values["workers"] == 3
    assert values["graceful_timeout"] == 7
    assert values["forwarded_allow_ips"] == "10.0.0.1"
    assert values["preload_app"] is False, "nothing may be opened in the master"
    assert values["control_socket_disable"] is True, "no socket in a home the user may lack"
    # One line per request, written by the app: no access log of gunicorn's or uvicorn's.
    assert values["accesslog"] is None
    logging = values["logconfig_dict"]
    assert logging["handlers"]["stdout"]["stream"] == "ext://sys.stdout", logging
    assert logging["formatters"]["line"]["()"] == "app.core.logging.JsonFormatter", logging
    for name in ("gunicorn.access", "uvicorn.access"):
        assert logging["loggers"][name] == {"handlers": [], "propagate": False}, name


def test_gunicorn_logs_text_when_asked() -> None:
    logging = gunicorn_config(LOG_FORMAT="text")["values"]["logconfig_dict"]
    assert logging["formatters"]["line"]["()"] == "app.core.logging.TextFormatter", logging


def test_gunicorn_default_worker_count_is_capped() -> None:
    workers = gunicorn_config()["values"]["workers"]
    assert 2 <= workers <= 8, workers
