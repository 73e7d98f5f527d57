"""scripts/prestart.sh run for real, as the one-off job before a rollout runs it.

Throwaway clusters (password auth, a port of their own) stand in for a database that comes up
late, never comes, or refuses the credentials; the shared PostgreSQL and SQLite files for the
repeated and concurrent runs.
"""

import contextlib
import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pymysql
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from app.core.config import normalise_database_url
from app.db.locks import PRESTART_LOCK_KEY
from app.db.migrations import PROJECT_ROOT, head_revision
from app.models import User
from app.recipe_data import RECIPES
from bench.databases import libpq_url, sqlite_url, throwaway_database
from bench.servers import SCRIPTS, clean_env, free_port, run_script, wait_until
from tests.utils.cluster import (
    PASSWORD,
    ThrowawayCluster,
    ThrowawayMariaDB,
    require_mariadbd,
    require_pg_bin,
)
from tests.utils.logs import json_lines

# Every test here starts prestart processes (about a second each) or a database cluster.
pytestmark = pytest.mark.slow

DEFAULT_SUPERUSER = "admin@recipeapi.com"
USERS = User.metadata.tables["user"]
SEED_ROWS = 1 + len(RECIPES)  # the superuser and the recipes


def _new_cluster() -> ThrowawayCluster:
    require_pg_bin()
    return ThrowawayCluster()


@pytest.fixture
def stopped_cluster() -> Iterator[ThrowawayCluster]:
    """A cluster that exists on disk but is not started: its port refuses connections."""
    cluster = _new_cluster()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="module")
def running_cluster() -> Iterator[ThrowawayCluster]:
    cluster = _new_cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


def _output(stdout: str, stderr: str) -> str:
    return f"--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"


def _run_prestart(env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    result = run_script("prestart.sh", env, timeout=timeout)
    return result.returncode, _output(result.stdout, result.stderr)


def _start_prestart(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(SCRIPTS / "prestart.sh")],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str], timeout: float) -> tuple[int, str]:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate(timeout=10)
        raise AssertionError(
            f"prestart still running after {timeout}s\n{_output(stdout, stderr)}"
        ) from None
    return process.returncode, _output(stdout, stderr)


def _kill_if_running(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def _assert_password_hidden(output: str, *passwords: str) -> None:
    for password in passwords:
        assert password not in output, f"password {password!r} printed by prestart:\n{output}"


def _assert_ready_and_seeded_once(url: str, superuser: str, output: str) -> None:
    """Schema at head, exactly one superuser, and each tutorial recipe once, submitted by it."""
    engine = create_engine(normalise_database_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            versions = connection.scalars(text("SELECT version_num FROM alembic_version")).all()
            users = connection.execute(
                select(USERS.c.id, USERS.c.email, USERS.c.is_superuser)
            ).all()
            recipes = connection.execute(
                text("SELECT label, url, source, submitter_id FROM recipe")
            ).all()
    finally:
        engine.dispose()
    state = f"versions={versions} users={users} recipes={recipes}\n{output}"
    assert versions == [head_revision()], state
    assert [(email, is_superuser) for _, email, is_superuser in users] == [(superuser, True)], state
    superuser_id = users[0][0]
    expected = Counter(
        (recipe["label"], recipe["url"], recipe["source"], superuser_id) for recipe in RECIPES
    )
    assert Counter(tuple(row) for row in recipes) == expected, state


def _log_lines(output: str) -> list[dict[str, Any]]:
    """The JSON lines the steps logged (one object per line on stdout)."""
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def _last_error_line(output: str) -> str:
    errors = [line["message"] for line in _log_lines(output) if line["level"] == "error"]
    assert errors, f"no error line logged:\n{output}"
    return str(errors[-1])


def _step(output: str, step: str) -> dict[str, Any]:
    """The closing line of a prestart step (wait, migrate, seed)."""
    lines = [line for line in _log_lines(output) if line.get("step") == step]
    assert len(lines) == 1, f"{len(lines)} closing lines of the {step} step:\n{output}"
    return lines[0]


def _logged_revisions(output: str) -> tuple[str, str]:
    """The revisions before and after the migration step, from alembic/env.py's line."""
    migrated = _step(output, "migrate")
    return str(migrated["revision_before"]), str(migrated["revision_after"])


def _rows_added(output: str) -> int:
    rows: int = _step(output, "seed")["rows_added"]
    return rows


def test_prestart_waits_for_a_database_that_comes_up_late(
    stopped_cluster: ThrowawayCluster,
) -> None:
    env = clean_env(
        DATABASE_URL=stopped_cluster.url(),
        PRESTART_RETRY_INTERVAL="0.5",
        PRESTART_MAX_WAIT="60",
    )
    started = time.monotonic()
    process = _start_prestart(env)
    try:
        time.sleep(5.5)
        assert process.poll() is None, (
            f"prestart ended before the database came up\n{_output(*process.communicate())}"
        )
        stopped_cluster.start()
        came_up = time.monotonic() - started
        code, output = _finish(process, timeout=60)
    finally:
        _kill_if_running([process])

    assert came_up >= 5, came_up
    assert code == 0, output
    # About ten refused attempts, but one line: the first failure, then at most every 10 s.
    waiting_lines = output.count("not accepting connections yet")
    assert waiting_lines == 1, f"{waiting_lines} lines about waiting\n{output}"
    assert "not accepting connections yet (0s of at most 60s, attempt 1)" in output, output
    assert "Connection refused" in output, output
    assert _logged_revisions(output) == ("None", head_revision()), output
    _assert_password_hidden(output, PASSWORD)
    _assert_ready_and_seeded_once(stopped_cluster.url(), DEFAULT_SUPERUSER, output)


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
@pytest.mark.parametrize("where", ["closed-port", "name-not-in-dns-yet"])
def test_prestart_waits_for_an_unreachable_database_then_gives_up_after_max_wait(
    scheme: str, where: str
) -> None:
    """A server not listening yet, or a compose service's name that resolves only once its
    container runs: waited for, and given up on after PRESTART_MAX_WAIT."""
    secret = "never-printed-secret"
    host = f"127.0.0.1:{free_port()}" if where == "closed-port" else "recipes-db.invalid"
    env = clean_env(
        DATABASE_URL=f"{scheme}://app:{secret}@{host}/recipes",
        PRESTART_RETRY_INTERVAL="0.5",
        PRESTART_MAX_WAIT="3",
    )
    started = time.monotonic()
    code, output = _run_prestart(env, timeout=60)
    elapsed = time.monotonic() - started

    assert code == 1, output
    assert 3 <= elapsed < 3 + 10, f"gave up after {elapsed:.1f}s\n{output}"
    assert "not accepting connections yet" in output, output
    assert _step(output, "wait")["outcome"] == "gave_up", output
    last_error = _last_error_line(output)
    assert "gave up waiting" in last_error, output
    if where == "closed-port":
        assert "Connection refused" in last_error, output
    assert "Context impl" not in output, f"alembic ran after the wait failed\n{output}"
    _assert_password_hidden(output, secret)


def _server_log_count(cluster: ThrowawayCluster, needle: str) -> int:
    return cluster.log_file.read_text(errors="replace").count(needle)


def _fill_connection_slots(dsn: str) -> tuple[list[psycopg2.extensions.connection], str]:
    """Connections opened until the server refuses one; returns them and the refusal."""
    held: list[psycopg2.extensions.connection] = []
    for _ in range(200):  # the throwaway cluster allows 100
        try:
            held.append(psycopg2.connect(dsn))
        except psycopg2.OperationalError as exc:
            return held, str(exc)
    for connection in held:
        connection.close()
    raise AssertionError("the server never ran out of connection slots")


def test_prestart_waits_while_the_server_has_no_connection_slot_for_its_role(
    running_cluster: ThrowawayCluster,
) -> None:
    # A role that is no superuser is refused with "remaining connection slots are reserved ..."
    # rather than "too many clients already": the same condition, and just as transient.
    role, role_password = "recipe_app", "app-secret"
    refusal_marker = "remaining connection slots are reserved"
    with throwaway_database(running_cluster.url(), prefix="prestart_slots") as url:
        # Open for the whole test: a backend that exits frees its slot only some time after
        # the client has moved on, which would let prestart in on its first try.
        admin = psycopg2.connect(running_cluster.url())
        held = [admin]
        process: subprocess.Popen[str] | None = None
        try:
            admin.autocommit = True
            with admin.cursor() as cursor:
                cursor.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{role_password}'")
                cursor.execute(f'ALTER DATABASE "{make_url(url).database}" OWNER TO {role}')
            role_url = make_url(url).set(username=role, password=role_password)
            role_connections, refusal = _fill_connection_slots(
                role_url.set(drivername="postgresql").render_as_string(hide_password=False)
            )
            held += role_connections
            assert refusal_marker in refusal, refusal
            process = _start_prestart(
                clean_env(
                    DATABASE_URL=role_url.render_as_string(hide_password=False),
                    PRESTART_RETRY_INTERVAL="0.5",
                    PRESTART_MAX_WAIT="60",
                )
            )
            # Let prestart be refused a few times, as the server's log shows, before freeing.
            refusals_seen = _server_log_count(running_cluster, refusal_marker)
            deadline = time.monotonic() + 30
            while _server_log_count(running_cluster, refusal_marker) < refusals_seen + 3:
                assert process.poll() is None, (
                    f"prestart gave up on a full server\n{_output(*process.communicate())}"
                )
                assert time.monotonic() < deadline, "prestart was not refused 3 times in 30s"
                time.sleep(0.2)
            for connection in held:
                connection.close()
            code, output = _finish(process, timeout=60)
        finally:
            for connection in held:
                connection.close()  # a no-op on one already closed
            if process is not None:
                _kill_if_running([process])
        assert code == 0, output
        assert "not accepting connections yet" in output, output
        assert refusal_marker in output, output
        _assert_password_hidden(output, PASSWORD, role_password)
        _assert_ready_and_seeded_once(url, DEFAULT_SUPERUSER, output)


@pytest.mark.parametrize(
    ("case", "expected_message"),
    [
        ("wrong password in DATABASE_URL", "password authentication failed"),
        ("wrong POSTGRES_PASSWORD", "password authentication failed"),
        ("missing database", 'database "no_such_database" does not exist'),
    ],
)
def test_prestart_stops_at_once_on_a_configuration_error(
    running_cluster: ThrowawayCluster,
    case: str,
    expected_message: str,
) -> None:
    wrong_password = "wrong-secret"
    settings = {
        "wrong password in DATABASE_URL": {
            "DATABASE_URL": running_cluster.url(password=wrong_password)
        },
        "wrong POSTGRES_PASSWORD": {
            "POSTGRES_SERVER": "127.0.0.1",
            "POSTGRES_PORT": str(running_cluster.port),
            "POSTGRES_USER": "postgres",
            "POSTGRES_PASSWORD": wrong_password,
            "POSTGRES_DB": "postgres",
        },
        "missing database": {"DATABASE_URL": running_cluster.url(database="no_such_database")},
    }[case]
    env = clean_env(PRESTART_RETRY_INTERVAL="0.5", PRESTART_MAX_WAIT="60", **settings)
    started = time.monotonic()
    code, output = _run_prestart(env, timeout=60)
    elapsed = time.monotonic() - started

    assert code == 1, output
    assert _step(output, "wait")["outcome"] == "refused", output
    assert elapsed < 15, f"took {elapsed:.1f}s to give up on a fatal error\n{output}"
    assert "not accepting connections yet" not in output, f"a fatal error was retried\n{output}"
    assert "not retrying" in _last_error_line(output), output
    assert expected_message in _last_error_line(output), output
    _assert_password_hidden(output, PASSWORD, wrong_password)


def _fresh_database(
    dialect: str, request: pytest.FixtureRequest, tmp_path: Path
) -> contextlib.AbstractContextManager[str]:
    if dialect == "sqlite":
        return contextlib.nullcontext(sqlite_url(tmp_path / "prestart.db"))
    admin = "postgres_admin_url" if dialect == "postgresql" else "mysql_admin_url"
    return throwaway_database(request.getfixturevalue(admin), prefix="prestart")


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
def test_prestart_run_three_times_seeds_once_and_keeps_what_users_changed(
    dialect: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    superuser = "head.chef@example.org"
    with _fresh_database(dialect, request, tmp_path) as url:
        env = clean_env(DATABASE_URL=url, FIRST_SUPERUSER=superuser, PRESTART_MAX_WAIT="10")
        code, first = _run_prestart(env)
        assert code == 0, first
        _assert_ready_and_seeded_once(url, superuser, first)
        # What users then do to the starter recipes must outlive every later prestart.
        engine = create_engine(normalise_database_url(url), poolclass=NullPool)
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM recipe WHERE label = 'Chicken Vesuvio'"))
            connection.execute(
                text("UPDATE recipe SET label = 'Mine' WHERE label = 'Chicken Paprikash'")
            )
        outputs = []
        for run in range(2):
            code, output = _run_prestart(env)
            assert code == 0, f"run {run + 2}\n{output}"
            outputs.append(output)
        with engine.connect() as connection:
            labels = connection.scalars(text("SELECT label FROM recipe ORDER BY id")).all()
        engine.dispose()

    assert labels == ["Mine", "Cauliflower and Tofu Curry Recipe"], labels
    head = str(head_revision())
    assert _logged_revisions(first) == ("None", head), first
    assert _rows_added(first) == SEED_ROWS, first
    for output in outputs:
        assert _logged_revisions(output) == (head, head), output
        assert _rows_added(output) == 0, output


def _run_two_at_once(env: dict[str, str], url: str, superuser: str) -> None:
    processes = [_start_prestart(env), _start_prestart(env)]
    try:
        results = [_finish(process, timeout=60) for process in processes]
    finally:
        _kill_if_running(processes)
    both = "\n".join(
        f"=== run {i + 1}, exit {code}\n{out}" for i, (code, out) in enumerate(results)
    )
    assert [code for code, _ in results] == [0, 0], both
    # The advisory lock lets exactly one job migrate and seed; the other then finds it done.
    head = str(head_revision())
    revisions = sorted(_logged_revisions(out) for _, out in results)
    assert revisions == sorted([("None", head), (head, head)]), both
    assert sorted(_rows_added(out) for _, out in results) == [0, SEED_ROWS], both
    _assert_password_hidden(both, PASSWORD)
    _assert_ready_and_seeded_once(url, superuser, both)


@pytest.mark.parametrize("server", ["postgresql", "mysql"])
def test_two_prestarts_at_once_on_an_empty_database_both_succeed_and_seed_once(
    server: str, request: pytest.FixtureRequest
) -> None:
    """The prestart lock (app/db/locks.py: an advisory lock on PostgreSQL, GET_LOCK on
    MariaDB) serialises the jobs."""
    admin = "postgres_admin_url" if server == "postgresql" else "mysql_admin_url"
    admin_url = request.getfixturevalue(admin)
    for _ in range(3):
        with throwaway_database(admin_url, prefix="prestart_race") as url:
            env = clean_env(DATABASE_URL=url, PRESTART_MAX_WAIT="10")
            _run_two_at_once(env, url, DEFAULT_SUPERUSER)


def test_two_prestarts_at_once_with_compose_variables_both_succeed_and_seed_once(
    running_cluster: ThrowawayCluster,
) -> None:
    superuser = "compose.chef@example.org"
    with throwaway_database(running_cluster.url(), prefix="prestart_compose") as url:
        env = clean_env(
            POSTGRES_SERVER="127.0.0.1",
            POSTGRES_PORT=str(running_cluster.port),
            POSTGRES_USER="postgres",
            POSTGRES_PASSWORD=PASSWORD,
            POSTGRES_DB=str(make_url(url).database),
            FIRST_SUPERUSER=superuser,
            PRESTART_MAX_WAIT="10",
        )
        _run_two_at_once(env, url, superuser)


# --- MariaDB: the same job, with the driver's own errors ------------------------------------


@pytest.fixture
def stopped_mariadb() -> Iterator[ThrowawayMariaDB]:
    """A MariaDB server that exists on disk but is not running: its port refuses connections."""
    require_mariadbd()
    server = ThrowawayMariaDB()
    try:
        yield server
    finally:
        server.destroy()


def test_prestart_waits_for_a_mariadb_that_comes_up_late(
    stopped_mariadb: ThrowawayMariaDB,
) -> None:
    env = clean_env(
        DATABASE_URL=stopped_mariadb.url(), PRESTART_RETRY_INTERVAL="0.5", PRESTART_MAX_WAIT="60"
    )
    process = _start_prestart(env)
    try:
        time.sleep(3)
        assert process.poll() is None, _output(*process.communicate())
        stopped_mariadb.start()
        code, output = _finish(process, timeout=60)
    finally:
        _kill_if_running([process])

    assert code == 0, output
    assert output.count("not accepting connections yet") == 1, output
    assert "Connection refused" in output, output
    _assert_password_hidden(output, PASSWORD)
    _assert_ready_and_seeded_once(stopped_mariadb.url(), DEFAULT_SUPERUSER, output)


def test_prestart_waits_while_mariadb_has_too_many_connections(
    stopped_mariadb: ThrowawayMariaDB,
) -> None:
    """Error 1040 goes away once connections close: waited for, as on PostgreSQL."""
    stopped_mariadb.start()
    user, user_password = "recipe_app", "app-secret"
    admin = pymysql.connect(
        host="127.0.0.1", port=stopped_mariadb.port, user="root", password=PASSWORD
    )
    held: list[pymysql.Connection] = []
    process: subprocess.Popen[str] | None = None
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{user_password}'")
            cursor.execute(f"GRANT ALL ON recipes.* TO '{user}'@'%'")
        refusal = ""
        for _ in range(200):  # the throwaway server allows 100
            try:
                held.append(
                    pymysql.connect(
                        host="127.0.0.1",
                        port=stopped_mariadb.port,
                        user=user,
                        password=user_password,
                    )
                )
            except pymysql.err.OperationalError as exc:
                refusal = str(exc)
                break
        assert "Too many connections" in refusal, refusal
        url = make_url(stopped_mariadb.url()).set(username=user, password=user_password)
        process = _start_prestart(
            clean_env(
                DATABASE_URL=url.render_as_string(hide_password=False),
                PRESTART_RETRY_INTERVAL="0.5",
                PRESTART_MAX_WAIT="60",
            )
        )
        time.sleep(3)
        assert process.poll() is None, _output(*process.communicate())
        while held:
            held.pop().close()
        code, output = _finish(process, timeout=60)
    finally:
        while held:
            held.pop().close()
        admin.close()
        if process is not None:
            _kill_if_running([process])
    assert code == 0, output
    assert "Too many connections" in output, output
    _assert_password_hidden(output, PASSWORD, user_password)
    _assert_ready_and_seeded_once(stopped_mariadb.url(), DEFAULT_SUPERUSER, output)


@pytest.mark.parametrize(
    ("case", "expected_message"),
    [
        ("wrong password", "Access denied for user"),
        ("missing database", "Unknown database 'no_such_database'"),
    ],
)
def test_prestart_stops_at_once_on_a_mariadb_configuration_error(
    stopped_mariadb: ThrowawayMariaDB, case: str, expected_message: str
) -> None:
    stopped_mariadb.start()
    wrong_password = "wrong-secret"
    url = {
        "wrong password": stopped_mariadb.url(password=wrong_password),
        "missing database": stopped_mariadb.url(database="no_such_database"),
    }[case]
    started = time.monotonic()
    code, output = _run_prestart(
        clean_env(DATABASE_URL=url, PRESTART_RETRY_INTERVAL="0.5", PRESTART_MAX_WAIT="60")
    )
    elapsed = time.monotonic() - started

    assert code != 0, output
    assert elapsed < 15, f"took {elapsed:.1f}s to give up on a fatal error\n{output}"
    assert "not accepting connections yet" not in output, f"a fatal error was retried\n{output}"
    assert "not retrying" in _last_error_line(output), output
    assert expected_message in output, output
    _assert_password_hidden(output, PASSWORD, wrong_password)


# --- What the job tells an operator ---------------------------------------------------------


def test_prestart_logs_each_step_as_a_json_line_with_its_outcome_and_duration(
    postgres_admin_url: str,
) -> None:
    with throwaway_database(postgres_admin_url, prefix="prestart_json") as url:
        first = run_script("prestart.sh", clean_env(DATABASE_URL=url), timeout=60)
        again = run_script("prestart.sh", clean_env(DATABASE_URL=url), timeout=60)

    for result in (first, again):
        assert result.returncode == 0, _output(result.stdout, result.stderr)
        lines = json_lines(result.stdout)  # every line on stdout is a JSON object
        steps = [line for line in lines if "step" in line]
        assert [line["step"] for line in steps] == ["wait", "migrate", "seed"], steps
        for line in steps:
            assert line["outcome"] == "ok", line
            assert isinstance(line["duration_ms"], float), line
            assert line["duration_ms"] >= 0, line
            assert line["level"] == "info", line
            assert isinstance(line["pid"], int), line
        assert "request_id" not in str(lines), "no request is being served"
        migrated = steps[1]
        assert isinstance(migrated["lock_wait_ms"], float), migrated
        assert url.split("@")[-1] in migrated["message"], "the line names the database"
    first_migration, second_migration = (
        _step(first.stdout, "migrate"),
        _step(again.stdout, "migrate"),
    )
    assert (first_migration["revision_before"], first_migration["revision_after"]) == (
        None,
        head_revision(),
    )
    assert second_migration["revision_before"] == second_migration["revision_after"]
    assert _step(first.stdout, "seed")["rows_added"] == SEED_ROWS
    assert _step(again.stdout, "seed")["rows_added"] == 0


def test_prestart_says_how_long_it_waited_for_another_jobs_lock(postgres_admin_url: str) -> None:
    held_after_it_queued = 1.5
    with throwaway_database(postgres_admin_url, prefix="prestart_lock") as url:
        holder = psycopg2.connect(libpq_url(url))
        holder.autocommit = True
        process = None
        try:
            with holder.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s)", (PRESTART_LOCK_KEY,))

                def migration_waits() -> bool:
                    cursor.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock' AND query LIKE '%pg_advisory_lock%'"
                    )
                    row = cursor.fetchone()
                    return row is not None and row[0] == 1

                process = _start_prestart(clean_env(DATABASE_URL=url))
                assert wait_until(migration_waits, timeout=60), "the migration never queued"
                time.sleep(held_after_it_queued)
        finally:
            holder.close()  # the lock goes with the session
        assert process is not None
        code, output = _finish(process, timeout=60)

    assert code == 0, output
    migrated = _step(output, "migrate")
    assert migrated["lock_wait_ms"] >= held_after_it_queued * 1000, migrated
    assert migrated["duration_ms"] >= migrated["lock_wait_ms"], migrated


def test_prestart_exits_255_when_the_database_is_at_a_revision_this_release_lacks(
    tmp_path: Path,
) -> None:
    """What rolling back to an older image after a newer one migrated looks like."""
    url = sqlite_url(tmp_path / "newer.db")
    code, output = _run_prestart(clean_env(DATABASE_URL=url))
    assert code == 0, output
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()

    code, output = _run_prestart(clean_env(DATABASE_URL=url))

    assert code == 255, output
    failed = _step(output, "migrate")
    assert (failed["outcome"], failed["revision_before"]) == ("failed", "9999"), failed
    assert "Can't locate revision identified by '9999'" in failed["message"], failed
    assert "seed" not in {line.get("step") for line in _log_lines(output)}, output
