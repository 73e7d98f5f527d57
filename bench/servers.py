"""Starting and stopping the servers under test, each on a free loopback port."""

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = PROJECT_ROOT / ".venv" / "bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(**overrides: str) -> dict[str, str]:
    """The environment a server sees: the venv on PATH, no database settings but ours."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "POSTGRES_", "PRESTART_", "BENCH_", "TEST_"))
    }
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(overrides)
    return env


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

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

    def stop(self) -> None:
        """SIGTERM to gunicorn, then SIGKILL to its process group if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def launch(name: str, command: list[str], env: Mapping[str, str], log_path: Path) -> Server:
    """Start gunicorn with `command` on a free port; `wait_ready` tells when it serves."""
    port = free_port()
    full_env = {**env, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "2"}
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


def wait_ready(server: Server, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited early:\n{server.log()}")
        try:
            with urllib.request.urlopen(server.base_url + path, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} not ready after {timeout}s ({last!r}):\n{server.log()}")


def launch_stack(database_url: str, log_path: Path) -> Server:
    env = clean_env(DATABASE_URL=database_url)
    return launch("stack", [str(PROJECT_ROOT / "scripts" / "start.sh")], env, log_path)


def launch_ceiling(database_url: str, log_path: Path) -> Server:
    # The positional app overrides gunicorn.conf.py's `wsgi_app`; every other setting is the
    # stack's. gunicorn puts its working directory (the repo root) on sys.path for `bench`.
    env = clean_env(DATABASE_URL=database_url)
    command = [str(VENV_BIN / "gunicorn"), "--config", "gunicorn.conf.py", "bench.ceiling:app"]
    return launch("ceiling", command, env, log_path)


STACK_READY = "/health/ready"
CEILING_READY = "/recipe/1"  # the seed's first recipe
