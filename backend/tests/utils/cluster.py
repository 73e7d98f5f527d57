"""Throwaway PostgreSQL and MariaDB servers on free loopback ports, for tests that stop and
start them: never the machine's shared servers.

Built with the machine's own `initdb`/`pg_ctl` and `mariadb-install-db`/`mariadbd`, each with a
data directory of its own; when the tests run as root a server runs as the `postgres` or
`mysql` user, since neither will run as root.
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pymysql
import pytest
from sqlalchemy import Connection, Engine, create_engine, text

from app.core.config import normalise_database_url
from bench.servers import free_port

PASSWORD = "cluster-secret"


def find_pg_bin() -> Path | None:
    """The newest PostgreSQL server binaries on this machine, for throwaway clusters."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    if candidates:
        return candidates[0].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def require_pg_bin() -> None:
    """Skip the test without server binaries, or fail it under REQUIRE_POSTGRES=1 (as in CI)."""
    if find_pg_bin() is None:
        reason = "no PostgreSQL server binaries (initdb) for a throwaway cluster"
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason} (REQUIRE_POSTGRES=1)")
        pytest.skip(reason)


class _ServerFiles:
    """What every throwaway server has: a free port, a temporary root holding its data directory
    and log, owned by the system user it runs as when the tests run as root."""

    def __init__(self, prefix: str, server_user: str) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.data_dir = self.root / "data"
        self.log_file = self.root / "server.log"
        self._run_as = server_user if os.geteuid() == 0 else None
        self._give_to_server_user(self.root)

    def _give_to_server_user(self, path: Path) -> None:
        if self._run_as:
            entry = pwd.getpwnam(self._run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _as_server_user(self, command: Sequence[str]) -> list[str]:
        if self._run_as:
            return ["runuser", "-u", self._run_as, "--", *command]
        return list(command)

    def start(self) -> None:
        raise NotImplementedError

    def stop(self, mode: str = "fast") -> None:
        raise NotImplementedError

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class ThrowawayCluster(_ServerFiles):
    """Password-authenticated (scram) server: user `postgres`, password `PASSWORD`."""

    def __init__(self) -> None:
        bin_dir = find_pg_bin()
        if bin_dir is None:
            raise RuntimeError("no PostgreSQL server binaries (initdb) on this machine")
        self.bin_dir = bin_dir
        super().__init__("pg-cluster-", "postgres")
        password_file = self.root / "pwfile"
        password_file.write_text(PASSWORD + "\n")
        self._give_to_server_user(password_file)
        self._pg(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            f"--pwfile={password_file}",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def url(self, database: str = "postgres", password: str = PASSWORD) -> str:
        return f"postgresql://postgres:{password}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c fsync=off -c max_connections=100"
        )
        self._pg(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._pg("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop", check=False)

    def _pg(self, program: str, *args: str, check: bool = True) -> None:
        command = self._as_server_user([str(self.bin_dir / program), *args])
        subprocess.run(command, check=check, capture_output=True, timeout=60)


@contextmanager
def running_cluster() -> Iterator[ThrowawayCluster]:
    """A started throwaway PostgreSQL server, destroyed on the way out."""
    require_pg_bin()
    cluster = ThrowawayCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


def require_mariadbd() -> None:
    """Skip the test without MariaDB's server, or fail it under REQUIRE_MYSQL=1 (as in CI)."""
    if shutil.which("mariadbd") is None or shutil.which("mariadb-install-db") is None:
        reason = "no MariaDB server binaries (mariadbd) for a throwaway server"
        if os.environ.get("REQUIRE_MYSQL") == "1":
            pytest.fail(f"{reason} (REQUIRE_MYSQL=1)")
        pytest.skip(reason)


class ThrowawayMariaDB(_ServerFiles):
    """Password-authenticated MariaDB: user `root`, password `PASSWORD`, an empty database
    `recipes` in utf8mb4. The same interface as ThrowawayCluster."""

    def __init__(self) -> None:
        super().__init__("mariadb-", "mysql")
        self._process: subprocess.Popen[bytes] | None = None
        install = [
            "mariadb-install-db",
            "--no-defaults",
            f"--datadir={self.data_dir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ]
        subprocess.run(self._as_server_user(install), check=True, capture_output=True, timeout=60)
        self.start(password="")
        with self._connect("", None) as connection, connection.cursor() as cursor:
            cursor.execute("ALTER USER 'root'@'localhost' IDENTIFIED BY %s", (PASSWORD,))
            cursor.execute("CREATE DATABASE recipes CHARACTER SET utf8mb4")
        self.stop()

    def url(self, database: str = "recipes", password: str = PASSWORD) -> str:
        return f"mysql+pymysql://root:{password}@127.0.0.1:{self.port}/{database}"

    def start(self, password: str = PASSWORD) -> None:
        command = [
            shutil.which("mariadbd") or "mariadbd",
            "--no-defaults",
            f"--datadir={self.data_dir}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.root / 'mariadb.sock'}",
            f"--pid-file={self.root / 'mariadb.pid'}",
            f"--log-error={self.log_file}",
            "--character-set-server=utf8mb4",
            "--max-connections=100",
            "--innodb-buffer-pool-size=32M",
            # Like the PostgreSQL clusters' fsync=off: a clean stop loses nothing.
            "--innodb-flush-log-at-trx-commit=2",
            "--skip-log-bin",
        ]
        self._process = subprocess.Popen(
            self._as_server_user(command),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                self._connect(password, None).close()
                return
            except pymysql.err.OperationalError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mariadbd did not start:\n{self._log()}") from None
                time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        """`fast`: a clean shutdown (SIGTERM); `immediate`: SIGKILL, as a crash would."""
        if self._process is None or self._process.poll() is not None:
            return
        sent = signal.SIGKILL if mode == "immediate" else signal.SIGTERM
        os.killpg(self._process.pid, sent)
        self._process.wait(timeout=60)

    def _connect(self, password: str, database: str | None) -> pymysql.Connection:
        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user="root",
            password=password,
            database=database,
            connect_timeout=2,
            autocommit=True,
        )

    def _log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


ThrowawayServer = ThrowawayCluster | ThrowawayMariaDB


@contextmanager
def running_server(kind: str) -> Iterator[ThrowawayServer]:
    """A started throwaway server, `postgresql` or `mysql`, destroyed on the way out."""
    server: ThrowawayServer
    if kind == "postgresql":
        require_pg_bin()
        server = ThrowawayCluster()
    else:
        require_mariadbd()
        server = ThrowawayMariaDB()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


# --- what the fault tests do to a running server ----------------------------------------------
# The app's connections are told apart from the test's own: on PostgreSQL by their
# application_name (app/db/session.py), on MariaDB as every other connection to the database
# the test's connection uses.

_PG_APP = "SELECT pid FROM pg_stat_activity WHERE application_name = 'recipe-api'"
_MYSQL_APP = (
    "SELECT id AS pid FROM information_schema.processlist"
    " WHERE db = DATABASE() AND id <> CONNECTION_ID()"
)


def admin_engine(server: ThrowawayServer) -> Engine:
    return create_engine(normalise_database_url(server.url()), isolation_level="AUTOCOMMIT")


def app_connections(connection: Connection, waiting_for_lock: bool = False) -> list[int]:
    """Ids of the app's connections to the server, or of those waiting for a table lock."""
    if connection.dialect.name == "postgresql":
        query = _PG_APP + (" AND wait_event_type = 'Lock'" if waiting_for_lock else "")
    else:
        query = _MYSQL_APP + (" AND state LIKE 'Waiting for table%'" if waiting_for_lock else "")
    return [row.pid for row in connection.execute(text(query))]


def kill_connection(connection: Connection, pid: int) -> bool:
    """End one of the app's connections, as the server would on a failure."""
    if connection.dialect.name == "postgresql":
        return bool(
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        )
    connection.execute(text(f"KILL CONNECTION {int(pid)}"))
    return True


@contextmanager
def recipe_table_locked(connection: Connection) -> Iterator[None]:
    """Every statement of the app that reads or writes `recipe` waits until the block ends."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("BEGIN"))
        connection.execute(text("LOCK TABLE recipe IN ACCESS EXCLUSIVE MODE"))
        try:
            yield
        finally:
            connection.execute(text("ROLLBACK"))
        return
    connection.execute(text("LOCK TABLES recipe WRITE"))
    try:
        yield
    finally:
        connection.execute(text("UNLOCK TABLES"))
