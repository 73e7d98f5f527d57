"""A throwaway PostgreSQL server on a free loopback port, for tests that stop and start it.

Built with the machine's own `initdb`/`pg_ctl`; when the tests run as root the server runs as
the `postgres` user, since PostgreSQL refuses to run as root.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

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


class ThrowawayCluster:
    """Password-authenticated (scram) server: user `postgres`, password `PASSWORD`."""

    def __init__(self) -> None:
        bin_dir = find_pg_bin()
        if bin_dir is None:
            raise RuntimeError("no PostgreSQL server binaries (initdb) on this machine")
        self.bin_dir = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="pg-cluster-"))
        self.data_dir = self.root / "data"
        self.log_file = self.root / "server.log"
        self._run_as = "postgres" if os.geteuid() == 0 else None
        if self._run_as:
            entry = pwd.getpwnam(self._run_as)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        password_file = self.root / "pwfile"
        password_file.write_text(PASSWORD + "\n")
        if self._run_as:
            os.chown(password_file, entry.pw_uid, entry.pw_gid)
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

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _pg(self, program: str, *args: str, check: bool = True) -> None:
        command: Sequence[str] = [str(self.bin_dir / program), *args]
        if self._run_as:
            command = ["runuser", "-u", self._run_as, "--", *command]
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
