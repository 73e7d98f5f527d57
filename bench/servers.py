"""Processes under test: the scripts, the stack and the ceiling, each server on a free port.

Shared by the benchmark, the soak and the test suite, so that all of them start the stack the
way production starts it (`scripts/start.sh`: gunicorn with uvicorn workers).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = PROJECT_ROOT / "scripts"
VENV_BIN = PROJECT_ROOT / ".venv" / "bin"

# Settings and tool variables of the caller's environment that must not leak into a process
# under test: each gets exactly the database and settings it is given.
PRIVATE_PREFIXES = (
    "DATABASE_",
    "POSTGRES_",
    "PRESTART_",
    "SECRET_KEY",
    "FIRST_SUPERUSER",
    "ENVIRONMENT",
    "LOG_",
    "METRICS_",
    "PROMETHEUS_",
    "TEST_",
    "BENCH_",
    "SOAK_",
    "PYTEST_",
)

STACK_READY = "/health/ready"
CEILING_READY = "/recipe/1"  # the seed's first recipe

# Request logs and metrics as the image runs them, and the same code with both off (the request
# line is written at info): the benchmark compares the two.
OBSERVABILITY_ON = {"LOG_LEVEL": "info", "LOG_FORMAT": "json", "METRICS_ENABLED": "true"}
OBSERVABILITY_OFF = {"LOG_LEVEL": "warning", "METRICS_ENABLED": "false"}
# What scripts/start.sh reads for prometheus-client's multiprocess files; each server started
# here gets a directory of its own, so that two on one host never share (or wipe) each other's.
METRICS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(**overrides: str) -> dict[str, str]:
    """The environment a script sees in a container: the venv on PATH, no stray settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(PRIVATE_PREFIXES)}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(overrides)
    return env


def run_command(
    command: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`command` run to completion in the repository root, output captured."""
    return subprocess.run(
        list(command),
        env=None if env is None else dict(env),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_script(
    name: str, env: Mapping[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`scripts/<name>` run to completion, output captured."""
    return run_command([str(SCRIPTS / name)], env, timeout)


def access_token(base_url: str, username: str, password: str) -> str:
    """A bearer token from the server's login endpoint (OAuth2 password form)."""
    body = urllib.parse.urlencode({"username": username, "password": password}).encode()
    request = urllib.request.Request(f"{base_url}/login/access-token", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        token: str = json.load(response)["access_token"]
        return token


def wait_until(condition: Callable[[], bool], timeout: float = 10, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


def http_status(url: str, timeout: float = 2) -> int | str:
    """The status `url` answers with, or the name of the error that kept it from answering."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError) as exc:
        return exc.__class__.__name__


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    token: str = ""  # a bearer token for the writes sent to it, once logged in
    metrics_dir: Path | None = None  # the stack's multiprocess metrics, removed once stopped

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def worker_rss_mb(self) -> list[float]:
        sizes = []
        for pid in self.worker_pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        return sizes

    def wait_ready(self, path: str, timeout: float = 60) -> None:
        """Until `path` answers 200; fails with the server's log if it exits or never does."""
        deadline = time.monotonic() + timeout
        last: int | str = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()}")
            last = http_status(self.base_url + path)
            if last == 200:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout}s ({last}):\n{self.log()}")

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, as an orchestrator stops a container; returns the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL to gunicorn and its workers, if still running."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self._remove_metrics_dir()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to the process group if it lingers."""
        if self.process.poll() is None:
            try:
                self.terminate(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._remove_metrics_dir()

    def _remove_metrics_dir(self) -> None:
        if self.metrics_dir is not None:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)


def launch(
    name: str, command: list[str], env: Mapping[str, str], log_path: Path, workers: int = 2
) -> Server:
    """Start a gunicorn `command` on a free loopback port, in a process group of its own."""
    port = free_port()
    full_env = {**env, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": str(workers)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(name, process, f"http://127.0.0.1:{port}", log_path)


def launch_stack(
    database_url: str | None,
    log_path: Path,
    settings: Mapping[str, str] | None = None,
    workers: int = 2,
    name: str = "stack",
) -> Server:
    """`scripts/start.sh` with these settings; `database_url=None` leaves DATABASE_URL unset,
    for a database given the way compose gives it (`POSTGRES_SERVER=...` in `settings`). Its
    metrics files go to a directory of its own, unless `settings` name one."""
    env = clean_env(**(settings or {}))
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    metrics_dir = None
    if METRICS_DIRECTORY not in (settings or {}):
        metrics_dir = Path(tempfile.mkdtemp(prefix="stack-metrics-"))
        env[METRICS_DIRECTORY] = str(metrics_dir)
    server = launch(name, [str(SCRIPTS / "start.sh")], env, log_path, workers)
    server.metrics_dir = metrics_dir
    return server


def launch_ceiling(database_url: str, log_path: Path) -> Server:
    # The positional app overrides gunicorn.conf.py's `wsgi_app`; every other setting is the
    # stack's. gunicorn puts its working directory (the repo root) on sys.path for `bench`.
    env = clean_env(DATABASE_URL=database_url)
    command = [str(VENV_BIN / "gunicorn"), "--config", "gunicorn.conf.py", "bench.ceiling:app"]
    return launch("ceiling", command, env, log_path)


@contextmanager
def serving_stack(
    database_url: str | None,
    settings: Mapping[str, str] | None = None,
    *,
    workers: int = 2,
    ready_path: str = STACK_READY,
) -> Iterator[Server]:
    """The stack started, ready at `ready_path`, and killed on the way out whatever happened."""
    log_file = tempfile.NamedTemporaryFile(prefix="stack-", suffix=".log", delete=False)  # noqa: SIM115
    log_file.close()
    log_path = Path(log_file.name)
    server = launch_stack(database_url, log_path, settings, workers)
    try:
        server.wait_ready(ready_path)
        yield server
    finally:
        server.kill()
        log_path.unlink(missing_ok=True)
