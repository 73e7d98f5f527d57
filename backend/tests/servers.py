"""The app served the way production serves it: `scripts/start.sh` (gunicorn + uvicorn workers)."""

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support import PROJECT_ROOT, SCRIPTS, free_port, script_env, wait_for_http


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, as an orchestrator stops a container; returns the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]


@contextmanager
def gunicorn_server(
    database_url: str | None,
    workers: int = 2,
    ready_path: str = "/health/ready",
    **settings: str,
) -> Iterator[RunningServer]:
    """Start `scripts/start.sh` on a free loopback port and wait until `ready_path` answers 200.

    `database_url=None` leaves DATABASE_URL unset, for settings given as compose gives them
    (`POSTGRES_SERVER=...` and the rest in `settings`).
    """
    port = free_port()
    if database_url is not None:
        settings = {"DATABASE_URL": database_url, **settings}
    env = script_env(
        HOST="127.0.0.1",
        PORT=str(port),
        WEB_CONCURRENCY=str(workers),
        LOG_LEVEL="info",
        **settings,
    )
    log_file = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [str(SCRIPTS / "start.sh")],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = RunningServer(process, f"http://127.0.0.1:{port}", Path(log_file.name))
    try:
        try:
            wait_for_http(server.base_url + ready_path, timeout=30)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- server log ---\n{server.log()}") from None
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log_file.close()
        Path(log_file.name).unlink(missing_ok=True)


def wait_until(condition: Callable[[], bool], timeout: float = 10, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False
